"""Train a policy on stored bars and features, and register it with its full lineage."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine

from tt_platform.config.run_config import RunConfig
from tt_platform.data.watchlist import watchlist_from_symbols
from tt_platform.env.market import MarketData
from tt_platform.features.compute import FeatureMatrix
from tt_platform.features.drift import feature_baseline
from tt_platform.features.sets import get_feature_set
from tt_platform.pipeline.features import load_feature_matrix
from tt_platform.pipeline.windows import day_end, day_start
from tt_platform.pipeline.universe import resolve_watchlist
from tt_platform.live.policy_source import MODEL_HASH_KEY, file_sha256
from tt_platform.settings import PlatformSettings
from tt_platform.store.prices import read_bars
from tt_platform.store.policies import get_policy, list_policies, register_policy
from tt_platform.training.tracking import MlflowTracker
from tt_platform.training.trainer import train_policy
from tt_platform.store.episodes import write_episode
from tt_platform.training.checkpoint import CHECKPOINTS_DIR, code_version
from tt_platform.training.episodes import episode_frames


DRIFT_BASELINE_FILE = "drift_baseline.json"


def drift_baseline_path(settings: PlatformSettings, policy_id: str) -> Path:
    return settings.artifacts_dir / "policies" / policy_id / DRIFT_BASELINE_FILE


@dataclass(frozen=True)
class LoadedMarket:
    market: MarketData
    matrix: FeatureMatrix
    watchlist_hash: str


@dataclass(frozen=True)
class PolicyRecord:
    policy_id: str
    model_path: str
    mlflow_run_id: str | None
    mlflow_run_url: str | None
    feature_set_hash: str
    data_snapshot_hash: str
    config_hash: str
    seed: int
    train_end: str
    metrics: dict[str, float]
    # the universe the policy was trained on (empty for policies that did not record it)
    symbols: tuple[str, ...] = ()
    reused: bool = False  # found already trained on the same data, config and seed


def load_market(
    engine: Engine, config: RunConfig, *, symbols: Sequence[str] | None = None, watchlist_hash: str | None = None
) -> LoadedMarket:
    """Bars and stored features of the run's range, aligned as MarketData, for ``symbols`` (an
    upstream watchlist snapshot, whose hash is ``watchlist_hash``) or else the config's universe."""
    if symbols is None:
        watchlist = resolve_watchlist(config)
        symbols, watchlist_hash = watchlist.symbols, watchlist.snapshot_hash
    elif watchlist_hash is None:
        watchlist_hash = watchlist_from_symbols(list(symbols)).snapshot_hash
    symbols = list(symbols)
    feature_set = get_feature_set(config.training.feature_set)
    matrix = load_feature_matrix(engine, symbols, config.data.start, config.data.end, feature_set)
    bars = read_bars(
        engine,
        symbols,
        day_start(config.data.start),
        day_end(config.data.end),
        interval=config.data.interval,
        adjusted=config.data.adjusted,
    )
    return LoadedMarket(MarketData.from_frames(bars, matrix), matrix, watchlist_hash)


def split_index(market: MarketData, test_fraction: float) -> int:
    """First bar of the out-of-sample segment: training never sees it or anything after it."""
    n_test = max(int(round(market.n_steps * test_fraction)), 2)
    return market.n_steps - n_test


def policy_id_for(config: RunConfig, feature_set_hash: str, data_hash: str) -> str:
    """Deterministic: the same data, features, config and seed name the same policy."""
    digest = hashlib.sha256(f"{config.config_hash}|{feature_set_hash}|{data_hash}".encode()).hexdigest()[:10]
    return f"{config.training.algo}-{digest}-s{config.training.seed}"


def train(
    engine: Engine,
    config: RunConfig,
    settings: PlatformSettings,
    *,
    tracker: MlflowTracker | None,
    resume_checkpoint: Path | None = None,
    progress: bool = False,
    symbols: Sequence[str] | None = None,
    watchlist_hash: str | None = None,
    loaded: LoadedMarket | None = None,
    rows: slice | None = None,
    run_name: str | None = None,
    reuse: bool = False,
) -> PolicyRecord:
    """Train ``config.training`` on ``config.env`` over the in-sample bars of ``symbols`` (an
    upstream watchlist snapshot; default: the config's universe) and register the policy.

    ``rows`` picks the training bars of the loaded market (a walk-forward fold's training
    window); by default, everything before the held-out ``evaluation.test_fraction``. With
    ``reuse``, a policy already registered under the same id (same config, seed, features and
    training data) whose model is still on disk is returned instead of trained again.

    Checkpoints go to ``<artifacts>/policies/<policy_id>/checkpoints/step-N/`` as training goes.
    ``resume_checkpoint`` may be a policy folder, its ``checkpoints/`` folder, a step folder or
    a ``model.zip``; training continues from the newest complete checkpoint there."""
    if loaded is None:
        loaded = load_market(engine, config, symbols=symbols, watchlist_hash=watchlist_hash)
    if rows is None:
        rows = slice(0, split_index(loaded.market, config.evaluation.test_fraction))
    train_market = loaded.market.take(rows)
    data_hash = train_market.data_hash()
    policy_id = policy_id_for(config, loaded.matrix.feature_set_hash, data_hash)
    if reuse and resume_checkpoint is None:
        existing = get_policy(engine, policy_id)
        if existing is not None and Path(existing["model_uri"]).is_file():
            return dataclasses.replace(_policy_record(existing), reused=True)
    lineage = {
        "policy_id": policy_id,
        "feature_set_hash": loaded.matrix.feature_set_hash,
        "data_snapshot_hash": data_hash,
        "watchlist_hash": loaded.watchlist_hash,
        "config_hash": config.config_hash,
        "seed": str(config.training.seed),
        "code_version": code_version(),
        "train_start": str(train_market.timestamps[0]),
        "train_end": str(train_market.timestamps[-1]),
        "symbols": ",".join(train_market.symbols),
    }
    drift_baseline = feature_baseline(loaded.matrix.slice_time(None, train_market.timestamps[-1]))
    policy_dir = settings.artifacts_dir / "policies" / policy_id
    policy_dir.mkdir(parents=True, exist_ok=True)
    # kept beside the model so evaluation and the live loop can measure drift without MLflow
    (policy_dir / DRIFT_BASELINE_FILE).write_text(json.dumps(drift_baseline))
    result = train_policy(
        train_market,
        config.env,
        config.training,
        tracker=tracker,
        checkpoint_dir=policy_dir / CHECKPOINTS_DIR,
        resume_checkpoint=resume_checkpoint,
        progress=progress,
        lineage=lineage,
        drift_baseline=drift_baseline,
        run_name=run_name,
    )
    # the live loop refuses a model file whose hash is not this one
    lineage[MODEL_HASH_KEY] = file_sha256(result.model_path)
    if tracker is not None and result.mlflow_run_id:
        tracker.client.set_tag(result.mlflow_run_id, f"tt.{MODEL_HASH_KEY}", lineage[MODEL_HASH_KEY])
    record = PolicyRecord(
        policy_id=policy_id,
        model_path=str(result.model_path),
        mlflow_run_id=result.mlflow_run_id,
        mlflow_run_url=result.mlflow_run_url,
        feature_set_hash=loaded.matrix.feature_set_hash,
        data_snapshot_hash=data_hash,
        config_hash=config.config_hash,
        seed=config.training.seed,
        train_end=lineage["train_end"],
        metrics={k: float(v) for k, v in result.metrics.items()},
        symbols=tuple(train_market.symbols),
    )
    register_policy(
        engine,
        {
            "policy_id": policy_id,
            "mlflow_run_id": result.mlflow_run_id,
            "algo": config.training.algo,
            "feature_set_hash": record.feature_set_hash,
            "data_snapshot_hash": data_hash,
            "config_hash": config.config_hash,
            # resolved values (the data.end trained through), as written under "as_written"
            "config": config.model_dump(mode="json") | {"as_written": config.as_written(), "lineage": lineage},
            "seed": config.training.seed,
            "code_version": lineage["code_version"],
            "model_uri": record.model_path,
        },
    )
    if result.final_episode is not None:
        # the in-sample rollout behind the training metrics, next to evaluation episodes
        frames = episode_frames(
            result.final_episode,
            episode_id=f"train-{policy_id}",
            policy_id=policy_id,
            kind="train",
            seed=config.training.seed,
            config={"run_config_hash": config.config_hash},
            metrics=record.metrics,
        )
        write_episode(engine, frames.episode, frames.actions, frames.rewards, frames.equity, frames.target_weights)
    return record


def latest_policy_record(engine: Engine, config: RunConfig) -> PolicyRecord:
    """The newest policy trained with this run config, from tt_policy (for the CLI; a pipeline
    step follows the exact policy its upstream produced: ``policy_record_by_id``)."""
    policies = list_policies(engine)
    matching = policies[policies["config_hash"] == config.config_hash] if len(policies) else policies
    if matching.empty:
        raise LookupError(
            f"no trained policy for run config {config.name!r} (hash {config.config_hash}); "
            "materialize trained_policy first (tt train)"
        )
    return _policy_record(matching.iloc[0].to_dict())  # newest first


def policy_record_by_id(engine: Engine, policy_id: str) -> PolicyRecord:
    """The policy ``policy_id`` from tt_policy; LookupError naming the id when there is none."""
    row = get_policy(engine, policy_id)
    if row is None:
        raise LookupError(f"no trained policy {policy_id!r} in tt_policy; materialize trained_policy first")
    return _policy_record(row)


def _policy_record(row: dict) -> PolicyRecord:
    config = row.get("config") or {}
    lineage = config.get("lineage", {})
    return PolicyRecord(
        policy_id=row["policy_id"],
        model_path=row["model_uri"],
        mlflow_run_id=row["mlflow_run_id"],
        mlflow_run_url=None,
        feature_set_hash=row["feature_set_hash"],
        data_snapshot_hash=row["data_snapshot_hash"],
        config_hash=row["config_hash"],
        seed=int(row["seed"]),
        train_end=str(lineage.get("train_end", "")),
        metrics={},
        symbols=tuple(s for s in str(lineage.get("symbols", "")).split(",") if s),
    )
