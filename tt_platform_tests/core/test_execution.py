import numpy as np
import pytest

from tt_platform.core import CostModel, ExecutionCore, Portfolio


def make(cash=10_000.0, symbols=("AAA", "BBB"), **costs):
    return Portfolio(cash, list(symbols)), ExecutionCore(CostModel(**costs))


def test_rebalance_arithmetic_by_hand():
    portfolio, core = make(commission_bps=10, slippage_bps=5)
    prices = np.array([100.0, 50.0])
    fills = core.rebalance(portfolio, np.array([0.5, 0.25]), prices)
    # equity 10,000 -> 50 shares of AAA (5,000) and 50 of BBB (2,500)
    np.testing.assert_allclose(fills.share_deltas, [50.0, 50.0])
    np.testing.assert_allclose(fills.fill_prices, [100.05, 50.025])
    # notional at fill: 5,002.50 + 2,501.25 = 7,503.75; commission 10 bps of that
    assert fills.commission == pytest.approx(7.50375)
    assert fills.slippage == pytest.approx(3.75)          # 7,500 x 5 bps
    assert fills.traded_value == pytest.approx(7_500.0)
    assert fills.turnover == pytest.approx(0.75)
    assert fills.cost == pytest.approx(7.50375 + 3.75)
    assert portfolio.cash == pytest.approx(10_000 - 7_503.75 - 7.50375)
    np.testing.assert_allclose(portfolio.positions, [50.0, 50.0])

    # Sell half of AAA: the fill is below the reference price.
    fills = core.rebalance(portfolio, np.array([0.25, 0.25]), prices)
    equity_before = 10_000 - 7.50375 - 3.75
    expected_aaa = 0.25 * equity_before / 100.0
    expected_bbb = 0.25 * equity_before / 50.0
    np.testing.assert_allclose(fills.share_deltas, [expected_aaa - 50.0, expected_bbb - 50.0])
    assert fills.fill_prices[0] == pytest.approx(99.95)
    assert fills.equity_before == pytest.approx(equity_before)


def test_mark_tracks_peak_and_large_drawdown():
    portfolio, core = make()
    core.rebalance(portfolio, np.array([1.0, 0.0]), np.array([100.0, 50.0]))
    assert core.mark(portfolio, np.array([120.0, 50.0])) == pytest.approx(12_000.0)
    assert portfolio.peak_equity == pytest.approx(12_000.0)
    core.mark(portfolio, np.array([36.0, 50.0]))  # -70 % from the peak
    assert portfolio.equity == pytest.approx(3_600.0)
    assert portfolio.drawdown == pytest.approx(0.7)
    core.mark(portfolio, np.array([60.0, 50.0]))
    assert portfolio.drawdown == pytest.approx(0.5)
    assert portfolio.max_drawdown == pytest.approx(0.7)


def test_full_flip_long_to_short_is_turnover_two():
    portfolio, core = make(slippage_bps=0)
    prices = np.array([100.0, 50.0])
    core.rebalance(portfolio, np.array([1.0, 0.0]), prices)
    fills = core.rebalance(portfolio, np.array([-1.0, 0.0]), prices)
    assert fills.turnover == pytest.approx(2.0)
    np.testing.assert_allclose(portfolio.positions, [-100.0, 0.0])
    assert portfolio.cash == pytest.approx(20_000.0)
    assert portfolio.value(prices) == pytest.approx(10_000.0)


def test_minimum_commission_and_dust_orders():
    portfolio, core = make(commission_bps=0, min_commission=2.0)
    fills = core.rebalance(portfolio, np.array([0.1, 0.0]), np.array([100.0, 50.0]))
    np.testing.assert_allclose(fills.commissions, [2.0, 0.0])
    portfolio, _ = make()
    dust_core = ExecutionCore(CostModel(), min_order_value=50.0)
    fills = dust_core.rebalance(portfolio, np.array([0.004, 0.5]), np.array([100.0, 50.0]))
    # 40 of AAA is below the 50 minimum and is not sent
    np.testing.assert_allclose(fills.share_deltas, [0.0, 100.0])
    assert fills.n_orders == 1


def test_untradable_symbols_keep_their_position():
    portfolio, core = make()
    prices = np.array([100.0, 50.0])
    core.rebalance(portfolio, np.array([0.5, 0.5]), prices)
    fills = core.rebalance(portfolio, np.array([0.0, 0.0]), prices, tradable=np.array([False, True]))
    np.testing.assert_allclose(fills.share_deltas, [0.0, -100.0])
    np.testing.assert_allclose(portfolio.positions, [50.0, 0.0])


def test_bad_prices_and_shapes_are_named():
    portfolio, core = make()
    with pytest.raises(ValueError, match="'BBB'"):
        core.rebalance(portfolio, np.array([0.5, 0.5]), np.array([100.0, np.nan]))
    with pytest.raises(ValueError, match="one weight per symbol"):
        core.rebalance(portfolio, np.array([0.5]), np.array([100.0, 50.0]))
    with pytest.raises(ValueError, match="fill_at"):
        ExecutionCore(CostModel(), fill_at="vwap")


def test_wiped_out_portfolio_is_closed_out():
    portfolio, core = make(symbols=("AAA",))
    core.rebalance(portfolio, np.array([-1.0]), np.array([100.0]))
    core.mark(portfolio, np.array([250.0]))  # the short loses 150 % of equity
    assert portfolio.equity < 0
    fills = core.rebalance(portfolio, np.array([1.0]), np.array([250.0]))
    np.testing.assert_allclose(portfolio.positions, [0.0])
    assert fills.turnover == 0.0


def test_rebalance_is_deterministic():
    results = []
    for _ in range(2):
        portfolio, core = make(commission_bps=3, slippage_bps=7)
        rng = np.random.default_rng(5)
        for _ in range(50):
            prices = rng.uniform(10, 200, 2)
            core.rebalance(portfolio, rng.uniform(-0.5, 0.5, 2), prices)
            core.mark(portfolio, prices)
        results.append((portfolio.cash, portfolio.positions.copy(), portfolio.total_commission))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    assert results[0][2] == results[1][2]
