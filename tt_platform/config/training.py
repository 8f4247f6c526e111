"""The ``training`` section of a run config: the algorithm, its SB3 hyperparameters and the
training runtime.

This is the only definition of these settings, their defaults and their bounds: the trainer
builds the SB3 model from this model as is and stores it in every checkpoint.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

# seeds numpy, torch and SB3 accept: 0 <= seed < 2**32
SEED_LIMIT = 2**32
MAX_TOTAL_TIMESTEPS = 1_000_000_000


class TrainConfig(BaseModel):
    """Policy training: algorithm, SB3 hyperparameters, features and runtime."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    algo: Literal["ppo", "a2c", "sac"] = "ppo"
    total_timesteps: int = Field(4096, ge=1, le=MAX_TOTAL_TIMESTEPS,
                                 description="total env steps, counted across envs; "
                                 "on resume, training continues until this total")
    n_envs: int = Field(2, ge=1, le=64, description="env copies, seeds seed..seed+n-1")
    vec_env: Literal["dummy", "batched"] = Field(
        "dummy", description="how the env copies are stepped: 'dummy' (SB3 DummyVecEnv, one env "
        "after another) or 'batched' (tt_platform.env.vector.BatchedTradingVecEnv, all copies "
        "in one step, identical results, faster)")
    seed: int = Field(42, ge=0, lt=SEED_LIMIT, description="random seed of the policy and the "
                      "first env (numpy and torch take 0 <= seed < 2**32)")
    feature_set: Literal["basic", "full"] = Field("basic", description="features the policy observes")
    policy: str = Field("MlpPolicy", description="SB3 policy class name")
    net_arch: list[PositiveInt] = Field(default_factory=lambda: [64, 64],
                                description="hidden layer sizes of the policy and value "
                                "networks; []: linear")
    policy_extractor: Literal["flat", "shared_symbol"] = Field(
        "flat", description="the policy's input layer: 'flat' (SB3's default, every observed "
        "value into the first layer) or 'shared_symbol' (window pooling and one small encoder "
        "shared by all symbols, tt_platform.training.extractor)")
    extractor_symbol_dim: int = Field(
        16, ge=1, le=1024, description="per-symbol embedding size of the 'shared_symbol' extractor")
    fused_optimizer: bool = Field(
        False, description="Adam's fused kernel (ppo, sac): the same update in one kernel "
        "instead of one per parameter tensor; faster for small networks")
    learning_rate: float = Field(3e-4, gt=0)
    gamma: float = Field(0.99, gt=0, le=1, description="discount factor")
    # on-policy (PPO / A2C)
    n_steps: int = Field(256, ge=1, description="rollout steps per env per update (ppo, a2c)")
    batch_size: int = Field(64, ge=2, description="minibatch size (ppo, sac)")
    n_epochs: int = Field(10, ge=1, description="optimisation epochs per update (ppo)")
    gae_lambda: float = Field(0.95, gt=0, le=1, description="(ppo, a2c)")
    clip_range: float = Field(0.2, gt=0, description="(ppo)")
    ent_coef: float = Field(0.0, ge=0, description="entropy coefficient (ppo, a2c)")
    vf_coef: float = Field(0.5, ge=0, description="value loss coefficient (ppo, a2c)")
    max_grad_norm: float = Field(0.5, gt=0, description="(ppo, a2c)")
    # off-policy (SAC)
    buffer_size: int = Field(100_000, ge=1, description="replay buffer size (sac)")
    learning_starts: int = Field(1_000, ge=0, description="steps before learning starts (sac)")
    tau: float = Field(0.005, gt=0, le=1, description="soft update coefficient (sac)")
    train_freq: int = Field(1, ge=1, description="steps between updates (sac)")
    # runtime
    torch_threads: int = Field(1, ge=1, description="torch.set_num_threads; more threads "
                               "collapse under CPU contention")
    device: Literal["cpu"] = "cpu"
    checkpoint_every: int | None = Field(None, ge=1, description="env steps between checkpoints; "
                                         "null: every tenth of the run, at most every 2048 steps")
    eval_episode: bool = Field(True, description="deterministic rollout over the training data "
                               "after training, for the final metrics")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.seed + self.n_envs - 1 >= SEED_LIMIT:
            raise ValueError(
                f"seed {self.seed} with n_envs {self.n_envs} seeds envs up to "
                f"{self.seed + self.n_envs - 1}, past the largest seed {SEED_LIMIT - 1} (2**32 - 1)")
        if self.algo == "ppo" and self.n_steps * self.n_envs < self.batch_size:
            raise ValueError(
                f"n_steps x n_envs ({self.n_steps * self.n_envs}) must be >= batch_size "
                f"({self.batch_size}) for PPO")
        if self.fused_optimizer and self.algo == "a2c":
            raise ValueError("fused_optimizer needs Adam (ppo, sac); a2c uses RMSprop")
        return self


def algo_env_problem(training: TrainConfig, action_scheme: str) -> str | None:
    """Why ``training.algo`` cannot drive an env with ``action_scheme`` (None: it can)."""
    if training.algo == "sac" and action_scheme != "vol_target":
        return "algo 'sac' needs a continuous action space (env.action_scheme: vol_target)"
    return None
