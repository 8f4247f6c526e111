"""The walk-forward as Dagster assets: folds are partitions, each fold trains and is judged on
its own slice, the report stitches them, and MLflow holds the out-of-sample story."""

from pathlib import Path

import dagster as dg

from tt_platform.config.run_config import load_run_config
from tt_platform.defs.market_data.partitions import range_tags
from tt_platform.defs.platform.resources import dagster_run_config
from tt_platform.training.tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, MlflowTracker
from tt_platform_tests.pipeline.test_whole_graph import platform_env  # noqa: F401 - fixture

CONFIG = """
name: wf-graph
universe:
  symbols: [AAA, BBB, SPY]
data:
  start: 2020-01-02
  end: 2021-06-30
env:
  window_size: 5
training:
  total_timesteps: 256
  n_steps: 64
  batch_size: 32
  n_envs: 1
  eval_episode: false
evaluation:
  walk_forward:
    scheme: rolling
    train_bars: 120
    min_train_bars: 100
    test_bars: 60
    purge_bars: 5
    max_folds: 2
    seeds: [0, 1]
"""


def _execute(instance, job_name, config, selection, tags=None, partition_key=None):
    from tt_platform.definitions import defs

    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        run_config=dagster_run_config(config),
        tags=tags or {},
        asset_selection=[dg.AssetKey(name) for name in selection],
        partition_key=partition_key,
        raise_on_error=False,
    )
    assert result.success, [e.step_failure_data.error.message for e in result.all_events if e.is_step_failure]
    return result


def _metadata(instance, asset: str) -> dict:
    record = instance.fetch_materializations(dg.AssetKey(asset), limit=1).records[0]
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def test_a_walk_forward_runs_fold_by_fold_and_reports_out_of_sample_in_dagster_and_mlflow(tmp_path, platform_env):  # noqa: F811
    path = tmp_path / "wf.yaml"
    path.write_text(CONFIG)
    config = load_run_config(path)
    with dg.instance_for_test() as instance:
        _execute(instance, "main_job", config, ["watchlist", "bars", "features"], tags=range_tags(config.data.start, config.data.end))
        _execute(instance, "walk_forward_job", config, ["walk_forward_plan"])
        keys = instance.get_dynamic_partitions("walk_forward_folds")
        assert len(keys) == 2 and all(k.startswith(("f", "f0")) for k in keys)
        for key in keys:
            _execute(instance, "walk_forward_job", config, ["fold_policies", "fold_evaluation"], partition_key=key)
        assert sorted(instance.get_materialized_partitions(dg.AssetKey("fold_evaluation"))) == sorted(keys)
        _execute(instance, "walk_forward_job", config, ["walk_forward_report"])
        report = _metadata(instance, "walk_forward_report")
        plan = _metadata(instance, "walk_forward_plan")

    assert report["gate"] in ("passed", "failed") and report["promotion"]
    assert report["gate"] == "passed" or report["gate_reasons"] != "none"
    assert Path(report["report_path"]).is_file() and Path(report["summary_json"]).is_file()
    assert "| buy_and_hold" in report["summary"] or "buy_and_hold" in report["summary"]

    tracker = MlflowTracker(platform_env.mlflow_uri, "tt-platform")
    experiment = tracker.client.get_experiment(tracker.experiment_id)
    assert experiment.tags.get(EXPERIMENT_KIND_TAG) == EXPERIMENT_KIND
    parent = tracker.client.search_runs([tracker.experiment_id], f"tags.`tt.walk_forward_plan` = '{plan['plan_key']}' and tags.`tt.kind` = 'walk_forward'")
    assert len(parent) == 1
    assert "oos_sharpe" in parent[0].data.metrics or "oos_total_return" in parent[0].data.metrics
    assert "oos_deflated_sharpe" in parent[0].data.metrics or report["gate_reasons"].find("deflated") >= 0
    children = tracker.client.search_runs([tracker.experiment_id], f"tags.`mlflow.parentRunId` = '{parent[0].info.run_id}'")
    # one child per fold and seed, each with its in-sample and out-of-sample numbers side by side
    assert len(children) == 4
    assert {(c.data.tags["tt.fold"], c.data.tags["tt.seed"]) for c in children} == {(k, s) for k in keys for s in ("0", "1")}
    assert all("oos_total_return" in c.data.metrics and "num_timesteps" in c.data.metrics for c in children)


def test_a_walk_forward_of_one_fold_reports(tmp_path, platform_env):  # noqa: F811
    # Dagster's file IO manager hands a single partition over as the bare value, not a dict
    path = tmp_path / "wf.yaml"
    path.write_text(CONFIG.replace("max_folds: 2", "max_folds: 1").replace("seeds: [0, 1]", "seeds: [0]"))
    config = load_run_config(path)
    with dg.instance_for_test() as instance:
        _execute(instance, "main_job", config, ["watchlist", "bars", "features"], tags=range_tags(config.data.start, config.data.end))
        _execute(instance, "walk_forward_job", config, ["walk_forward_plan"])
        (key,) = instance.get_dynamic_partitions("walk_forward_folds")
        _execute(instance, "walk_forward_job", config, ["fold_policies", "fold_evaluation"], partition_key=key)
        _execute(instance, "walk_forward_job", config, ["walk_forward_report"])
        report = _metadata(instance, "walk_forward_report")
    assert report["gate"] in ("passed", "failed")
    assert Path(report["report_path"]).is_file()
