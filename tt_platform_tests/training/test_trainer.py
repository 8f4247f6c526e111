"""Training end to end on a tiny market: determinism, checkpoints, resume and MLflow contents."""

import json
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from tt_platform.env import EnvConfig, make_env, policy_from_model, rollout
from tt_platform.training import (
    CheckpointError,
    MlflowTracker,
    TrainConfig,
    load_checkpoint,
    train_policy,
)
from tt_platform.training.checkpoint import load_model
from tt_platform_tests.env.markets import random_market

ENV = EnvConfig(window_size=5, episode_length=40, random_start=True, long_only=False)
TRAIN = TrainConfig(total_timesteps=256, n_envs=2, n_steps=64, batch_size=64, n_epochs=2,
                    net_arch=[16], seed=3)


@pytest.fixture(scope="module")
def market():
    return random_market(t=120, n=3, f=2, seed=1, feature_set_hash="fs-test")


@pytest.fixture(scope="module")
def tracked(market, tmp_path_factory):
    root = tmp_path_factory.mktemp("tracked")
    tracker = MlflowTracker((root / "mlruns").as_uri(), "unit-train")
    result = train_policy(market, ENV, TRAIN, tracker=tracker, checkpoint_dir=root / "ckpt",
                          lineage={"watchlist_hash": "wl-1", "db_password": "hunter2"},
                          drift_baseline={"ret_1": {"mean": 0.0, "std": 1.0}})
    return tracker, result


def test_same_seed_and_data_give_the_same_metrics(market, tmp_path):
    a = train_policy(market, ENV, TRAIN, checkpoint_dir=tmp_path / "a")
    b = train_policy(market, ENV, TRAIN, checkpoint_dir=tmp_path / "b")
    assert a.metrics == b.metrics
    assert a.episode_metrics == b.episode_metrics
    assert a.metrics["num_timesteps"] == 256 and "sharpe" in a.metrics
    c = train_policy(market, ENV, TRAIN.model_copy(update={"seed": 4}), checkpoint_dir=tmp_path / "c")
    assert c.metrics != a.metrics


def test_checkpoint_carries_lineage_and_loads(tracked, market):
    _, result = tracked
    checkpoint = load_checkpoint(result.checkpoint_path)
    assert checkpoint.num_timesteps == 256
    assert checkpoint.feature_set_hash == "fs-test"
    assert checkpoint.data_snapshot_hash == market.data_hash()
    assert checkpoint.seed == 3 and checkpoint.env_config == ENV and checkpoint.train_config == TRAIN
    assert checkpoint.code_version.startswith(("git:", "pkg:"))
    assert checkpoint.lineage["watchlist_hash"] == "wl-1"
    model = load_model(result.model_path)  # the model.zip path works as well as the folder
    eval_config = ENV.model_copy(update={"random_start": False, "episode_length": None})
    record = rollout(make_env(market, eval_config), policy_from_model(model))
    assert record.n_steps == market.n_steps - ENV.window_size
    assert result.metrics["steps"] == record.n_steps


def test_resume_continues_training(tracked, market, tmp_path):
    _, first = tracked
    resumed = train_policy(market, ENV, TRAIN.model_copy(update={"total_timesteps": 512}),
                           checkpoint_dir=tmp_path / "resumed",
                           resume_checkpoint=first.checkpoint_path)
    assert resumed.num_timesteps == 512
    before = load_checkpoint(first.checkpoint_path).load_model().policy.state_dict()
    after = load_checkpoint(resumed.checkpoint_path).load_model().policy.state_dict()
    assert any(not np.allclose(before[k].numpy(), after[k].numpy()) for k in before)
    assert load_checkpoint(resumed.checkpoint_path).lineage["resumed_from"] == str(first.checkpoint_path)


def test_resume_refuses_a_mismatched_checkpoint(tracked, market, tmp_path):
    _, first = tracked
    with pytest.raises(CheckpointError, match="window_size"):
        train_policy(market, ENV.model_copy(update={"window_size": 6}), TRAIN,
                     checkpoint_dir=tmp_path / "x", resume_checkpoint=first.checkpoint_path)
    other = random_market(t=120, n=3, f=2, seed=1, feature_set_hash="fs-other")
    with pytest.raises(CheckpointError, match="feature_set_hash"):
        train_policy(other, ENV, TRAIN, checkpoint_dir=tmp_path / "y",
                     resume_checkpoint=first.checkpoint_path)
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(tmp_path)


def test_periodic_checkpoints(market, tmp_path):
    train_policy(market, ENV, TRAIN.model_copy(update={"checkpoint_every": 128, "eval_episode": False}),
                 checkpoint_dir=tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["LATEST", "step-0000000128", "step-0000000256"]


def test_mlflow_run_contents(tracked):
    tracker, result = tracked
    client: MlflowClient = tracker.client
    run = client.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["train.algo"] == "ppo" and params["train.seed"] == "3"
    assert params["env.window_size"] == "5"
    assert params["feature_set_hash"] == "fs-test"
    assert params["lineage.watchlist_hash"] == "wl-1"
    assert not any("hunter2" in v for v in params.values())
    assert not any("password" in k for k in params)
    metrics = run.data.metrics
    for name in ("sharpe", "max_drawdown", "turnover", "exposure_utilisation", "num_timesteps"):
        assert name in metrics
    history = client.get_metric_history(run.info.run_id, "episode/reward_sum")
    assert len(history) == result.metrics["train_episodes"] >= 1
    assert [m.step for m in history] == list(range(1, len(history) + 1))
    for name in ("episode/sharpe", "episode/sortino", "episode/max_drawdown", "episode/turnover",
                 "episode/exposure_utilisation", "episode/win_ratio"):
        assert client.get_metric_history(run.info.run_id, name), name
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model", "config", "drift_baseline.json"} <= top
    assert {a.path for a in client.list_artifacts(run.info.run_id, "model")} == {
        "model/model.zip", "model/checkpoint.json"}
    local = Path(client.download_artifacts(run.info.run_id, "drift_baseline.json"))
    assert json.loads(local.read_text()) == {"ret_1": {"mean": 0.0, "std": 1.0}}
    versions = client.search_model_versions(f"name='{tracker.registered_model_name}'")
    mine = [str(v.version) for v in versions if v.run_id == run.info.run_id]
    assert mine == [result.registered_model_version]
    assert result.mlflow_run_url.endswith(run.info.run_id)


def test_sac_needs_continuous_actions(market, tmp_path):
    with pytest.raises(ValueError, match="continuous"):
        train_policy(market, ENV.model_copy(update={"action_scheme": "discrete"}),
                     TRAIN.model_copy(update={"algo": "sac"}), checkpoint_dir=tmp_path)


@pytest.mark.parametrize("algo, extra", [
    ("a2c", {"n_steps": 8}),
    ("sac", {"learning_starts": 16, "batch_size": 16, "buffer_size": 500}),
])
def test_other_algorithms_train_and_checkpoint(market, tmp_path, algo, extra):
    config = TRAIN.model_copy(update={"algo": algo, "total_timesteps": 64, "n_envs": 1,
                                      "eval_episode": False, **extra})
    result = train_policy(market, ENV, config, checkpoint_dir=tmp_path)
    checkpoint = load_checkpoint(result.checkpoint_path)
    assert checkpoint.algo == algo and checkpoint.num_timesteps == 64
    assert type(checkpoint.load_model()).__name__ == algo.upper()
