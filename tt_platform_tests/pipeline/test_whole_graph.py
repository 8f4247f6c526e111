"""The whole lineage graph, materialized in-process on a tiny universe with a temporary instance."""

import json

import dagster as dg
import pytest
import sqlalchemy as sa

from tt_platform.orchestration import run_selection
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
training:
  total_timesteps: 512
  n_envs: 1
  episode_length: 60
  window_size: 10
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


def test_whole_graph_materializes(tmp_path, platform_env):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    with dg.instance_for_test() as instance:
        outcome = run_selection(["*"], config_path=config, overrides={}, with_partitions=True, instance=instance)
        assert outcome["success"], outcome.get("error")
        assert instance.get_dynamic_partitions("symbols") == ["AAA", "BBB", "CCC"]
        # a second run of the same range is idempotent: same rows, still success
        again = run_selection(["watchlist", "bars"], config_path=config, overrides={}, with_partitions=True, instance=instance)
        assert again["success"]

    engine = create_store_engine(platform_env.db_url)
    with engine.connect() as conn:
        prices = conn.execute(sa.text("select instrument, count(*) from tt_prices group by instrument order by 1")).all()
        features = conn.execute(sa.text("select count(*), count(distinct feature) from tt_features")).one()
        policy = conn.execute(sa.text("select policy_id, mlflow_run_id, feature_set_hash, data_snapshot_hash, seed from tt_policy")).all()
        equity_rows = conn.execute(sa.text("select count(*) from tt_equity_curve")).scalar_one()
        episodes = dict(conn.execute(sa.text("select kind, count(*) from tt_episode group by kind")).all())
    # 2021 has 252 NYSE sessions
    assert prices == [("AAA", 252), ("BBB", 252), ("CCC", 252)]
    assert features[0] > 0 and features[1] >= 5
    assert len(policy) == 1 and policy[0].mlflow_run_id and policy[0].seed == 42
    assert equity_rows > 0
    assert episodes == {"train": 1, "eval": 1}

    run = MlflowTracker(platform_env.mlflow_uri).client.get_run(policy[0].mlflow_run_id)
    assert run.data.params["feature_set_hash"] == policy[0].feature_set_hash
    assert "TT_DB_URL" not in json.dumps(run.data.params)

    report = outcome["assets"]["evaluation_report"]
    from pathlib import Path

    assert Path(report["report_path"]).is_file()
    assert report["policy_id"] == policy[0].policy_id
    assert int(outcome["assets"]["bars"]["rows"]) == 3 * 252
