"""Migration 0005: the tt_episode_summary and tt_daily_performance views over the episode logs."""

import math

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command

from tt_platform.store.engine import alembic_config, create_store_engine
from tt_platform.store.episodes import write_episode
from tt_platform.store.orders import record_fills, record_orders
from tt_platform.store.performance import (
    DAILY_COLUMNS,
    SUMMARY_COLUMNS,
    read_daily_performance,
    read_episode_summary,
)
from tt_platform.store.policies import register_policy

POLICY = {
    "policy_id": "ppo-1", "algo": "ppo", "feature_set_hash": "fs1", "data_snapshot_hash": "ds1",
    "config_hash": "cfg1", "config": {}, "seed": 7, "code_version": "0.1.0",
}
EXACT = dict(rel=0, abs=1e-12)
DAYS = pd.date_range("2024-01-02", periods=4, freq="D", tz="UTC")
# intraday points over two UTC days; 23:59 and 00:30 straddle midnight UTC (not New York's)
INTRADAY = pd.DatetimeIndex(
    ["2024-01-02 14:30", "2024-01-02 18:00", "2024-01-02 23:59", "2024-01-03 00:30", "2024-01-03 21:00"], tz="UTC"
)


def daily_episode(store_engine):
    """ppo-1's eval episode: equity 100 -> 110 -> 99 -> 121 over four days, three rewards."""
    register_policy(store_engine, POLICY)
    equity = pd.DataFrame(
        {"step": range(4), "ts": DAYS, "equity": [100.0, 110.0, 99.0, 121.0], "cash": 50.0,
         "gross_exposure": [0.0, 0.5, 1.0, 0.75], "drawdown": [0.0, 0.0, 0.1, 0.0]}
    )
    rewards = pd.DataFrame({"step": [1, 2, 3], "ts": DAYS[1:], "reward": [0.5, -1.0, 2.0]})
    row = {"episode_id": "ep-daily", "policy_id": "ppo-1", "kind": "eval", "started_at": DAYS[0],
           "ended_at": DAYS[-1], "seed": 7, "metrics": {"turnover": 0.2, "total_cost": 3.5, "sharpe": 1.0}}
    write_episode(store_engine, row, rewards_df=rewards, equity_df=equity)


def intraday_episode(store_engine):
    """A baseline backtest with five equity points over two UTC days and two filled orders."""
    equity = pd.DataFrame({"step": range(5), "ts": INTRADAY, "equity": [100.0, 120.0, 108.0, 96.0, 114.0]})
    row = {"episode_id": "ep-intraday", "policy_id": None, "kind": "backtest", "started_at": INTRADAY[0],
           "metrics": {"total_cost": 99.0, "turnover": "n/a"}}
    write_episode(store_engine, row, equity_df=equity)
    orders = pd.DataFrame(
        {"order_id": ["o1", "o2"], "episode_id": "ep-intraday", "ts": INTRADAY[0], "instrument": ["AAA", "BBB"],
         "side": ["buy", "sell"], "quantity": [10.0, 5.0], "order_type": "MKT", "status": "filled"}
    )
    fills = pd.DataFrame(
        {"fill_id": ["f1", "f2"], "order_id": ["o1", "o2"], "ts": INTRADAY[0], "instrument": ["AAA", "BBB"],
         "quantity": [10.0, -5.0], "price": [100.0, 50.0], "commission": [1.0, 2.0], "slippage": [0.5, None]}
    )
    record_orders(store_engine, orders)
    record_fills(store_engine, fills)


def empty_episode(store_engine):
    row = {"episode_id": "ep-empty", "policy_id": None, "kind": "train", "started_at": DAYS[0]}
    write_episode(store_engine, row)


@pytest.fixture
def episodes(store_engine):
    daily_episode(store_engine)
    intraday_episode(store_engine)
    empty_episode(store_engine)
    return store_engine


def by_id(frame):
    return {r["episode_id"]: r for r in frame.to_dict("records")}


def test_summary_of_a_daily_episode(episodes):
    summary = read_episode_summary(episodes)
    assert list(summary.columns) == SUMMARY_COLUMNS
    # newest first, then by id: the intraday episode started later on 2024-01-02
    assert summary["episode_id"].tolist() == ["ep-intraday", "ep-daily", "ep-empty"]
    ep = by_id(summary)["ep-daily"]
    assert (ep["policy_id"], ep["kind"], ep["seed"]) == ("ppo-1", "eval", 7)
    assert ep["started_at"] == DAYS[0] and ep["ended_at"] == DAYS[-1]
    assert ep["steps"] == 3 and ep["equity_points"] == 4
    assert ep["first_ts"] == DAYS[0] and ep["last_ts"] == DAYS[-1]
    assert ep["initial_equity"] == 100.0 and ep["final_equity"] == 121.0
    assert ep["total_return"] == pytest.approx(0.21, **EXACT)
    assert ep["max_drawdown"] == pytest.approx(0.1, **EXACT)
    assert ep["total_reward"] == pytest.approx(1.5, **EXACT)
    # no fills: the cost and turnover the metrics hold
    assert ep["total_cost"] == 3.5 and ep["mean_turnover"] == 0.2
    # the points after the first one (0.5, 1.0, 0.75)
    assert ep["mean_gross_exposure"] == pytest.approx(0.75, **EXACT)
    assert ep["metrics"] == {"turnover": 0.2, "total_cost": 3.5, "sharpe": 1.0}


def test_summary_of_an_intraday_episode_with_fills(episodes):
    ep = by_id(read_episode_summary(episodes))["ep-intraday"]
    assert ep["policy_id"] is None or pd.isna(ep["policy_id"])
    assert ep["steps"] == 0 and math.isnan(ep["total_reward"])
    assert ep["equity_points"] == 5 and ep["first_ts"] == INTRADAY[0] and ep["last_ts"] == INTRADAY[-1]
    assert ep["total_return"] == pytest.approx(0.14, **EXACT)
    assert ep["max_drawdown"] == pytest.approx(0.2, **EXACT)  # 96 after the peak of 120
    # fills win over metrics.total_cost; a NULL slippage counts as none
    assert ep["total_cost"] == pytest.approx(3.5, **EXACT)
    # a turnover that is not a number, and gross exposure never recorded
    assert math.isnan(ep["mean_turnover"]) and math.isnan(ep["mean_gross_exposure"])


def test_an_episode_without_equity_points_has_nulls(episodes):
    ep = by_id(read_episode_summary(episodes))["ep-empty"]
    assert ep["steps"] == 0 and ep["equity_points"] == 0
    assert pd.isna(ep["first_ts"]) and pd.isna(ep["last_ts"]) and pd.isna(ep["ended_at"])
    for name in ("initial_equity", "final_equity", "total_return", "max_drawdown", "total_reward", "total_cost",
                 "mean_turnover", "mean_gross_exposure", "seed"):
        assert math.isnan(ep[name]), name
    assert ep["metrics"] is None
    assert read_daily_performance(episodes, "ep-empty").empty


def test_summary_filters(episodes):
    assert read_episode_summary(episodes, policy_id="ppo-1")["episode_id"].tolist() == ["ep-daily"]
    assert read_episode_summary(episodes, kind="backtest")["episode_id"].tolist() == ["ep-intraday"]
    assert read_episode_summary(episodes, policy_id="ppo-1", kind="train").empty
    chosen = read_episode_summary(episodes, episode_ids=["ep-empty", "ep-daily"])
    assert chosen["episode_id"].tolist() == ["ep-daily", "ep-empty"]


def test_daily_performance_of_a_daily_episode(episodes):
    daily = read_daily_performance(episodes, "ep-daily")
    assert list(daily.columns) == DAILY_COLUMNS
    assert daily["day"].tolist() == list(DAYS)
    assert str(daily["day"].dtype) == "datetime64[ns, UTC]"
    assert set(daily["policy_id"]) == {"ppo-1"} and set(daily["kind"]) == {"eval"}
    assert daily["equity"].tolist() == [100.0, 110.0, 99.0, 121.0]
    assert math.isnan(daily["daily_return"].iloc[0])
    assert daily["daily_return"].iloc[1:].tolist() == pytest.approx([0.1, -0.1, 121 / 99 - 1], **EXACT)
    assert daily["drawdown"].tolist() == pytest.approx([0.0, 0.0, 0.1, 0.0], **EXACT)
    assert daily["cumulative_return"].tolist() == pytest.approx([0.0, 0.1, -0.01, 0.21], **EXACT)


def test_intraday_points_collapse_to_the_last_of_the_utc_day(episodes):
    # the session's time zone does not move the day boundaries
    with episodes.connect() as conn:
        conn.exec_driver_sql("SET TIME ZONE 'America/New_York'")
        daily = read_daily_performance(conn, ["ep-intraday"])
    assert daily["day"].tolist() == [pd.Timestamp("2024-01-02", tz="UTC"), pd.Timestamp("2024-01-03", tz="UTC")]
    assert daily["equity"].tolist() == [108.0, 114.0]
    assert math.isnan(daily["daily_return"].iloc[0])
    assert daily["daily_return"].iloc[1] == pytest.approx(114 / 108 - 1, **EXACT)
    # from the intraday peak of 120, not from the previous close
    assert daily["drawdown"].tolist() == pytest.approx([0.1, 0.05], **EXACT)
    # since the first point (100), not since the first close
    assert daily["cumulative_return"].tolist() == pytest.approx([0.08, 0.14], **EXACT)


def test_daily_performance_filters_and_order(episodes):
    everything = read_daily_performance(episodes)
    assert everything[["episode_id"]].value_counts().to_dict() == {("ep-daily",): 4, ("ep-intraday",): 2}
    assert everything["episode_id"].tolist() == ["ep-daily"] * 4 + ["ep-intraday"] * 2
    assert read_daily_performance(episodes, policy_id="ppo-1")["episode_id"].unique().tolist() == ["ep-daily"]
    assert read_daily_performance(episodes, kind="backtest")["episode_id"].unique().tolist() == ["ep-intraday"]
    assert read_daily_performance(episodes, []).empty


def test_a_wiped_out_book_gives_numbers_not_errors(store_engine):
    equity = pd.DataFrame({"step": [0, 1], "ts": DAYS[:2], "equity": [100.0, 0.0]})
    write_episode(store_engine, {"episode_id": "ep-bust", "kind": "backtest", "started_at": DAYS[0]},
                  equity_df=equity)
    ep = read_episode_summary(store_engine).iloc[0]
    assert ep["total_return"] == -1.0 and ep["max_drawdown"] == 1.0
    daily = read_daily_performance(store_engine, "ep-bust")
    assert daily["daily_return"].iloc[1] == -1.0 and daily["drawdown"].tolist() == [0.0, 1.0]
    assert daily["cumulative_return"].tolist() == [0.0, -1.0]


def test_downgrade_drops_both_views(fresh_schema_url):
    engine = create_store_engine(fresh_schema_url)
    config = alembic_config(fresh_schema_url)

    def views():
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_view_names())

    try:
        command.upgrade(config, "head")
        assert {"tt_episode_summary", "tt_daily_performance"} <= views()
        command.downgrade(config, "0004")
        assert views() == {"tt_features"}
        command.upgrade(config, "0005")
        assert {"tt_episode_summary", "tt_daily_performance"} <= views()
        assert read_episode_summary(engine).empty and read_daily_performance(engine).empty
    finally:
        engine.dispose()
