import json

import numpy as np
import pandas as pd
import pytest

from tt_platform.env import EnvConfig, make_env, rollout
from tt_platform.training.episodes import episode_frames, portfolio_frames
from tt_platform_tests.env.markets import random_market


@pytest.fixture(scope="module")
def record():
    market = random_market(t=40, n=3)
    rng = np.random.default_rng(0)
    return rollout(make_env(market, EnvConfig(window_size=30, long_only=False)),
                   lambda obs: rng.uniform(-1, 1, 3))


def test_frames_have_one_row_per_step_and_symbol(record):
    frames = episode_frames(record, episode_id="ep-1", policy_id="pol-1", kind="eval", seed=5,
                            config={"window_size": 30}, metrics={"sharpe": float("nan"), "x": 1})
    steps, symbols = record.n_steps, record.symbols
    assert steps == 10
    assert frames.episode["episode_id"] == "ep-1" and frames.episode["kind"] == "eval"
    assert frames.episode["started_at"] == record.start_timestamp
    assert frames.episode["ended_at"] == record.timestamps[-1]
    assert frames.episode["metrics"] == {"sharpe": None, "x": 1}  # NaN is not JSON
    assert list(frames.actions.columns) == ["episode_id", "step", "ts", "instrument", "action"]
    assert len(frames.actions) == steps * 3 and len(frames.target_weights) == steps * 3
    assert frames.actions[["step", "instrument"]].duplicated().sum() == 0
    last = frames.target_weights[frames.target_weights["step"] == steps]
    np.testing.assert_allclose(last["weight"], record.target_weights[-1])
    assert list(last["instrument"]) == symbols
    # decisions are stamped at the bar they were taken: the previous mark
    first = frames.actions[frames.actions["step"] == 1]
    assert (first["ts"] == record.start_timestamp).all()
    assert (frames.actions[frames.actions["step"] == 2]["ts"] == record.timestamps[0]).all()
    np.testing.assert_allclose(first["action"], record.actions[0])


def test_equity_curve_starts_at_step_zero(record):
    frames = episode_frames(record, episode_id="ep-1", policy_id=None, kind="backtest")
    equity = frames.equity
    assert list(equity["step"]) == list(range(record.n_steps + 1))
    assert equity["equity"].iloc[0] == record.initial_equity
    np.testing.assert_allclose(equity["equity"].iloc[1:], record.equity)
    pd.testing.assert_series_equal(
        pd.Series(equity["equity"].to_numpy(), index=pd.DatetimeIndex(equity["ts"])),
        record.equity_curve(), check_names=False)
    rewards = frames.rewards
    assert len(rewards) == record.n_steps
    assert json.loads(json.dumps(rewards["components"].iloc[0]))["log_return"] == pytest.approx(
        record.reward_components["log_return"][0])
    assert str(rewards["ts"].dtype) == "datetime64[ns, UTC]"


def test_bad_kind_and_id_are_refused(record):
    with pytest.raises(ValueError, match="kind"):
        episode_frames(record, episode_id="e", policy_id=None, kind="dream")
    with pytest.raises(ValueError, match="episode_id"):
        episode_frames(record, episode_id="", policy_id=None, kind="eval")


def test_portfolio_and_holdings_frames(record):
    portfolio, holdings = portfolio_frames(record, episode_id="ep-1")
    assert len(portfolio) == record.n_steps and len(holdings) == record.n_steps * 3
    np.testing.assert_allclose(portfolio["cash"], record.cash)
    last = holdings[holdings["step"] == record.n_steps]
    np.testing.assert_allclose(last["quantity"], record.positions[-1])
    # cash plus the holdings' market value is the equity of the step
    value = holdings.groupby("step")["market_value"].sum().to_numpy()
    np.testing.assert_allclose(portfolio["cash"] + value, portfolio["equity"])
