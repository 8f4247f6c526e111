"""The whole lineage graph, materialized Launchpad-style on a tiny universe with a temporary instance."""

import json
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from tt_platform.config.run_config import load_run_config
from tt_platform.defs.market_data.partitions import range_tags
from tt_platform.defs.platform.resources import dagster_run_config
from tt_platform.settings import get_settings
from tt_platform.store.engine import create_store_engine
from tt_platform.training.tracking import MlflowTracker

TINY = """
name: tiny
universe:
  symbols: [AAA, BBB, CCC]
data:
  start: 2021-01-04
  end: 2021-12-31
env:
  episode_length: 60
  window_size: 10
training:
  total_timesteps: 512
  n_envs: 1
evaluation:
  test_fraction: 0.3
"""


@pytest.fixture
def platform_env(tmp_path, monkeypatch, store_url):
    monkeypatch.setenv("TT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TT_DB_URL", store_url)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def execute(instance, config, selection=None, tags=None):
    from tt_platform.definitions import defs

    job = defs.resolve_job_def("main_job")
    return job.execute_in_process(
        instance=instance,
        run_config=dagster_run_config(config),
        tags=tags or {},
        asset_selection=[dg.AssetKey(name) for name in selection] if selection else None,
        raise_on_error=False,
    )


def metadata(instance, asset: str, partition: str | None = None) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None), limit=1
    ).records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def test_whole_graph_materializes_and_evaluation_reads_its_upstream_policy(tmp_path, platform_env):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    config = load_run_config(path)
    tags = range_tags(config.data.start, config.data.end)
    with dg.instance_for_test() as instance:
        outcome = execute(instance, config, tags=tags)
        assert outcome.success, [e.step_failure_data.error.message for e in outcome.all_events if e.is_step_failure]
        assert sorted(instance.get_materialized_partitions(dg.AssetKey("bars"))) == [f"2021-{m:02d}" for m in range(1, 13)]
        assert metadata(instance, "bars", "2021-01")["rows"] == 3 * 19
        assert metadata(instance, "bars", "2021-12")["rows"] == 3 * 22
        assert metadata(instance, "features", "2021-06")["rows"] > 0
        upstream = metadata(instance, "trained_policy")["policy_id"]
        report = metadata(instance, "evaluation_report")
        assert report["policy_id"] == upstream and Path(report["report_path"]).is_file()
        # links the UI opens: the report among the artifacts of the run that trained the policy
        training_run = metadata(instance, "trained_policy")["mlflow_run_id"]
        assert report["report"].endswith(f"/runs/{training_run}/artifacts")
        assert report["mlflow_run"] == report["report"].removesuffix("/artifacts")
        from tt_platform.defs.training.resources import MlflowResource

        logged = MlflowResource().tracker().client.list_artifacts(training_run, "evaluation")
        assert [Path(a.path).name for a in logged] == [Path(report["report_path"]).name]

        # a newer policy with the same config appears in tt_policy (trained elsewhere):
        # the evaluation still evaluates what its upstream materialization produced
        engine = create_store_engine(platform_env.db_url)
        with engine.begin() as conn:
            columns = _policy_columns(conn)
            chosen = {"policy_id": "'ppo-newer-s42'", "created_at": "created_at + interval '1 day'"}
            conn.execute(sa.text(
                f"insert into tt_policy ({', '.join(columns)}) select {', '.join(chosen.get(c, c) for c in columns)} "
                "from tt_policy where policy_id = :id"
            ), {"id": upstream})
        again = execute(instance, config, selection=["evaluation_report"])
        assert again.success
        assert metadata(instance, "evaluation_report")["policy_id"] == upstream

        # a second run of the same range fetches nothing and stays complete
        rerun = execute(instance, config, selection=["watchlist", "bars"], tags=tags)
        assert rerun.success
        assert metadata(instance, "bars", "2021-03")["fetched_this_run"] == 0

    with engine.connect() as conn:
        prices = conn.execute(sa.text("select instrument, count(*) from tt_prices group by instrument order by 1")).all()
        policy = conn.execute(sa.text("select policy_id, mlflow_run_id, feature_set_hash, seed from tt_policy where policy_id = :id"), {"id": upstream}).one()
        episodes = dict(conn.execute(sa.text("select kind, count(*) from tt_episode group by kind")).all())
    # 2021 has 252 NYSE sessions
    assert prices == [("AAA", 252), ("BBB", 252), ("CCC", 252)]
    assert policy.mlflow_run_id and policy.seed == 42
    assert episodes == {"train": 1, "eval": 1}  # re-evaluating the same policy replaces its episode

    run = MlflowTracker(platform_env.mlflow_uri).client.get_run(policy.mlflow_run_id)
    assert run.data.params["feature_set_hash"] == policy.feature_set_hash
    assert "TT_DB_URL" not in json.dumps(run.data.params)


def _policy_columns(conn) -> list[str]:
    rows = conn.execute(sa.text(
        "select column_name from information_schema.columns where table_name = 'tt_policy' "
        "and table_schema = current_schema() order by ordinal_position"
    )).all()
    return [r[0] for r in rows]
