"""Training configuration (pydantic)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    algo: Literal["ppo", "a2c", "sac"] = "ppo"
    total_timesteps: int = Field(20_000, ge=1, description="total env steps, counted across envs; "
                                 "on resume, training continues until this total")
    n_envs: int = Field(4, ge=1, le=64, description="DummyVecEnv copies, seeds seed..seed+n-1")
    seed: int = 0
    policy: str = "MlpPolicy"
    net_arch: list[int] = Field(default_factory=lambda: [64, 64])
    learning_rate: float = Field(3e-4, gt=0)
    gamma: float = Field(0.99, gt=0, le=1)
    # on-policy (PPO / A2C)
    n_steps: int = Field(256, ge=1, description="rollout steps per env per update")
    batch_size: int = Field(64, ge=2)
    n_epochs: int = Field(10, ge=1)
    gae_lambda: float = Field(0.95, gt=0, le=1)
    clip_range: float = Field(0.2, gt=0)
    ent_coef: float = Field(0.0, ge=0)
    vf_coef: float = Field(0.5, ge=0)
    max_grad_norm: float = Field(0.5, gt=0)
    # off-policy (SAC)
    buffer_size: int = Field(100_000, ge=1)
    learning_starts: int = Field(1_000, ge=0)
    tau: float = Field(0.005, gt=0, le=1)
    train_freq: int = Field(1, ge=1)
    # runtime
    torch_threads: int = Field(1, ge=1, description="torch.set_num_threads; more threads "
                               "collapse under CPU contention")
    device: Literal["cpu"] = "cpu"
    checkpoint_every: int | None = Field(None, ge=1, description="env steps between checkpoints; "
                                         "None = only at the end")
    eval_episode: bool = Field(True, description="deterministic rollout over the training data "
                               "after training, for the final metrics")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.algo == "ppo" and self.n_steps * self.n_envs < self.batch_size:
            raise ValueError(
                f"n_steps x n_envs ({self.n_steps * self.n_envs}) must be >= batch_size "
                f"({self.batch_size}) for PPO")
        return self
