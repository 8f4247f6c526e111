"""Stress scenarios: the loss each shock causes and what the real risk gate does along the path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tt_platform.config.env import EnvConfig
from tt_platform.core import CostModel, RiskLimits
from tt_platform.evaluation.stress import (
    STANDARD_SCENARIOS,
    STRESS_COLUMNS,
    CorrelationSpike,
    GapShock,
    PortfolioState,
    VolatilityShock,
    closes_from_bars,
    last_step_weights,
    parse_weights,
    portfolio_state_from_weights,
    risk_limits_from_env,
    run_stress,
    simulate,
    starting_breaches,
    state_from_closes,
)

PRICES = {"SPY": 400.0, "QQQ": 300.0, "TLT": 100.0}


def history(t=120, n=3, vol=0.01, seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(0.0, vol, (t, n)), columns=list(PRICES)[:n])


def invested(weights=None, equity=100_000.0, **kwargs):
    weights = weights or {"SPY": 0.5, "QQQ": 0.3, "TLT": 0.2}
    return portfolio_state_from_weights(weights, PRICES, equity, **kwargs)


def by_scenario(frame):
    return frame.set_index("scenario")


def test_state_from_weights_holds_the_weights():
    state = invested({"SPY": 0.6, "QQQ": 0.6}, recent_returns=history())
    assert state.symbols == ("SPY", "QQQ", "TLT")
    assert state.equity == pytest.approx(100_000.0)
    np.testing.assert_allclose(state.weights, [0.6, 0.6, 0.0])
    assert state.cash == pytest.approx(-20_000.0) and state.gross_exposure == pytest.approx(1.2)
    assert state.recent_returns.shape == (120, 3)
    with pytest.raises(ValueError, match="no price for IWM"):
        invested({"IWM": 1.0})
    with pytest.raises(ValueError, match="equity must be > 0"):
        PortfolioState(("A",), [-10.0], 500.0, [100.0])


def test_each_standard_scenario_loses_what_it_should():
    """Fully invested at 1x, no costs, a gate that never binds: each loss is the shock itself."""
    state = invested(recent_returns=history())
    frame = run_stress(state, RiskLimits(), seed=3)
    assert list(frame.columns) == list(STRESS_COLUMNS)
    assert list(frame["scenario"]) == [s.name for s in STANDARD_SCENARIOS]
    rows = by_scenario(frame)
    gap = rows.loc["gap_down_10"]
    assert gap["loss_pct"] == pytest.approx(0.10, abs=1e-12)
    assert gap["loss"] == pytest.approx(10_000.0) and gap["final_equity"] == pytest.approx(90_000.0)
    assert gap["worst_drawdown"] == pytest.approx(0.10) and gap["bars"] == 1
    # the largest position (SPY, half the book) halves
    assert rows.loc["one_symbol_minus_50", "loss_pct"] == pytest.approx(0.25, abs=1e-12)
    for name in ("vol_x3_month", "correlation_spike"):
        row = rows.loc[name]
        assert row["bars"] == 21
        assert 0.0 < row["loss_pct"] <= row["worst_drawdown"] + 1e-12  # the 5th-percentile path loses
    # long-only at 1x never exceeds the cap; no limit trips; no trades, so no costs
    assert not frame["over_leverage_cap"].any()
    assert frame["kill_switch_bar"].isna().all() and frame["daily_loss_bar"].isna().all()
    assert (frame["costs"] == 0.0).all()


def test_half_invested_gap_loses_half_the_shock():
    state = invested({"SPY": 0.25, "QQQ": 0.25})
    path = simulate(state, RiskLimits(), STANDARD_SCENARIOS[0])
    assert path.loss_pct == pytest.approx(0.05)
    np.testing.assert_allclose(path.equity, [100_000.0, 95_000.0])


def test_a_cash_only_portfolio_loses_nothing():
    state = portfolio_state_from_weights({}, PRICES, 50_000.0, recent_returns=history())
    frame = run_stress(state, RiskLimits(max_drawdown=0.01, daily_loss_limit=0.01), seed=0)
    assert (frame["loss"] == 0.0).all() and (frame["final_equity"] == 50_000.0).all()
    assert (frame["worst_drawdown"] == 0.0).all()
    assert frame["kill_switch_bar"].isna().all() and frame["daily_loss_bar"].isna().all()
    assert (frame["gate_actions"] == "none").all()


def test_the_drawdown_kill_switch_trips_when_the_limit_is_crossed_and_not_otherwise():
    state = invested({"SPY": 0.5, "QQQ": 0.5})
    gap = GapShock("gap", "10% gap", shock=-0.10)
    tripped = simulate(state, RiskLimits(max_drawdown=0.08), gap)
    assert tripped.kill_switch_bar == 1
    assert "max_drawdown" in tripped.gate_actions()
    np.testing.assert_allclose(tripped.final_weights, 0.0, atol=1e-12)  # the gate went flat
    assert simulate(state, RiskLimits(max_drawdown=0.15), gap).kill_switch_bar is None
    # a pre-existing drawdown counts: 10 % below the peak plus a 10 % gap is 19 %
    deep = invested({"SPY": 0.5, "QQQ": 0.5}, peak_equity=100_000.0 / 0.9)
    assert simulate(deep, RiskLimits(max_drawdown=0.15), gap).kill_switch_bar == 1

    # along a path: the first bar at or beyond the limit, and it is flat from there
    slide = np.full((5, 3), 0.97)

    class Slide(GapShock):
        def price_relatives(self, state, rng):
            return slide

    path = simulate(state, RiskLimits(max_drawdown=0.085), Slide("slide", "3% a bar"))
    expected = int(np.argmax(1 - 0.97 ** np.arange(1, 6) >= 0.085)) + 1
    assert path.kill_switch_bar == expected == 3
    np.testing.assert_allclose(path.equity[expected:], path.equity[expected])
    assert path.worst_drawdown == pytest.approx(1 - 0.97**3)


def test_the_daily_loss_limit_trips_on_the_gap_and_holds_the_liquidation_back():
    state = invested({"SPY": 0.5, "QQQ": 0.5})
    gap = GapShock("gap", "10% gap", shock=-0.10)
    assert simulate(state, RiskLimits(daily_loss_limit=0.05), gap).daily_loss_bar == 1
    assert simulate(state, RiskLimits(daily_loss_limit=0.12), gap).daily_loss_bar is None
    # both switches trip; the daily one blocks the kill switch's sell orders for the session
    both = simulate(state, RiskLimits(max_drawdown=0.08, daily_loss_limit=0.05), gap)
    assert (both.kill_switch_bar, both.daily_loss_bar, both.orders_blocked) == (1, 1, 2)
    np.testing.assert_allclose(both.final_weights, [0.5, 0.5, 0.0], atol=1e-12)  # still held


def test_leverage_after_the_shock_is_reported_and_clamped_by_the_gate():
    state = invested({"SPY": 0.75, "QQQ": 0.75})
    limits = RiskLimits(leverage_cap=1.5, per_symbol_cap=1.0)
    row = by_scenario(run_stress(state, limits, [GapShock("gap", "10% gap", shock=-0.10)])).loc["gap"]
    # 1.35 of exposure on 0.85 of equity
    assert row["gross_after_shock"] == pytest.approx(1.35 / 0.85)
    assert row["over_leverage_cap"] and row["clamped_bars"] == 1
    assert row["gate_actions"].startswith("bar 1 leverage_cap: 1.588 -> 1.5")
    path = simulate(state, limits, GapShock("gap", "10% gap", shock=-0.10))
    assert np.abs(path.final_weights).sum() == pytest.approx(1.5)
    # with costs the gate's sale is paid for
    costly = simulate(state, limits, GapShock("gap", "10% gap", shock=-0.10), cost_model=CostModel(5.0, 5.0))
    assert costly.costs > 0 and costly.final_equity == pytest.approx(85_000.0 - costly.costs)


def test_rebalance_policy_returns_to_its_weights_through_the_gate():
    state = invested({"SPY": 0.5, "QQQ": 0.3}, recent_returns=history())
    vol = STANDARD_SCENARIOS[1]
    held = simulate(state, RiskLimits(), vol, seed=5)
    mixed = simulate(state, RiskLimits(), vol, seed=5, policy="rebalance")
    np.testing.assert_allclose(mixed.final_weights, [0.5, 0.3, 0.0], atol=1e-9)
    assert not np.allclose(held.final_weights, [0.5, 0.3, 0.0], atol=1e-6)
    with pytest.raises(ValueError, match="policy"):
        simulate(state, RiskLimits(), vol, policy="yolo")


def test_deterministic_per_seed():
    state = invested(recent_returns=history())
    limits = RiskLimits(max_drawdown=0.2, daily_loss_limit=0.03)
    first, again = run_stress(state, limits, seed=11), run_stress(state, limits, seed=11)
    pd.testing.assert_frame_equal(first, again)
    other = run_stress(state, limits, seed=12)
    random_rows = first["scenario"].isin(["vol_x3_month", "correlation_spike"])
    assert not np.allclose(first.loc[random_rows, "final_equity"], other.loc[random_rows, "final_equity"])
    # a scenario's path does not depend on which other scenarios run
    alone = run_stress(state, limits, [STANDARD_SCENARIOS[3]], seed=11)
    assert alone["final_equity"].iloc[0] == first.set_index("scenario").loc["correlation_spike", "final_equity"]


def test_volatility_and_correlation_follow_the_recent_history():
    state = invested(recent_returns=history(t=250, vol=0.01))
    rng = np.random.default_rng(0)
    triple = VolatilityShock("v", "", multiplier=3.0, bars=2000, n_paths=1)
    draws = np.log(triple.price_relatives(state, rng))
    recent = np.log1p(state.recent_returns[-63:]).std(axis=0, ddof=1)  # the default lookback
    np.testing.assert_allclose(draws.std(axis=0), 3.0 * recent, rtol=0.06)
    # correlations of the history are kept
    rho = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]])
    correlated = pd.DataFrame(np.random.default_rng(2).multivariate_normal(np.zeros(3), rho * 1e-4, 63),
                              columns=list(PRICES))
    draws = np.log(triple.price_relatives(invested(recent_returns=correlated), rng))
    np.testing.assert_allclose(np.corrcoef(draws.T), np.corrcoef(np.log1p(correlated.to_numpy()).T), atol=0.06)
    # no history: the default volatility
    bare = invested()
    draws = np.log(VolatilityShock("v", "", bars=2000, n_paths=1, default_vol=0.02).price_relatives(bare, rng))
    np.testing.assert_allclose(draws.std(axis=0), 0.06, rtol=0.1)
    spike = CorrelationSpike("c", "", correlation=0.9, bars=4000, n_paths=1, drift=0.0)
    draws = np.log(spike.price_relatives(state, rng))
    corr = np.corrcoef(draws.T)
    np.testing.assert_allclose(corr[np.triu_indices(3, 1)], 0.9, atol=0.03)
    falling = CorrelationSpike("c", "", bars=4000, n_paths=1)
    assert np.log(falling.price_relatives(state, rng)).mean() < 0  # down-biased


def test_risk_limits_from_env_config():
    env = EnvConfig(leverage_cap=1.5, per_symbol_cap=0.4, long_only=False, max_drawdown=0.2)
    limits = risk_limits_from_env(env, daily_loss_limit=0.03)
    assert limits == RiskLimits(leverage_cap=1.5, per_symbol_cap=0.4, long_only=False, max_drawdown=0.2,
                                daily_loss_limit=0.03)
    assert risk_limits_from_env(EnvConfig(max_drawdown=1.0)).max_drawdown is None
    assert risk_limits_from_env(env, max_drawdown=None).max_drawdown is None


def test_inputs_for_the_command_line():
    assert parse_weights("spy=0.5, QQQ=0.5") == {"SPY": 0.5, "QQQ": 0.5}
    for bad, message in (("SPY", "SYMBOL=WEIGHT"), ("SPY=x", "not"), ("SPY=1,SPY=2", "twice"), ("", "none")):
        with pytest.raises(ValueError, match=message):
            parse_weights(bad)
    ts = pd.date_range("2024-01-01", periods=4, freq="D", tz="UTC")
    bars = pd.DataFrame({"symbol": ["SPY"] * 4 + ["QQQ"] * 3, "ts": list(ts) + list(ts[:3]),
                         "close": [100.0, 101.0, 99.0, 100.0, 50.0, 55.0, 60.0]})
    closes = closes_from_bars(bars)
    state = state_from_closes(closes, 10_000.0)
    assert state.symbols == ("QQQ", "SPY")
    np.testing.assert_allclose(state.prices, [60.0, 100.0])  # QQQ's last close carried forward
    np.testing.assert_allclose(state.weights, [0.5, 0.5])
    assert state.recent_returns.shape == (3, 2)
    with pytest.raises(ValueError, match="no stored close for IWM"):
        state_from_closes(closes.assign(IWM=np.nan), 10_000.0)
    stored = pd.DataFrame({"step": [0, 0, 1, 1], "instrument": ["SPY", "QQQ", "SPY", "QQQ"],
                           "weight": [0.1, 0.2, 0.3, 0.4]})
    assert last_step_weights(stored) == {"SPY": 0.3, "QQQ": 0.4}


def test_starting_breaches_name_what_the_gate_would_change_before_any_shock():
    assert starting_breaches(invested(), RiskLimits(per_symbol_cap=0.5)) == []
    assert starting_breaches(invested({"SPY": 0.75, "QQQ": 0.75}), RiskLimits(leverage_cap=1.2)) == [
        "leverage_cap: 1.5 -> 1.2"]
