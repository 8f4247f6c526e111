"""The trained policy: PPO (or A2C/SAC) on the stored features of the watchlist snapshot, tracked in MLflow."""

from pathlib import Path

import dagster as dg

from tt_platform.defs.market_data.resources import MarketClockResource
from tt_platform.defs.platform.presentation import RESEARCH, RESEARCH_TEAM
from tt_platform.defs.platform.resources import PlatformResource, RunConfigResource
from tt_platform.defs.training.resources import MlflowResource
from tt_platform.pipeline.handles import PolicyHandle, WatchlistSnapshot
from tt_platform.pipeline.recovery import tag_run_host
from tt_platform.pipeline.training import train


@dg.asset(
    group_name=RESEARCH,
    kinds={"sb3", "mlflow", "postgres"},
    owners=[RESEARCH_TEAM],
    deps=["features"],
    io_manager_key="lineage_io_manager",
    description="A policy trained on the in-sample part of the stored features; lineage in tt_policy and MLflow.",
)
def trained_policy(
    context: dg.AssetExecutionContext,
    watchlist: WatchlistSnapshot,
    platform: PlatformResource,
    run_config: RunConfigResource,
    mlflow: MlflowResource,
    market_clock: MarketClockResource,
) -> dg.Output[PolicyHandle]:
    config = run_config.load(last_session=market_clock.last_session())
    _tag_host(context)
    record = train(
        platform.engine(),
        config,
        platform.settings,
        tracker=mlflow.tracker(),
        resume_checkpoint=Path(run_config.resume_checkpoint) if run_config.resume_checkpoint else None,
        progress=run_config.progress,
        symbols=list(watchlist.symbols),
        watchlist_hash=watchlist.snapshot_hash,
    )
    metadata: dict[str, object] = {
        "policy_id": record.policy_id,
        "model_path": dg.MetadataValue.path(record.model_path),
        "feature_set_hash": record.feature_set_hash,
        "data_snapshot_hash": record.data_snapshot_hash,
        "config_hash": record.config_hash,
        "watchlist_snapshot": watchlist.snapshot_hash,
        "seed": record.seed,
        "trained_until": record.train_end,
    }
    if record.mlflow_run_id:
        metadata["mlflow_run_id"] = record.mlflow_run_id
    if record.mlflow_run_url:
        metadata["mlflow_run"] = dg.MetadataValue.url(record.mlflow_run_url)
    metadata.update({f"train_{k}": round(v, 6) for k, v in record.metrics.items()})
    context.log.info(f"trained {record.policy_id} (MLflow run {record.mlflow_run_id})")
    handle = PolicyHandle(record.policy_id, record.config_hash, record.feature_set_hash, record.data_snapshot_hash)
    return dg.Output(handle, metadata=metadata)


def _tag_host(context: dg.AssetExecutionContext) -> None:
    tag_run_host(context.instance, context.run_id)
