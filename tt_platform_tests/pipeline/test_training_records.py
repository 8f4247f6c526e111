"""Policy records: found by id (what a materialization produced) or newest by config (the CLI)."""

from datetime import date

import pytest

from tt_platform.config import RunConfig
from tt_platform.pipeline import training as pipeline_training
from tt_platform.pipeline.training import latest_policy_record, policy_record_by_id
from tt_platform.store.policies import register_policy


def _register(engine, policy_id: str, config: RunConfig, train_end: str) -> None:
    register_policy(engine, {
        "policy_id": policy_id,
        "mlflow_run_id": f"run-{policy_id}",
        "algo": "ppo",
        "feature_set_hash": "fs",
        "data_snapshot_hash": f"data-{policy_id}",
        "config_hash": config.config_hash,
        "config": config.model_dump(mode="json") | {"lineage": {"train_end": train_end, "symbols": "AAA,BBB"}},
        "seed": 42,
        "code_version": "test",
        "model_uri": f"/models/{policy_id}/model.zip",
    })


def test_policy_record_by_id_returns_that_policy_and_names_a_missing_one(store_engine):
    config = RunConfig()
    _register(store_engine, "ppo-older-s42", config, "2021-06-30 00:00:00+00:00")
    _register(store_engine, "ppo-newer-s42", config, "2021-09-30 00:00:00+00:00")
    record = policy_record_by_id(store_engine, "ppo-older-s42")
    assert record.policy_id == "ppo-older-s42"
    assert record.model_path == "/models/ppo-older-s42/model.zip"
    assert record.data_snapshot_hash == "data-ppo-older-s42" and record.mlflow_run_id == "run-ppo-older-s42"
    assert record.train_end == "2021-06-30 00:00:00+00:00" and record.config_hash == config.config_hash
    assert record.seed == 42 and record.symbols == ("AAA", "BBB")
    # whatever was trained since, the id names exactly one policy
    assert latest_policy_record(store_engine, config).policy_id in {"ppo-older-s42", "ppo-newer-s42"}
    with pytest.raises(LookupError, match="ppo-missing-s1"):
        policy_record_by_id(store_engine, "ppo-missing-s1")


def test_latest_policy_record_names_the_config_when_none_exists(store_engine):
    with pytest.raises(LookupError, match="no trained policy for run config 'demo'"):
        latest_policy_record(store_engine, RunConfig())


def test_training_feature_set_and_data_range_choose_the_stored_features(monkeypatch):
    config = RunConfig().with_overrides(**{
        "training.feature_set": "full", "universe.symbols": ["AAA"],
        "data.start": "2021-01-04", "data.end": "2021-06-30"})
    asked = {}

    class Stop(Exception):
        pass

    def fake_load_feature_matrix(engine, symbols, start, end, feature_set):
        asked.update(symbols=symbols, start=start, end=end, feature_set=feature_set.name)
        raise Stop

    monkeypatch.setattr(pipeline_training, "load_feature_matrix", fake_load_feature_matrix)
    with pytest.raises(Stop):
        pipeline_training.load_market(None, config)
    assert asked == {"symbols": ["AAA"], "start": date(2021, 1, 4), "end": date(2021, 6, 30), "feature_set": "full"}
    # an upstream snapshot's symbols win over the config's universe
    with pytest.raises(Stop):
        pipeline_training.load_market(None, config, symbols=("QQQ", "SPY"), watchlist_hash="wl")
    assert asked["symbols"] == ["QQQ", "SPY"]
