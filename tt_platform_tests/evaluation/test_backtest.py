"""The backtester: one engine for baselines and policies, with no look-ahead."""

import numpy as np
import pandas as pd
import pytest

from tt_platform.config.env import EnvConfig
from tt_platform.core import CostModel, ExecutionCore, Portfolio, RiskLimits
from tt_platform.core.costs import IB_TIERED_US
from tt_platform.evaluation.backtest import Backtester, BarPanel
from tt_platform.evaluation.strategies import EqualWeight, Momentum, VolatilityTargetedEqualWeight


def ohlcv_panel(t=80, n=3, seed=0, freq="B", start="2021-01-04"):
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0005, 0.015, (t, n)), axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.005, (t, n)))
    high = np.maximum(open_, close) * (1 + rng.uniform(0.0, 0.01, (t, n)))
    low = np.minimum(open_, close) * (1 - rng.uniform(0.0, 0.01, (t, n)))
    volume = rng.uniform(5_000, 20_000, (t, n))
    timestamps = pd.date_range(start, periods=t, freq=freq, tz="UTC")
    return BarPanel(timestamps, [f"S{i}" for i in range(n)], open_, high, low, close, volume,
                    periods_per_year=252.0)


def fixed(weights):
    def strategy(t, state):
        return np.asarray(weights, dtype=float)
    return strategy


def test_close_fills_reproduce_the_envs_rebalance_arithmetic():
    panel = ohlcv_panel()
    costs = CostModel(commission_bps=5.0, slippage_bps=3.0)
    result = Backtester(cost_model=costs, risk_limits=None, initial_cash=10_000.0).run(
        fixed([0.5, 0.3, 0.2]), panel)
    portfolio, core = Portfolio(10_000.0, panel.symbols), ExecutionCore(costs)
    expected = []
    for t in range(panel.n_steps):
        core.mark(portfolio, panel.close[t])
        core.rebalance(portfolio, np.array([0.5, 0.3, 0.2]), panel.close[t])
        expected.append(core.mark(portfolio, panel.close[t]))
    np.testing.assert_allclose(result.equity.to_numpy(), expected, rtol=1e-10)
    assert result.commission.sum() == pytest.approx(portfolio.total_commission, rel=1e-10)
    assert result.slippage.sum() == pytest.approx(portfolio.total_slippage, rel=1e-10)


def test_open_fills_are_sized_at_the_decision_close_and_filled_at_the_next_open():
    panel = ohlcv_panel(t=5, n=1)
    result = Backtester(cost_model=CostModel(slippage_bps=10.0), fill_at="open",
                        initial_cash=10_000.0).run(fixed([1.0]), panel)
    first = result.fills.iloc[0]
    assert first["decided_at"] == panel.timestamps[0]
    assert first["filled_at"] == panel.timestamps[1]
    assert first["requested"] == pytest.approx(10_000.0 / panel.close[0, 0])
    assert first["price"] == pytest.approx(panel.open[1, 0] * 1.001)
    assert result.equity.iloc[0] == 10_000.0  # nothing filled at the first bar yet
    assert result.fills["decided_at"].max() == panel.timestamps[-2]  # no decision without a fill


@pytest.mark.parametrize("fill_at", ["close", "open"])
@pytest.mark.parametrize("order_type", ["MARKET", "LIMIT"])
def test_perturbing_bars_after_t_changes_no_decision_or_fill_up_to_t(fill_at, order_type):
    panel = ohlcv_panel(t=90, n=4, seed=3)
    cut = 50
    rng = np.random.default_rng(9)
    later = {}
    for name in ("open", "high", "low", "close", "volume"):
        values = getattr(panel, name).copy()
        values[cut + 1:] *= rng.uniform(0.7, 1.3, values[cut + 1:].shape)
        later[name] = values
    later["high"] = np.maximum.reduce([later["high"], later["open"], later["close"]])
    later["low"] = np.minimum.reduce([later["low"], later["open"], later["close"]])
    perturbed = BarPanel(panel.timestamps, panel.symbols, periods_per_year=252.0, **later)
    seen = []

    def peeking_momentum(t, state):
        assert state.history.n_steps == t + 1 and not state.history.close.flags.writeable
        seen.append(t)
        return Momentum(top_k=2, lookback=10, skip=2, every=3)(t, state)

    for strategy in (peeking_momentum, VolatilityTargetedEqualWeight(0.1, lookback=10, every=2)):
        backtester = Backtester(cost_model=CostModel(2.0, 3.0), fill_at=fill_at,
                                max_volume_share=0.05, order_type=order_type,
                                limit_offset_bps=-20.0 if order_type == "LIMIT" else 0.0)
        base, moved = backtester.run(strategy, panel), backtester.run(strategy, perturbed)
        cut_ts = panel.timestamps[cut]
        pd.testing.assert_frame_equal(base.orders[base.orders["decided_at"] <= cut_ts],
                                      moved.orders[moved.orders["decided_at"] <= cut_ts])
        pd.testing.assert_frame_equal(base.fills[base.fills["filled_at"] <= cut_ts],
                                      moved.fills[moved.fills["filled_at"] <= cut_ts])
        pd.testing.assert_series_equal(base.equity[:cut_ts], moved.equity[:cut_ts])
        assert not base.equity.equals(moved.equity)  # the perturbation did matter later on
    assert seen[:3] == [0, 1, 2]


def test_volume_capped_fills_show_up_as_partial_fills():
    panel = ohlcv_panel(t=10, n=2)
    result = Backtester(max_volume_share=0.01, initial_cash=1_000_000.0).run(
        EqualWeight(every=1), panel)
    first = result.fills[result.fills["decided_at"] == panel.timestamps[0]]
    assert (first["status"] == "PARTIAL").all()
    np.testing.assert_allclose(first["filled"], 0.01 * panel.volume[0])
    assert result.summary()["partial_fills"] >= 2


def test_orders_outside_market_hours_are_blocked_and_reported():
    panel = ohlcv_panel(t=6, n=2)
    market_open = np.array([False, True, True, False, True, True])
    result = Backtester().run(fixed([0.5, 0.5]), panel, market_open=market_open)
    blocked = result.interventions[result.interventions["rule"] == "market_closed"]
    assert list(blocked["decided_at"]) == [panel.timestamps[0], panel.timestamps[3]]
    assert panel.timestamps[0] not in set(result.fills["filled_at"])
    assert result.weights.iloc[0].sum() == 0.0 and result.weights.iloc[1].sum() > 0.99


def test_daily_kill_switch_halts_the_rest_of_the_day_and_trading_resumes_the_next():
    timestamps = pd.DatetimeIndex(
        [f"2024-03-04 {h}:30" for h in (14, 15, 16, 17)] +
        [f"2024-03-05 {h}:30" for h in (14, 15, 16, 17)], tz="UTC")
    close = np.array([[100.0], [100.0], [90.0], [95.0], [96.0], [97.0], [98.0], [99.0]])
    panel = BarPanel.from_close(timestamps, ["AAA"], close, periods_per_year=252 * 7)

    def flip(t, state):  # always wants to trade
        return np.array([1.0 if t % 2 == 0 else 0.9])

    result = Backtester(risk_limits=RiskLimits(daily_loss_limit=0.05)).run(flip, panel)
    halted = result.interventions[result.interventions["rule"] == "daily_loss_limit"]
    assert list(halted["decided_at"]) == list(timestamps[2:4])  # -9 % at 16:30, rest of day 1
    traded = set(result.fills["filled_at"])
    assert not traded & set(timestamps[2:4])
    assert set(timestamps[4:]) <= traded


def test_tiered_commission_rate_follows_the_month_and_resets_with_the_next():
    timestamps = pd.DatetimeIndex(["2024-01-29", "2024-01-30", "2024-01-31", "2024-02-01"],
                                  tz="UTC")
    panel = BarPanel.from_close(timestamps, ["AAA"], np.ones((4, 1)), periods_per_year=252.0)

    def flip(t, state):
        return np.array([1.0 if t % 2 == 0 else 0.0])

    result = Backtester(commission=IB_TIERED_US, initial_cash=200_000.0).run(flip, panel)
    rates = (result.fills["commission"] / result.fills["filled"].abs()).tolist()
    # ~200k shares each: 0 and ~200k traded before -> tier 1; ~400k -> tier 2; February: tier 1
    assert rates == pytest.approx([0.0035, 0.0035, 0.0020, 0.0035])


def test_result_series_add_up_and_summarise():
    panel = ohlcv_panel(t=40, n=3)
    result = Backtester(cost_model=CostModel(3.0, 2.0), fill_at="open").run(
        EqualWeight(every=5), panel)
    assert result.commission.sum() == pytest.approx(result.fills["commission"].sum())
    assert result.slippage.sum() == pytest.approx(result.fills["slippage"].sum())
    assert len(result.orders) == len(result.fills)
    assert result.gross_exposure.iloc[1] == pytest.approx(1.0, abs=0.01)  # bought at the open
    assert result.net_exposure.equals(result.weights.sum(axis=1).rename("net_exposure"))
    summary = result.summary()
    assert summary["total_commission"] == pytest.approx(result.commission.sum())
    assert summary["orders"] == len(result.orders) and summary["periods"] == 39
    assert result.strategy == "equal_weight"


def test_risk_gate_interventions_are_recorded_with_the_rule():
    panel = ohlcv_panel(t=5, n=2)
    result = Backtester(risk_limits=RiskLimits(leverage_cap=1.0, per_symbol_cap=0.4)).run(
        fixed([0.9, -0.2]), panel)
    assert set(result.interventions["rule"]) == {"long_only", "per_symbol_cap"}
    np.testing.assert_allclose(result.weights.iloc[0], [0.4, 0.0], atol=0.01)


def test_backtester_from_env_config_charges_and_gates_like_the_env():
    config = EnvConfig(commission_bps=3.0, slippage_bps=4.0, min_commission=1.0,
                       leverage_cap=1.5, per_symbol_cap=0.5, long_only=False,
                       initial_cash=5_000.0, fill_at="open")
    backtester = Backtester.from_env_config(config, max_volume_share=0.1)
    assert backtester.core.cost_model == CostModel(3.0, 4.0, 1.0)
    assert backtester.risk_limits == RiskLimits(leverage_cap=1.5, per_symbol_cap=0.5,
                                                long_only=False)
    assert backtester.fill_at == "open" and backtester.initial_cash == 5_000.0
    assert backtester.core.max_volume_share == 0.1


def test_bar_panel_from_long_bars_marks_missing_bars_untradable():
    ts = pd.date_range("2021-03-01", periods=3, freq="D", tz="UTC")
    bars = pd.DataFrame({"symbol": ["AAA", "AAA", "AAA", "BBB", "BBB"],
                         "ts": [ts[0], ts[1], ts[2], ts[0], ts[2]],
                         "open": 10.0, "high": 11.0, "low": 9.0, "close": [10.0, 10.5, 11.0, 20.0, 21.0],
                         "volume": 100.0})
    panel = BarPanel.from_bars(bars)
    assert panel.symbols == ["AAA", "BBB"]
    np.testing.assert_array_equal(panel.tradable[:, 1], [True, False, True])
    np.testing.assert_allclose(panel.last_price[:, 1], [20.0, 20.0, 21.0])  # past-only fill
    with pytest.raises(ValueError, match="run"):
        Backtester().run(EqualWeight(), panel, start=2)
