"""Launch the platform's Dagster job in this process, recorded in the platform's instance.

The CLI goes through here so every run, from ``tt demo`` to ``tt evaluate``, lands in the same
instance the UI shows: lineage and metadata are visible whatever started the work.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import dagster as dg

from tt_platform.config.run_config import load_run_config
from tt_platform.defs.market_data.partitions import SYMBOLS, range_tags
from tt_platform.pipeline.universe import resolve_watchlist
from tt_platform.runtime import prepare_dagster
from tt_platform.settings import get_settings

MAIN_JOB = "main_job"


def _register_symbols(instance: dg.DagsterInstance, symbols: list[str]) -> list[str]:
    registered = instance.get_dynamic_partitions(SYMBOLS.name)
    new = [s for s in symbols if s not in registered]
    if new:
        instance.add_dynamic_partitions(SYMBOLS.name, new)
    return instance.get_dynamic_partitions(SYMBOLS.name)


def _materialized_metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, str]]:
    assets: dict[str, dict[str, str]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        name = materialization.asset_key.to_user_string()
        assets[name] = {k: str(getattr(v, "value", v)) for k, v in materialization.metadata.items()}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            check = f"check {evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            assets[check] = {"passed": str(evaluation.passed)}
    return assets


def run_selection(
    selection: list[str],
    *,
    config_path: Path | None,
    overrides: dict,
    with_partitions: bool,
    instance: dg.DagsterInstance | None = None,
    resume_checkpoint: Path | None = None,
    progress: bool = False,
) -> dict:
    """Run ``selection`` (asset names, or ["*"]) of the main job; return outcome and metadata."""
    from tt_platform.definitions import defs

    config = load_run_config(config_path).with_overrides(**overrides)
    settings = get_settings()
    if with_partitions and config.data.start < date.fromisoformat(settings.partition_start):
        raise ValueError(
            f"data.start {config.data.start} is before the first partition day {settings.partition_start}; "
            "set TT_PARTITION_START earlier"
        )
    if instance is None:
        prepare_dagster(settings)
        instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def(MAIN_JOB)
    tags = {"tt/config_hash": config.config_hash, "tt/mode": config.mode.value}
    if with_partitions:
        symbols = resolve_watchlist(config).symbols
        registered = _register_symbols(instance, symbols)
        tags |= range_tags(registered, symbols, config.data.start, config.data.end)
    run_config = {
        "resources": {
            "run_config": {
                "config": {
                    "config_path": str(Path(config_path).resolve()) if config_path else "",
                    "overrides_json": json.dumps(overrides, default=str),
                    "resume_checkpoint": str(resume_checkpoint.resolve()) if resume_checkpoint else "",
                    "progress": progress,
                }
            }
        }
    }
    asset_selection = None if selection == ["*"] else [dg.AssetKey(name) for name in selection]
    result = job.execute_in_process(
        instance=instance, tags=tags, run_config=run_config, asset_selection=asset_selection, raise_on_error=False
    )
    outcome = {"success": result.success, "run_id": result.run_id, "assets": _materialized_metadata(result)}
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure]
        if failures:
            outcome["error"] = failures[0].step_failure_data.error.message.strip()
    return outcome
