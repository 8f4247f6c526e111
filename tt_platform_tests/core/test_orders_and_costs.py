"""Orders, fills and commission schedules on the shared execution core."""

import dataclasses
import math

import numpy as np
import pytest

from tt_platform.core import CostModel, ExecutionCore, Portfolio
from tt_platform.core.costs import (
    IB_CLEARING_FEE_PER_SHARE,
    IB_FIXED_US,
    IB_TIERED_US,
    BpsSlippage,
    HalfSpreadSlippage,
    PerShareCommission,
)
from tt_platform.core.execution import Bar
from tt_platform.core.orders import FillStatus, Order, OrderType, orders_from_targets

SYMBOLS = ["AAA", "BBB", "CCC"]


def bar(open_, high, low, close, volume=None, **fields):
    as_array = lambda values: None if values is None else np.array(values, dtype=float)  # noqa: E731
    return Bar(as_array(open_), as_array(high), as_array(low), as_array(close), as_array(volume),
               **{k: as_array(v) for k, v in fields.items()})


# ---------------------------------------------------------------------------- rebalance == orders
@pytest.mark.parametrize("min_commission, min_order_value", [(0.0, 0.0), (1.5, 25.0)])
def test_rebalance_books_what_orders_from_targets_plus_execute_book(min_commission,
                                                                   min_order_value):
    """Market orders, bps costs, no volume cap: the env's fast path and the order path agree.

    Each step starts both from the same book, so sizes must match exactly; money matches to
    float rounding (the fast path sums costs in another order). Over a whole run the two books
    stay within that rounding too.
    """
    costs = CostModel(commission_bps=4.0, slippage_bps=7.0, min_commission=min_commission)
    core = ExecutionCore(costs, min_order_value=min_order_value)
    fast, ordered = Portfolio(50_000.0, SYMBOLS), Portfolio(50_000.0, SYMBOLS)
    independent = Portfolio(50_000.0, SYMBOLS)
    rng = np.random.default_rng(11)
    for step in range(60):
        prices = rng.uniform(5.0, 300.0, 3)
        targets = rng.uniform(-0.6, 0.6, 3)
        tradable = None if step % 4 else rng.uniform(size=3) > 0.3
        ordered.cash, ordered.positions = fast.cash, fast.positions.copy()
        fills = core.rebalance(fast, targets, prices, tradable)
        orders = orders_from_targets(ordered, targets, prices, tradable=tradable,
                                     min_order_value=min_order_value)
        report = core.execute(ordered, orders, Bar.from_prices(prices), at="close")

        np.testing.assert_array_equal(report.share_deltas, fills.share_deltas)
        np.testing.assert_array_equal(ordered.positions, fast.positions)
        assert ordered.cash == pytest.approx(fast.cash, rel=1e-12, abs=1e-9)
        assert report.commission == pytest.approx(fills.commission, rel=1e-12, abs=1e-12)
        assert report.slippage == pytest.approx(fills.slippage, rel=1e-12, abs=1e-12)
        assert report.traded_value == pytest.approx(fills.traded_value, rel=1e-12)
        assert report.turnover == pytest.approx(fills.turnover, rel=1e-12)
        traded = np.flatnonzero(fills.share_deltas)
        assert [f.symbol for f in report.fills] == [SYMBOLS[i] for i in traded]
        np.testing.assert_allclose([f.price for f in report.fills], fills.fill_prices[traded],
                                   rtol=1e-14)
        np.testing.assert_allclose([f.commission for f in report.fills],
                                   fills.commissions[traded], rtol=1e-12)
        assert all(f.status == FillStatus.FILLED for f in report.fills)

        core.execute(independent, orders_from_targets(
            independent, targets, prices, tradable=tradable, min_order_value=min_order_value),
            Bar.from_prices(prices))
        assert core.mark(independent, prices) == pytest.approx(core.mark(fast, prices), rel=1e-10)
    np.testing.assert_allclose(independent.positions, fast.positions, rtol=1e-10)
    assert independent.total_commission == pytest.approx(fast.total_commission, rel=1e-10)
    assert independent.total_slippage == pytest.approx(fast.total_slippage, rel=1e-10)


def test_orders_from_targets_sends_signed_quantities_per_symbol_in_symbol_order():
    portfolio = Portfolio(10_000.0, SYMBOLS)
    portfolio.positions = np.array([0.0, 40.0, 10.0])
    portfolio.cash = 10_000.0 - 40 * 50.0 - 10 * 20.0
    orders = orders_from_targets(portfolio, np.array([0.5, 0.0, 0.02]),
                                 np.array([100.0, 50.0, 20.0]), tag="why")
    # equity 10,000: buy 50 AAA, sell all 40 BBB, CCC already at 200 = 2 % -> no order
    assert [(o.symbol, o.quantity, o.side, o.tag) for o in orders] == [
        ("AAA", 50.0, "BUY", "why"), ("BBB", -40.0, "SELL", "why")]
    limits = orders_from_targets(portfolio, np.array([0.5, 0.0, 0.02]),
                                 np.array([100.0, 50.0, 20.0]), order_type="LIMIT",
                                 limit_offset_bps=10.0)
    # passive side: buy 10 bps below, sell 10 bps above the decision price
    assert [o.limit_price for o in limits] == pytest.approx([99.9, 50.05])
    assert all(o.order_type == OrderType.LIMIT for o in limits)


@pytest.mark.parametrize("kwargs, message", [
    ({"quantity": 0.0}, "non-zero"),
    ({"quantity": math.nan}, "finite"),
    ({"quantity": 1.0, "order_type": OrderType.LIMIT}, "limit_price"),
    ({"quantity": 1.0, "limit_price": 10.0}, "MARKET order takes no limit_price"),
])
def test_malformed_orders_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Order("AAA", **kwargs)


# ---------------------------------------------------------------------------- limit orders
def limit_fill(quantity, limit, at="open", slippage_bps=0.0):
    portfolio = Portfolio(100_000.0, ["AAA"])
    core = ExecutionCore(CostModel(slippage_bps=slippage_bps))
    order = Order("AAA", quantity, OrderType.LIMIT, limit)
    report = core.execute(portfolio, [order], bar([100.0], [104.0], [97.0], [102.0]), at=at)
    return report.fills[0], portfolio


@pytest.mark.parametrize("quantity, limit, status, price", [
    (10.0, 96.0, FillStatus.UNFILLED, None),    # buy below the bar's low: never reached
    (10.0, 97.0, FillStatus.FILLED, 97.0),      # low touches the limit: filled at the limit
    (10.0, 98.5, FillStatus.FILLED, 98.5),      # traded down through it from the open
    (-10.0, 105.0, FillStatus.UNFILLED, None),  # sell above the high
    (-10.0, 103.0, FillStatus.FILLED, 103.0),
])
def test_limit_orders_fill_only_when_the_bar_reaches_the_limit(quantity, limit, status, price):
    fill, portfolio = limit_fill(quantity, limit)
    assert fill.status == status
    if price is None:
        assert fill.quantity == 0.0 and "not reached" in fill.reason
        assert portfolio.positions[0] == 0.0 and portfolio.cash == 100_000.0
    else:
        assert fill.quantity == quantity and fill.price == pytest.approx(price)
        assert fill.slippage == 0.0  # a resting order fills at its price


def test_marketable_limit_fills_at_the_open_with_slippage_but_never_through_the_limit():
    fill, _ = limit_fill(10.0, 101.0, slippage_bps=50.0)  # open 100 + 50 bps = 100.5 <= 101
    assert fill.price == pytest.approx(100.5) and fill.reference_price == 100.0
    assert fill.slippage == pytest.approx(10 * 0.5)
    fill, _ = limit_fill(10.0, 100.2, slippage_bps=50.0)  # slippage capped at the limit
    assert fill.price == pytest.approx(100.2)
    fill, _ = limit_fill(-10.0, 99.9, slippage_bps=50.0)
    assert fill.price == pytest.approx(99.9)


def test_limit_orders_for_the_close_see_only_the_close():
    fill, _ = limit_fill(10.0, 101.0, at="close")  # close 102 > limit, though low was 97
    assert fill.status == FillStatus.UNFILLED and "close" in fill.reason
    fill, _ = limit_fill(10.0, 102.0, at="close")
    assert fill.status == FillStatus.FILLED and fill.price == 102.0


# ---------------------------------------------------------------------------- partial fills
def test_partial_fills_are_capped_by_a_share_of_bar_volume_and_carry_their_status():
    portfolio = Portfolio(1_000_000.0, ["AAA", "BBB"])
    core = ExecutionCore(CostModel(commission_bps=10.0), max_volume_share=0.1)
    orders = [Order("AAA", 300.0), Order("AAA", 200.0), Order("BBB", -50.0), Order("AAA", 5.0)]
    report = core.execute(portfolio, orders,
                          bar([10.0, 20.0], [10.0, 20.0], [10.0, 20.0], [10.0, 20.0],
                              volume=[4_000.0, 10_000.0]), at="open")
    # AAA may take 10 % of 4,000 = 400 shares in all: 300, then 100 of 200, then nothing
    statuses = [(f.status, f.quantity) for f in report.fills]
    assert statuses == [(FillStatus.FILLED, 300.0), (FillStatus.PARTIAL, 100.0),
                        (FillStatus.FILLED, -50.0), (FillStatus.UNFILLED, 0.0)]
    assert "100 of 200" in report.fills[1].reason and report.fills[1].remaining == 100.0
    assert "no volume left" in report.fills[3].reason
    assert report.fills[1].commission == pytest.approx(100 * 10.0 * 1e-3)  # on the filled part
    np.testing.assert_allclose(portfolio.positions, [400.0, -50.0])
    assert report.shares_traded == 450.0


def test_volume_cap_needs_volume_and_a_bar_without_volume_fills_nothing():
    portfolio = Portfolio(1_000.0, ["AAA"])
    core = ExecutionCore(CostModel(), max_volume_share=0.5)
    with pytest.raises(ValueError, match="volume"):
        core.execute(portfolio, [Order("AAA", 1.0)], Bar.from_prices(np.array([10.0])))
    report = core.execute(portfolio, [Order("AAA", 1.0)],
                          Bar.from_prices(np.array([10.0]), volume=np.array([0.0])))
    assert report.fills[0].status == FillStatus.UNFILLED


def test_orders_on_a_symbol_without_a_bar_go_unfilled():
    portfolio = Portfolio(1_000.0, ["AAA", "BBB"])
    report = ExecutionCore(CostModel()).execute(
        portfolio, [Order("AAA", 1.0), Order("BBB", 1.0)],
        Bar.from_prices(np.array([10.0, np.nan])))
    assert [f.status for f in report.fills] == [FillStatus.FILLED, FillStatus.UNFILLED]
    assert "no bar" in report.fills[1].reason
    with pytest.raises(ValueError, match="not in the portfolio"):
        ExecutionCore(CostModel()).execute(portfolio, [Order("ZZZ", 1.0)],
                                           Bar.from_prices(np.array([10.0, 10.0])))


# ---------------------------------------------------------------------------- commissions
@pytest.mark.parametrize("shares, price, expected", [
    (100, 25.0, 1.00),    # 0.50 raised to the USD 1.00 minimum
    (1_000, 25.0, 5.00),  # 1,000 x 0.005
    (1_000, 0.25, 2.50),  # 5.00 capped at 1 % of USD 250 trade value
    (10, 5.0, 0.50),      # the cap (0.50) wins over the minimum (1.00)
    (0, 25.0, 0.0),
])
def test_ib_fixed_per_share_schedule_on_ibs_worked_examples(shares, price, expected):
    assert IB_FIXED_US.order_commission(shares, price) == pytest.approx(expected)


@pytest.mark.parametrize("month_to_date, rate", [
    (0, 0.0035), (299_999, 0.0035), (300_000, 0.0020), (2_999_999, 0.0020),
    (3_000_000, 0.0015), (19_999_999, 0.0015), (20_000_000, 0.0010), (99_999_999, 0.0010),
    (100_000_000, 0.0005),
])
def test_ib_tiered_rate_follows_the_months_share_volume(month_to_date, rate):
    assert IB_TIERED_US.rate(month_to_date) == rate
    assert IB_TIERED_US.order_commission(10_000, 50.0, month_to_date) == pytest.approx(
        10_000 * rate)


def test_ib_tiered_minimum_maximum_and_fees_on_worked_numbers():
    assert IB_TIERED_US.order_commission(1_000, 50.0) == pytest.approx(3.50)
    assert IB_TIERED_US.order_commission(50, 20.0) == pytest.approx(0.35)  # 0.175 -> minimum
    assert IB_TIERED_US.order_commission(10, 2.0) == pytest.approx(0.20)   # 1 % of USD 20
    with_clearing = dataclasses.replace(IB_TIERED_US, fees_per_share=IB_CLEARING_FEE_PER_SHARE)
    assert with_clearing.order_commission(1_000, 50.0) == pytest.approx(3.50 + 0.20)


def test_execute_charges_the_tier_the_month_has_reached_order_by_order():
    portfolio = Portfolio(10_000_000.0, ["AAA"])
    core = ExecutionCore(CostModel(), commission=IB_TIERED_US)
    orders = [Order("AAA", 100_000.0), Order("AAA", -100_000.0)]
    report = core.execute(portfolio, orders, Bar.from_prices(np.array([40.0])),
                          month_to_date_shares=250_000.0)
    # first order starts at share 250,001 (tier 1), the second at 350,001 (tier 2)
    assert [f.commission for f in report.fills] == pytest.approx([350.0, 200.0])
    assert report.shares_traded == 200_000.0


@pytest.mark.parametrize("kwargs", [{"per_share": -0.01}, {"per_share": 0.01, "minimum": -1.0},
                                    {"per_share": 0.01, "max_fraction_of_value": math.nan}])
def test_bad_commission_parameters_are_refused(kwargs):
    with pytest.raises(ValueError, match="PerShareCommission"):
        PerShareCommission(**kwargs)


# ---------------------------------------------------------------------------- slippage
def test_half_spread_slippage_uses_quotes_then_the_range_proxy_then_bps():
    model = HalfSpreadSlippage(range_fraction=0.1, spread_bps=20.0)
    assert model.per_share(100.0, bid=99.9, ask=100.1, high=103.0, low=97.0) == pytest.approx(0.1)
    assert model.per_share(100.0, high=103.0, low=97.0) == pytest.approx(0.3)  # 0.1 x 6 / 2
    assert model.per_share(100.0) == pytest.approx(0.1)                         # 20 bps / 2
    with pytest.raises(ValueError, match="range_fraction or spread_bps"):
        HalfSpreadSlippage()


def test_half_spread_slippage_moves_market_fills_against_the_order():
    portfolio = Portfolio(100_000.0, ["AAA"])
    core = ExecutionCore(CostModel(), slippage=HalfSpreadSlippage(spread_bps=10.0))
    report = core.execute(portfolio, [Order("AAA", 100.0)],
                          bar([50.0], [51.0], [49.0], [50.5], bid=[50.0], ask=[50.2]), at="close")
    fill = report.fills[0]
    assert fill.reference_price == 50.5 and fill.price == pytest.approx(50.6)
    assert fill.slippage == pytest.approx(100 * 0.1)
    assert portfolio.cash == pytest.approx(100_000.0 - 100 * 50.6)


def test_cost_model_gives_the_order_level_schedules_that_charge_the_same():
    costs = CostModel(commission_bps=10.0, slippage_bps=5.0, min_commission=1.0)
    deltas, prices = np.array([100.0, -1.0]), np.array([50.0, 50.0])
    fill_prices = costs.fill_prices(deltas, prices)
    expected = costs.commissions(deltas, fill_prices)
    schedule = costs.commission_schedule()
    assert [schedule.order_commission(abs(d), p) for d, p in zip(deltas, fill_prices)] == \
        pytest.approx(expected.tolist())
    assert isinstance(costs.slippage_model(), BpsSlippage)
    assert costs.slippage_model().per_share(50.0) == pytest.approx(50.0 * 5e-4)
