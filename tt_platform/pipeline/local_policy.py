"""Train a policy on bars in hand and register it with the lineage a live session verifies,
without MLflow: the benchmarks' and the trading tests' small real policies."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tt_platform.config import RunConfig


@dataclass(frozen=True)
class LocalPolicy:
    policy_id: str
    model_path: Path
    symbols: tuple[str, ...]
    config: RunConfig


def train_registered_policy(engine: Any, bars: pd.DataFrame, config: RunConfig, folder: Path, *, policy_id: str,
                            code_version: str) -> LocalPolicy:
    """Train on ``bars`` (long frame: symbol, ts, OHLCV), checkpoints under ``folder/policy_id``,
    and register the policy in tt_policy with its feature-set, data, config and model hashes."""
    from tt_platform.env.market import MarketData
    from tt_platform.features.compute import compute_features
    from tt_platform.features.sets import get_feature_set
    from tt_platform.live.policy_source import MODEL_HASH_KEY, file_sha256
    from tt_platform.store.policies import register_policy
    from tt_platform.training.trainer import train_policy

    feature_set = get_feature_set(config.training.feature_set)
    market = MarketData.from_frames(bars, compute_features(bars, feature_set))
    result = train_policy(market, config.env, config.training, checkpoint_dir=folder / policy_id / "checkpoints")
    lineage = {
        "policy_id": policy_id, "feature_set_hash": feature_set.hash, "data_snapshot_hash": market.data_hash(),
        "seed": str(config.training.seed), "train_end": str(market.timestamps[-1]),
        "symbols": ",".join(market.symbols), MODEL_HASH_KEY: file_sha256(result.model_path),
    }
    register_policy(engine, {
        "policy_id": policy_id, "mlflow_run_id": None, "algo": config.training.algo,
        "feature_set_hash": feature_set.hash, "data_snapshot_hash": market.data_hash(),
        "config_hash": config.config_hash, "config": config.model_dump(mode="json") | {"lineage": lineage},
        "seed": config.training.seed, "code_version": code_version, "model_uri": str(result.model_path),
    })
    return LocalPolicy(policy_id, Path(result.model_path), tuple(market.symbols), config)
