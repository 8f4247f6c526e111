"""``train_policy``: train an SB3 policy on the trading env, checkpoint it, track it in MLflow."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from tt_platform.config.env import EnvConfig
from tt_platform.config.training import TrainConfig, algo_env_problem
from tt_platform.env import MarketData, make_env, policy_from_model, rollout
from tt_platform.env.rollout import EpisodeRecord
from tt_platform.env.vector import BatchedTradingVecEnv
from tt_platform.training.checkpoint import (
    MODEL_FILE,
    Checkpoint,
    CheckpointError,
    algo_class,
    code_version,
    resolve_checkpoint,
    save_checkpoint,
    step_folder_name,
    write_latest,
)
from tt_platform.training.extractor import LeanRolloutBuffer, extractor_policy_kwargs
from tt_platform.training.metrics import METRIC_NAMES, episode_metrics, record_metrics
from tt_platform.training.sb3_logging import mlflow_logger
from tt_platform.training.tracking import MlflowTracker, TrackedRun

log = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
# ``checkpoint_every`` unset: a checkpoint every tenth of the run, but not more often than every
# DEFAULT_MIN_CHECKPOINT_EVERY steps (a small run writes only its final checkpoint).
DEFAULT_CHECKPOINTS_PER_RUN = 10
DEFAULT_MIN_CHECKPOINT_EVERY = 2048


def checkpoint_interval(config: TrainConfig) -> int:
    """Env steps between periodic checkpoints: ``checkpoint_every``, or when unset a tenth of
    ``total_timesteps`` and at least ``DEFAULT_MIN_CHECKPOINT_EVERY``."""
    if config.checkpoint_every:
        return int(config.checkpoint_every)
    return max(DEFAULT_MIN_CHECKPOINT_EVERY,
               math.ceil(config.total_timesteps / DEFAULT_CHECKPOINTS_PER_RUN))


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    checkpoint_path: Path
    metrics: dict[str, float]
    mlflow_run_id: str | None
    mlflow_run_url: str | None = None
    registered_model_version: str | None = None
    num_timesteps: int = 0
    train_seconds: float = 0.0
    episode_metrics: list[dict[str, float | None]] = field(default_factory=list)
    # the deterministic in-sample rollout behind ``metrics`` (None when eval_episode is off)
    final_episode: EpisodeRecord | None = None


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Pin torch's intra-op threads for the block (the default count collapses under CPU
    contention), restoring the previous setting afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class EpisodeMetricsCallback(BaseCallback):
    """Collects per-step info of every env and, at each episode end, computes the episode's
    metrics and logs them to the tracked run (step = episode number)."""

    def __init__(self, run: TrackedRun | None, *, initial_cash: float, periods_per_year: float,
                 leverage_cap: float) -> None:
        super().__init__()
        self.run = run
        self.initial_cash = initial_cash
        self.periods_per_year = periods_per_year
        self.leverage_cap = leverage_cap
        self.episodes: list[dict[str, float | None]] = []
        self._buffers: list[dict[str, list[float]]] = []

    def _on_training_start(self) -> None:
        self._buffers = [self._empty() for _ in range(self.training_env.num_envs)]

    @staticmethod
    def _empty() -> dict[str, list[float]]:
        return {"equity": [], "reward": [], "turnover": [], "gross": [], "cost": []}

    def _on_step(self) -> bool:
        infos = self.locals["infos"]
        rewards = self.locals["rewards"]
        dones = self.locals["dones"]
        for i, info in enumerate(infos):
            buf = self._buffers[i]
            buf["equity"].append(info["equity"])
            buf["reward"].append(float(rewards[i]))
            buf["turnover"].append(info["turnover"])
            buf["gross"].append(info["gross_exposure"])
            buf["cost"].append(info["cost"])
            if dones[i]:
                self._finish(i)
        return True

    def _finish(self, i: int) -> None:
        buf = self._buffers[i]
        self._buffers[i] = self._empty()
        equity = np.concatenate([[self.initial_cash], buf["equity"]])
        metrics = episode_metrics(
            returns=equity[1:] / equity[:-1] - 1.0, rewards=np.asarray(buf["reward"]),
            turnover=np.asarray(buf["turnover"]), gross_exposure=np.asarray(buf["gross"]),
            periods_per_year=self.periods_per_year, leverage_cap=self.leverage_cap,
            costs=np.asarray(buf["cost"]))
        self.episodes.append(metrics)
        if self.run is not None:
            self.run.log_metrics({f"episode/{k}": v for k, v in metrics.items()},
                                 step=len(self.episodes))


class PeriodicCheckpointCallback(BaseCallback):
    """Saves a checkpoint once at least ``every`` env steps (counted across envs) have passed
    since the last one.

    Checkpoints are taken at the start of a rollout, i.e. after the model has been updated on
    every step it has collected so far: a checkpoint at k steps holds weights trained on exactly
    k steps, so resuming from it loses no update.
    """

    def __init__(self, every: int, save: Any) -> None:
        super().__init__()
        self.every = every
        self.save = save
        self._next = every

    def _on_training_start(self) -> None:
        self._next = (self.model.num_timesteps // self.every + 1) * self.every

    def _on_rollout_start(self) -> None:
        if self.model.num_timesteps >= self._next:
            self.save(self.model)
            self._next = (self.model.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        return True


@dataclass(frozen=True)
class ObservationLayout:
    """How the env lays out an observation: [n_symbols, rows, window] (the extractor needs it)."""

    n_symbols: int
    window: int

    @classmethod
    def of(cls, market: MarketData, env_config: EnvConfig) -> ObservationLayout:
        return cls(market.n_symbols, env_config.window_size)

    @classmethod
    def of_env(cls, env: Any) -> ObservationLayout:
        """From a trading VecEnv (or gymnasium env): its market and config."""
        if isinstance(env, VecEnv):
            market, config = env.get_attr("market", 0)[0], env.get_attr("config", 0)[0]
        else:
            market, config = env.unwrapped.market, env.unwrapped.config
        return cls.of(market, config)


def policy_kwargs(config: TrainConfig, layout: ObservationLayout | None) -> dict[str, Any]:
    """SB3 ``policy_kwargs``: the network ``config`` sets. ``layout`` is needed by the
    'shared_symbol' extractor only."""
    kwargs: dict[str, Any] = {"net_arch": list(config.net_arch)}
    if config.policy_extractor != "flat":
        if layout is None:
            raise ValueError(f"policy_extractor {config.policy_extractor!r} needs the "
                             "observation layout (n_symbols, window)")
        kwargs |= extractor_policy_kwargs(config.policy_extractor, n_symbols=layout.n_symbols,
                                          window=layout.window,
                                          symbol_dim=config.extractor_symbol_dim)
    if config.fused_optimizer:
        # SB3's on-policy default for Adam is eps=1e-5 (set only when no optimizer_kwargs are
        # given); keep it, so only the kernel changes.
        kwargs["optimizer_kwargs"] = ({"eps": 1e-5, "fused": True} if config.algo == "ppo"
                                      else {"fused": True})
    return kwargs


def algo_kwargs(config: TrainConfig, layout: ObservationLayout | None = None) -> dict[str, Any]:
    """The SB3 constructor arguments ``config`` sets for its algorithm (``layout``: see
    ``policy_kwargs``)."""
    common = {"learning_rate": config.learning_rate, "gamma": config.gamma,
              "policy_kwargs": policy_kwargs(config, layout)}
    if config.algo in ("ppo", "a2c"):
        # explicit either way, so a resumed checkpoint takes this config's buffer
        common["rollout_buffer_class"] = LeanRolloutBuffer if _lean_buffer(config) else None
    if config.algo == "ppo":
        return common | {"n_steps": config.n_steps, "batch_size": config.batch_size,
                         "n_epochs": config.n_epochs, "gae_lambda": config.gae_lambda,
                         "clip_range": config.clip_range, "ent_coef": config.ent_coef,
                         "vf_coef": config.vf_coef, "max_grad_norm": config.max_grad_norm}
    if config.algo == "a2c":
        return common | {"n_steps": config.n_steps, "gae_lambda": config.gae_lambda,
                         "ent_coef": config.ent_coef, "vf_coef": config.vf_coef,
                         "max_grad_norm": config.max_grad_norm}
    return common | {"buffer_size": config.buffer_size, "learning_starts": config.learning_starts,
                     "batch_size": config.batch_size, "tau": config.tau,
                     "train_freq": config.train_freq}


def _lean_buffer(config: TrainConfig) -> bool:
    """Whether on-policy training uses ``LeanRolloutBuffer`` (same values as SB3's buffer, one
    copy less per minibatch); tied to the faster settings so the default run is SB3's own."""
    return config.vec_env == "batched" or config.policy_extractor != "flat"


def build_model(config: TrainConfig, env: Any, layout: ObservationLayout | None = None) -> Any:
    """A fresh SB3 model of ``config.algo`` on ``env`` (a VecEnv or gymnasium env), every
    hyperparameter taken from ``config``; ``layout`` defaults to the env's."""
    if layout is None and config.policy_extractor != "flat":
        layout = ObservationLayout.of_env(env)
    return algo_class(config.algo)(config.policy, env, seed=config.seed, device=config.device,
                                   verbose=0, **algo_kwargs(config, layout))


def make_vec_env(market: MarketData, env_config: EnvConfig, train_config: TrainConfig) -> VecEnv:
    """``train_config.n_envs`` copies of the env, seeded ``seed``, ``seed + 1``, ...: a
    ``DummyVecEnv`` or, with ``vec_env: batched``, one ``BatchedTradingVecEnv`` (same results)."""
    if train_config.vec_env == "batched":
        return BatchedTradingVecEnv(market, env_config, train_config.n_envs, seed=train_config.seed)
    return DummyVecEnv([
        (lambda i=i: make_env(market, env_config, seed=train_config.seed + i))
        for i in range(train_config.n_envs)])


def _check_resume(checkpoint: Checkpoint, market: MarketData, env_config: EnvConfig,
                  train_config: TrainConfig) -> None:
    for name, stored, given in (("n_symbols", checkpoint.n_symbols, market.n_symbols),
                                ("n_features", checkpoint.n_features, market.n_features)):
        if stored is not None and stored != given:
            raise CheckpointError(
                f"{checkpoint.path}: trained on {name}={stored}, the market has {name}={given}")
    if checkpoint.algo != train_config.algo:
        raise CheckpointError(
            f"{checkpoint.path}: trained with algo {checkpoint.algo!r}, cannot resume as "
            f"{train_config.algo!r}")
    if (checkpoint.feature_set_hash and market.feature_set_hash
            and checkpoint.feature_set_hash != market.feature_set_hash):
        raise CheckpointError(
            f"{checkpoint.path}: feature_set_hash {checkpoint.feature_set_hash} differs from the "
            f"market's {market.feature_set_hash}")
    # keys stored in the model's policy kwargs: SB3 refuses to resume when they differ
    network_keys = ["policy", "net_arch", "policy_extractor", "fused_optimizer"]
    if train_config.policy_extractor != "flat":
        network_keys.append("extractor_symbol_dim")
    network = [k for k in network_keys
               if getattr(checkpoint.train_config, k) != getattr(train_config, k)]
    if network:
        raise CheckpointError(
            f"{checkpoint.path}: training config differs in {network}, which changes the "
            "network or its optimizer")
    shape_keys = ("window_size", "action_scheme", "observation", "include_positions", "long_only")
    changed = [k for k in shape_keys
               if getattr(checkpoint.env_config, k) != getattr(env_config, k)]
    if changed:
        raise CheckpointError(
            f"{checkpoint.path}: env config differs in {changed}, which changes the spaces")


def train_policy(market: MarketData, env_config: EnvConfig, train_config: TrainConfig, *,
                 tracker: MlflowTracker | None = None, checkpoint_dir: str | Path,
                 resume_checkpoint: str | Path | None = None, progress: bool = False,
                 lineage: dict[str, Any] | None = None, drift_baseline: dict | None = None,
                 run_name: str | None = None) -> TrainResult:
    """Train ``train_config.algo`` on ``market`` and return where the policy is and how it did.

    ``env_config`` and ``train_config`` are the run config's ``env`` and ``training`` sections;
    every setting in them reaches the env and the SB3 model, also when resuming.

    Checkpoints go into ``checkpoint_dir`` as ``step-N`` folders (every
    ``checkpoint_interval(train_config)`` steps and at the end), with ``LATEST`` naming the newest.
    ``resume_checkpoint`` may be a policy folder, a checkpoint folder, a step folder or a
    ``model.zip`` (see ``resolve_checkpoint``); a checkpoint that does not fit the market or the
    configs raises ``CheckpointError`` naming the difference.

    ``train_config.total_timesteps`` is the total across resumes: resuming a checkpoint at k
    steps trains ``total - k`` more. ``lineage`` (watchlist hash, partitions, ...) goes into the
    checkpoint and the MLflow params; ``drift_baseline`` (``features.drift.feature_baseline``)
    is stored as the run artifact ``drift_baseline.json``. Final ``metrics`` come from a
    deterministic rollout over the whole market (in-sample), so the same seed and data give the
    same metrics.
    """
    problem = algo_env_problem(train_config, env_config.action_scheme)
    if problem:
        raise ValueError(problem)
    checkpoint_dir = Path(checkpoint_dir)
    lineage = dict(lineage or {})
    resume = resolve_checkpoint(resume_checkpoint) if resume_checkpoint is not None else None
    if resume is not None:
        log.info("resuming from %s at %d steps", resume.path, resume.num_timesteps)
        _check_resume(resume, market, env_config, train_config)
        lineage.setdefault("resumed_from", str(resume.path))
    data_hash = market.data_hash()
    periods_per_year = float(env_config.periods_per_year or market.periods_per_year)

    with contextlib.ExitStack() as stack:
        stack.enter_context(torch_threads(train_config.torch_threads))
        run = None
        if tracker is not None:
            run = stack.enter_context(tracker.start_run(
                run_name=run_name or f"{train_config.algo}-seed{train_config.seed}",
                tags={"algo": train_config.algo, "feature_set_hash": market.feature_set_hash or "",
                      "data_snapshot_hash": data_hash, "code_version": code_version()}))
            run.log_params({
                "train": train_config.model_dump(mode="json"),
                "env": env_config.model_dump(mode="json"),
                "lineage": lineage,
                "feature_set_hash": market.feature_set_hash,
                "data_snapshot_hash": data_hash,
                "code_version": code_version(),
                "n_symbols": market.n_symbols,
                "n_features": market.n_features,
                "n_bars": market.n_steps,
                "data_start": market.timestamps[0].isoformat(),
                "data_end": market.timestamps[-1].isoformat(),
            })

        vec_env = make_vec_env(market, env_config, train_config)
        stack.callback(vec_env.close)
        layout = ObservationLayout.of(market, env_config)
        if resume is not None:
            try:
                # the hyperparameters of this config apply to the continued training
                model = algo_class(train_config.algo).load(
                    resume.model_path, env=vec_env, device=train_config.device,
                    **algo_kwargs(train_config, layout))
            except ValueError as exc:  # SB3 refuses an env whose spaces differ
                message = " ".join(str(exc).split())
                raise CheckpointError(f"{resume.path}: {message}") from None
            model.set_random_seed(train_config.seed)
        else:
            model = build_model(train_config, vec_env, layout)
        if run is not None:
            model.set_logger(mlflow_logger(run))  # SB3's losses, KL, entropy next to our metrics

        def save(m: Any) -> Checkpoint:
            name = step_folder_name(m.num_timesteps)
            saved = save_checkpoint(
                m, checkpoint_dir / name, env_config=env_config, train_config=train_config,
                feature_set_hash=market.feature_set_hash, data_snapshot_hash=data_hash,
                lineage=lineage, n_symbols=market.n_symbols, n_features=market.n_features)
            write_latest(checkpoint_dir, name)
            log.info("checkpoint %s", saved.path)
            return saved

        episodes_cb = EpisodeMetricsCallback(
            run, initial_cash=env_config.initial_cash, periods_per_year=periods_per_year,
            leverage_cap=env_config.leverage_cap)
        callbacks: list[BaseCallback] = [
            episodes_cb, PeriodicCheckpointCallback(checkpoint_interval(train_config), save)]
        remaining = train_config.total_timesteps - (model.num_timesteps if resume else 0)
        started = time.perf_counter()
        if remaining > 0:
            model.learn(total_timesteps=remaining, callback=CallbackList(callbacks),
                        reset_num_timesteps=resume is None, progress_bar=progress)
        train_seconds = time.perf_counter() - started
        checkpoint = save(model)

        metrics: dict[str, float | None] = {"num_timesteps": float(model.num_timesteps),
                                            "train_episodes": float(len(episodes_cb.episodes))}
        if episodes_cb.episodes:
            sums = [e["reward_sum"] for e in episodes_cb.episodes]
            metrics["train_reward_sum_mean"] = float(np.mean(sums))
        record = None
        if train_config.eval_episode:
            record = rollout(make_env(market, env_config.whole_period(), seed=train_config.seed),
                             policy_from_model(model, deterministic=True))
            metrics |= {k: v for k, v in record_metrics(record).items() if k in METRIC_NAMES}
        # Undefined metrics (e.g. the Sharpe ratio of a flat curve) are left out, not NaN.
        metrics = {k: v for k, v in metrics.items() if v is not None}

        run_id = run_url = version = None
        if run is not None:
            run.log_metrics(metrics | {"train_seconds": train_seconds})
            run.log_artifact(checkpoint.path, MODEL_ARTIFACT)
            run.log_dict(env_config.model_dump(mode="json"), "env_config.json", "config")
            run.log_dict(train_config.model_dump(mode="json"), "train_config.json", "config")
            run.log_dict(checkpoint.metadata(), "checkpoint.json", "config")
            if drift_baseline is not None:
                run.log_dict(drift_baseline, "drift_baseline.json")
            version = run.register_model(MODEL_ARTIFACT)
            run.set_tags({"registered_model": tracker.registered_model_name,
                          "registered_model_version": version})
            run_id, run_url = run.run_id, run.ui_url
            log.info("training run %s: %s", run_id, run_url)

    return TrainResult(
        model_path=checkpoint.path / MODEL_FILE, checkpoint_path=checkpoint.path, metrics=metrics,
        mlflow_run_id=run_id, mlflow_run_url=run_url, registered_model_version=version,
        num_timesteps=int(model.num_timesteps), train_seconds=train_seconds,
        episode_metrics=list(episodes_cb.episodes), final_episode=record)
