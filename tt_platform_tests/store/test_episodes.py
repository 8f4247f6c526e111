import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tt_platform.store.episodes import (
    append_episode_steps,
    delete_episode,
    finish_episode,
    list_episodes,
    read_episode,
    write_episode,
)
from tt_platform.store.orders import read_fills, read_orders, record_fills, record_orders
from tt_platform.store.policies import get_policy, list_policies, register_policy
from tt_platform.store.schema import EPISODE_TABLES
from tt_platform.store.upsert import UpsertError

START = pd.Timestamp("2024-01-02", tz="UTC")
POLICY = {
    "policy_id": "ppo-1",
    "mlflow_run_id": "run-abc",
    "algo": "ppo",
    "feature_set_hash": "fs1",
    "data_snapshot_hash": "ds1",
    "config_hash": "cfg1",
    "config": {"lr": 3e-4, "layers": [64, 64]},
    "seed": 7,
    "code_version": "0.1.0+g1234",
    "model_uri": "runs:/run-abc/model",
}


def episode_frames(steps: int, instruments=("AAA", "BBB"), seed=0):
    rng = np.random.default_rng(seed)
    ts = pd.date_range(START, periods=steps, freq="D")
    per_instrument = pd.DataFrame(
        [(s, t, i) for s, t in enumerate(ts) for i in instruments], columns=["step", "ts", "instrument"]
    )
    actions = per_instrument.assign(action=rng.normal(size=len(per_instrument)))
    weights = per_instrument.assign(weight=rng.random(len(per_instrument)))
    rewards = pd.DataFrame(
        {"step": range(steps), "ts": ts, "reward": rng.normal(size=steps),
         "components": [{"pnl": float(x), "cost": -0.001} for x in rng.normal(size=steps)]}
    )
    equity = pd.DataFrame(
        {"step": range(steps), "ts": ts, "equity": 1e5 + np.arange(steps), "cash": 5e4,
         "gross_exposure": 0.5, "drawdown": 0.0}
    )
    return actions, rewards, equity, weights


def row(episode_id="ep-1", **extra):
    return {"episode_id": episode_id, "policy_id": "ppo-1", "kind": "eval", "started_at": START, "seed": 1,
            "config": {"window": 20}} | extra


def test_episode_round_trips_in_one_call(store_engine):
    register_policy(store_engine, POLICY)
    actions, rewards, equity, weights = episode_frames(30)
    written = write_episode(store_engine, row(), actions, rewards, equity, weights)
    assert written == {"actions": 60, "rewards": 30, "equity": 30, "weights": 60}
    log = read_episode(store_engine, "ep-1")
    assert log.row["kind"] == "eval" and log.row["config"] == {"window": 20}
    pd.testing.assert_frame_equal(log["actions"].drop(columns="episode_id"), actions, check_dtype=False)
    assert log["rewards"]["components"].tolist() == rewards["components"].tolist()
    pd.testing.assert_frame_equal(log["equity"].drop(columns="episode_id"), equity, check_dtype=False)
    assert log["portfolio"].empty and log["holdings"].empty


def test_rewriting_an_episode_replaces_its_log(store_engine):
    write_episode(store_engine, row(policy_id=None), *episode_frames(30))
    write_episode(store_engine, row(policy_id=None), *episode_frames(10, seed=1))
    log = read_episode(store_engine, "ep-1")
    assert len(log["actions"]) == 20 and log["rewards"]["step"].max() == 9


def test_a_bad_frame_writes_nothing_of_the_episode(store_engine):
    actions, rewards, equity, weights = episode_frames(5)
    weights.loc[3, "weight"] = np.nan
    with pytest.raises(UpsertError, match="NOT NULL column 'weight'"):
        write_episode(store_engine, row(policy_id=None), actions, rewards, equity, weights)
    assert read_episode(store_engine, "ep-1") is None
    with store_engine.connect() as conn:
        assert sum(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() for t in EPISODE_TABLES) == 0


def test_unknown_policy_and_bad_rows_are_refused(store_engine):
    with pytest.raises(UpsertError, match="foreign key"):
        write_episode(store_engine, row(policy_id="nope"))
    with pytest.raises(ValueError, match="kind 'bogus'"):
        write_episode(store_engine, row(kind="bogus"))
    with pytest.raises(ValueError, match="unknown fields"):
        write_episode(store_engine, row(colour="red"))
    actions = episode_frames(2)[0].assign(episode_id="other")
    with pytest.raises(ValueError, match="other episodes"):
        write_episode(store_engine, row(policy_id=None), actions)


def test_live_loop_appends_steps_and_finishes(store_engine):
    actions, rewards, equity, weights = episode_frames(6)
    write_episode(store_engine, row(policy_id=None, kind="paper"), actions[actions.step < 3], rewards[rewards.step < 3])
    append_episode_steps(store_engine, "ep-1", actions=actions[actions.step >= 3], rewards=rewards[rewards.step >= 3],
                         portfolio=equity[["step", "ts", "cash", "equity"]].assign(leverage=1.0))
    finish_episode(store_engine, "ep-1", ended_at="2024-01-08T00:00:00Z", metrics={"sharpe": np.float64(1.2), "sortino": np.nan})
    log = read_episode(store_engine, "ep-1")
    assert log["actions"]["step"].tolist() == [s for s in range(6) for _ in range(2)]
    assert len(log["portfolio"]) == 6
    assert log.row["ended_at"] == pd.Timestamp("2024-01-08", tz="UTC")
    assert log.row["metrics"] == {"sharpe": 1.2, "sortino": None}
    with pytest.raises(KeyError, match="not recorded"):
        append_episode_steps(store_engine, "ghost", actions=actions)
    with pytest.raises(KeyError, match="not recorded"):
        finish_episode(store_engine, "ghost", ended_at=START)


def test_deleting_an_episode_cascades_to_its_steps_and_orders(store_engine):
    write_episode(store_engine, row(policy_id=None), *episode_frames(4))
    orders = pd.DataFrame(
        {"order_id": ["o1", "o2"], "episode_id": "ep-1", "ts": START, "instrument": ["AAA", "BBB"],
         "side": ["buy", "sell"], "quantity": [10.0, 5.0], "order_type": "MKT", "status": "filled"}
    )
    fills = pd.DataFrame(
        {"fill_id": ["f1", "f2"], "order_id": ["o1", "o2"], "ts": START, "instrument": ["AAA", "BBB"],
         "quantity": [10.0, -5.0], "price": [100.0, 50.0], "commission": [1.0, 1.0]}
    )
    assert record_orders(store_engine, orders) == 2 and record_fills(store_engine, fills) == 2
    assert read_fills(store_engine, "ep-1")["fill_id"].tolist() == ["f1", "f2"]
    assert delete_episode(store_engine, "ep-1") is True
    assert read_episode(store_engine, "ep-1") is None
    assert read_orders(store_engine).empty and read_fills(store_engine).empty
    assert delete_episode(store_engine, "ep-1") is False


def test_order_status_updates_and_side_check(store_engine):
    base = {"order_id": "o1", "episode_id": None, "ts": START, "instrument": "AAA", "side": "buy",
            "quantity": 1.0, "order_type": "LMT", "limit_price": 99.5, "status": "submitted"}
    record_orders(store_engine, pd.DataFrame([base]))
    assert record_orders(store_engine, pd.DataFrame([base | {"status": "filled", "broker_order_id": "42"}])) == 1
    out = read_orders(store_engine)
    assert out[["status", "broker_order_id"]].values.tolist() == [["filled", "42"]]
    with pytest.raises(UpsertError, match="ck_tt_order_side"):
        record_orders(store_engine, pd.DataFrame([base | {"order_id": "o2", "side": "short"}]))


def test_policies_register_idempotently(store_engine):
    assert register_policy(store_engine, POLICY) == 1
    assert register_policy(store_engine, POLICY) == 0
    stored = get_policy(store_engine, "ppo-1")
    assert stored["config"] == {"lr": 3e-4, "layers": [64, 64]} and stored["seed"] == 7
    assert stored["created_at"].tzinfo is not None
    assert get_policy(store_engine, "nope") is None
    assert list_policies(store_engine, feature_set_hash="fs1")["policy_id"].tolist() == ["ppo-1"]
    with pytest.raises(ValueError, match="unknown fields"):
        register_policy(store_engine, POLICY | {"colour": "red"})


def test_list_episodes_filters(store_engine):
    register_policy(store_engine, POLICY)
    write_episode(store_engine, row("a", kind="train"))
    write_episode(store_engine, row("b", kind="eval", started_at=START + pd.Timedelta(days=1)))
    assert list_episodes(store_engine)["episode_id"].tolist() == ["b", "a"]
    assert list_episodes(store_engine, policy_id="ppo-1", kind="train")["episode_id"].tolist() == ["a"]
