"""The trained policy: PPO (or A2C/SAC) on the stored features, tracked in MLflow."""


from pathlib import Path

import dagster as dg

from tt_platform.defs.platform.resources import PlatformResource, RunConfigResource
from tt_platform.defs.training.resources import MlflowResource
from tt_platform.pipeline.training import train


@dg.asset(
    group_name="training",
    deps=["features"],
    description="A policy trained on the in-sample part of the stored features; lineage in tt_policy and MLflow.",
)
def trained_policy(
    context: dg.AssetExecutionContext,
    platform: PlatformResource,
    run_config: RunConfigResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    config = run_config.load()
    tracker = mlflow.tracker()
    record = train(
        platform.engine(),
        config,
        platform.settings,
        tracker=tracker,
        resume_checkpoint=Path(run_config.resume_checkpoint) if run_config.resume_checkpoint else None,
        progress=run_config.progress,
    )
    metadata: dict[str, object] = {
        "policy_id": record.policy_id,
        "model_path": dg.MetadataValue.path(record.model_path),
        "feature_set_hash": record.feature_set_hash,
        "data_snapshot_hash": record.data_snapshot_hash,
        "config_hash": record.config_hash,
        "seed": record.seed,
        "trained_until": record.train_end,
    }
    if record.mlflow_run_id:
        metadata["mlflow_run_id"] = record.mlflow_run_id
    if record.mlflow_run_url:
        metadata["mlflow_run"] = dg.MetadataValue.url(record.mlflow_run_url)
    metadata.update({f"train_{k}": round(v, 6) for k, v in record.metrics.items()})
    context.log.info(f"trained {record.policy_id} (MLflow run {record.mlflow_run_id})")
    return dg.MaterializeResult(metadata=metadata)
