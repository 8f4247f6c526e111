"""One live decision: the backtester's orders for the same inputs, with refs, verdict and audit."""

import json
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from tt_platform.config.env import EnvConfig
from tt_platform.core import CostModel, ExecutionCore, Portfolio, RiskGate, RiskLimits
from tt_platform.core.orders import OrderType, orders_from_targets
from tt_platform.evaluation.backtest import Backtester, BarPanel
from tt_platform.live.decision import AuditRecord, action_to_target_weights, decide
from tt_platform.live.order_refs import (
    MAX_REF_LENGTH,
    OrderRef,
    already_sent,
    is_order_ref,
    order_ref,
    parse_order_ref,
    session_key,
)

BAR = datetime(2024, 3, 5, 15, 30, tzinfo=UTC)


def decide_now(portfolio, weights, prices, gate, **kwargs):
    settings = dict(bar_time=BAR, target_weights=np.asarray(weights, dtype=float),
                    portfolio=portfolio, prices=np.asarray(prices, dtype=float),
                    market_open=True, trading_day=20240305, gate=gate, ref_session="abc123")
    return decide(**(settings | kwargs))


# ---------------------------------------------------------------------------- equal to backtest
def test_a_tiny_case_equals_orders_from_targets_after_the_gate():
    portfolio = Portfolio(10_000.0, ["AAA", "BBB"])
    limits = RiskLimits(per_symbol_cap=0.5, leverage_cap=1.0)
    decision = decide_now(portfolio, [0.7, 0.6], [100.0, 50.0], RiskGate(limits))

    gated, breaches = RiskGate(limits).apply(np.array([0.7, 0.6]), drawdown=0.0,
                                             equity=10_000.0)
    expected = orders_from_targets(portfolio, gated, np.array([100.0, 50.0]))
    assert decision.orders == tuple(expected)
    assert [(o.symbol, o.quantity) for o in decision.orders] == [("AAA", 50.0), ("BBB", 100.0)]
    np.testing.assert_array_equal(decision.requested_weights, [0.7, 0.6])
    np.testing.assert_array_equal(decision.gated_weights, [0.5, 0.5])
    assert decision.weight_breaches == breaches
    assert [b.rule for b in decision.weight_breaches] == ["per_symbol_cap"]
    assert decision.verdict == "clamped"
    assert decision.guardrails.status == "pass"


def panel_with_gaps(t=60, n=3, seed=3):
    rng = np.random.default_rng(seed)
    close = 40.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (t, n)), axis=0))
    close[10:13, 1] = np.nan  # a symbol without bars for a while
    timestamps = pd.date_range("2022-01-03", periods=t, freq="B", tz="UTC")
    return BarPanel.from_close(timestamps, [f"S{i}" for i in range(n)], close,
                               periods_per_year=252.0)


def changing_weights(t, state):
    rng = np.random.default_rng(t)
    return rng.uniform(-0.2, 0.7, 3)


@pytest.mark.parametrize("order_type, offset", [(OrderType.MARKET, 0.0),
                                                (OrderType.LIMIT, -15.0)])
def test_bar_by_bar_the_live_orders_equal_the_backtesters(order_type, offset):
    panel = panel_with_gaps()
    limits = RiskLimits(per_symbol_cap=0.5, leverage_cap=1.2, max_symbol_notional=4_500.0,
                        daily_loss_limit=0.02, max_drawdown=0.2)
    costs = CostModel(commission_bps=2.0, slippage_bps=5.0)
    market_open = np.random.default_rng(9).uniform(size=panel.n_steps) > 0.15
    result = Backtester(cost_model=costs, risk_limits=limits, initial_cash=10_000.0,
                        min_order_value=25.0, order_type=order_type,
                        limit_offset_bps=offset).run(changing_weights, panel,
                                                     market_open=market_open)

    # The live loop books its own fills with the same core and decides with ``decide``.
    portfolio = Portfolio(10_000.0, panel.symbols)
    core = ExecutionCore(costs, "close", 25.0)
    gate = RiskGate(limits)
    marks = np.where(np.isfinite(panel.last_price), panel.last_price, 1.0)
    live_rows, verdicts = [], set()
    for t in range(panel.n_steps):
        core.mark(portfolio, marks[t])
        bar_time = panel.timestamps[t].to_pydatetime()
        decision = decide(bar_time=bar_time, target_weights=changing_weights(t, None),
                          portfolio=portfolio, prices=marks[t], market_open=market_open[t],
                          trading_day=int(bar_time.strftime("%Y%m%d")), gate=gate,
                          ref_session="s1", tradable=panel.tradable[t], min_order_value=25.0,
                          order_type=order_type, limit_offset_bps=offset,
                          tag="changing_weights")
        verdicts.add(decision.verdict)
        live_rows += [{"decided_at": panel.timestamps[t], "symbol": o.symbol,
                       "quantity": o.quantity, "order_type": str(o.order_type),
                       "limit_price": o.limit_price, "tag": o.tag} for o in decision.orders]
        if decision.orders:
            core.execute(portfolio, decision.orders, panel.bar(t), at="close")
            core.mark(portfolio, marks[t])

    live = pd.DataFrame(live_rows, columns=result.orders.columns)
    assert len(live) > 20
    pd.testing.assert_frame_equal(live, result.orders)
    assert abs(portfolio.equity - result.equity.iloc[-1]) < 1e-9
    # The run went through clamps and closed markets, not only the easy path.
    assert {"clamped", "market_closed"} <= verdicts


# ---------------------------------------------------------------------------- decision details
def test_limit_orders_are_priced_off_the_last_price_on_the_passive_side():
    portfolio = Portfolio(10_000.0, ["AAA", "BBB"])
    portfolio.positions = np.array([0.0, 100.0])
    portfolio.cash = 5_000.0
    decision = decide_now(portfolio, [0.5, 0.0], [100.0, 50.0], RiskGate(RiskLimits()),
                          order_type="LIMIT", limit_offset_bps=10.0)
    buy, sell = decision.orders
    assert (buy.symbol, buy.quantity, buy.limit_price) == ("AAA", 50.0, pytest.approx(99.9))
    assert (sell.symbol, sell.quantity, sell.limit_price) == ("BBB", -100.0,
                                                             pytest.approx(50.05))


def test_a_closed_market_sends_nothing_and_says_why():
    portfolio = Portfolio(10_000.0, ["AAA", "BBB"])
    decision = decide_now(portfolio, [0.5, 0.5], [100.0, 50.0], RiskGate(RiskLimits()),
                          market_open=False)
    assert decision.orders == () and decision.order_refs == ()
    assert decision.verdict == "market_closed"
    assert [b.rule for b in decision.order_breaches] == ["market_closed"]
    np.testing.assert_array_equal(decision.sized_weights, [0.5, 0.5])


def test_every_order_carries_a_ref_naming_its_bar_symbol_and_side():
    portfolio = Portfolio(10_000.0, ["AAA", "BBB"])
    portfolio.positions = np.array([0.0, 100.0])
    portfolio.cash = 5_000.0
    decision = decide_now(portfolio, [0.5, 0.0], [100.0, 50.0], RiskGate(RiskLimits()))
    assert len(decision.order_refs) == len(decision.orders) == 2
    for order, text in zip(decision.orders, decision.order_refs, strict=True):
        ref = parse_order_ref(text)
        assert (ref.session, ref.bar_time, ref.symbol, ref.side, ref.sequence) == \
            ("abc123", BAR, order.symbol, order.side, 0)


def test_decide_leaves_the_portfolio_untouched_and_uses_the_marked_drawdown():
    portfolio = Portfolio(10_000.0, ["AAA"])
    portfolio.positions = np.array([100.0])
    portfolio.cash = 0.0
    ExecutionCore(CostModel()).mark(portfolio, np.array([100.0]))
    before = portfolio.snapshot()
    # At 70 the book is 30 % below its peak: the gate's max_drawdown switch goes flat.
    decision = decide_now(portfolio, [1.0], [70.0], RiskGate(RiskLimits(max_drawdown=0.25)))
    after = portfolio.snapshot()
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])
    assert decision.drawdown == pytest.approx(0.3)
    assert [b.rule for b in decision.weight_breaches] == ["max_drawdown"]
    assert [(o.symbol, o.quantity) for o in decision.orders] == [("AAA", -100.0)]


def test_latency_runs_from_the_callers_start():
    portfolio = Portfolio(10_000.0, ["AAA"])
    started = time.perf_counter_ns() - 7_000_000
    decision = decide_now(portfolio, [0.5], [100.0], RiskGate(RiskLimits()), started_ns=started)
    assert 7.0 <= decision.latency_ms < 1_000.0
    own = decide_now(portfolio, [0.5], [100.0], RiskGate(RiskLimits()))
    assert 0.0 <= own.latency_ms < 7.0


def test_decision_arrays_cannot_be_edited():
    decision = decide_now(Portfolio(10_000.0, ["AAA"]), [0.5], [100.0], RiskGate(RiskLimits()))
    with pytest.raises(ValueError):
        decision.gated_weights[0] = 1.0


@pytest.mark.parametrize("kwargs, message", [
    (dict(target_weights=np.array([0.5])), "target_weights has shape"),
    (dict(prices=np.array([100.0, np.nan])), "price for 'BBB' is nan"),
    (dict(bar_time=datetime(2024, 3, 5, 15, 30)), "tz-aware"),
])
def test_bad_input_is_named(kwargs, message):
    settings = dict(bar_time=BAR, target_weights=np.array([0.5, 0.5]),
                    portfolio=Portfolio(10_000.0, ["AAA", "BBB"]), prices=np.array([100.0, 50.0]),
                    market_open=True, trading_day=1, gate=RiskGate(RiskLimits()),
                    ref_session="s")
    with pytest.raises(ValueError, match=message):
        decide(**(settings | kwargs))


# ---------------------------------------------------------------------------- audit
def test_the_audit_row_is_flat_and_carries_the_refs():
    portfolio = Portfolio(10_000.0, ["AAA", "BRK B"])
    decision = decide_now(portfolio, [0.7, 0.3], [100.0, 50.0],
                          RiskGate(RiskLimits(per_symbol_cap=0.5)))
    row = decision.audit_record("run-1", "champion@7", "fs9f00").as_row()
    assert all(isinstance(v, (str, int, float, bool, datetime, type(None)))
               for v in row.values())
    assert row["run_id"] == "run-1" and row["policy_version"] == "champion@7"
    assert row["feature_set_hash"] == "fs9f00" and row["bar_time"] == BAR
    assert row["verdict"] == "clamped" and "per_symbol_cap" in row["breaches"]
    assert row["n_orders"] == 2
    assert tuple(json.loads(row["order_refs"])) == decision.order_refs
    assert row["guard_status"] == "pass" and row["latency_ms"] == decision.latency_ms


def test_an_audit_record_needs_its_identifiers():
    decision = decide_now(Portfolio(10_000.0, ["AAA"]), [0.5], [100.0], RiskGate(RiskLimits()))
    with pytest.raises(ValueError, match="AuditRecord.run_id"):
        decision.audit_record("", "v1", "hash")
    assert isinstance(decision.audit_record("r", "v1", "hash"), AuditRecord)


# ---------------------------------------------------------------------------- action mapping
def walk_market(t=60, n=3, seed=1):
    from tt_platform.env.market import MarketData

    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (t, n)), axis=0))
    timestamps = pd.date_range("2023-01-02", periods=t, freq="B", tz="UTC")
    features = rng.normal(size=(t, n, 2)).astype(np.float32)
    return MarketData.from_close(timestamps, [f"S{i}" for i in range(n)], close, features,
                                 periods_per_year=252.0)


@pytest.mark.parametrize("config, action", [
    (EnvConfig(window_size=5, vol_lookback=10), np.array([0.8, -0.3, 1.5])),
    (EnvConfig(window_size=5, action_scheme="discrete", long_only=False),
     np.array([1, 2, 0])),
])
def test_actions_map_to_the_weights_the_training_env_would_trade(config, action):
    from tt_platform.env import make_env

    market = walk_market()
    env = make_env(market, config)
    at = 40
    env.reset(options={"start_index": at})
    expected = env.trading_env.action_scheme.target_weights(action)
    # Live sees only the bars up to the decision bar.
    weights = action_to_target_weights(action, market.take(slice(0, at + 1)), config)
    np.testing.assert_array_equal(weights, expected)
    assert np.abs(weights).sum() > 0.0


# ---------------------------------------------------------------------------- order refs
def test_the_same_decision_always_gets_the_same_ref():
    assert order_ref("abc123", BAR, "AAPL", "BUY") == order_ref("abc123", BAR, "AAPL", "BUY")
    assert order_ref("abc123", BAR, "AAPL", "BUY") == "tt:abc123:s9vse0:AAPL:B:0"


def test_any_change_of_input_changes_the_ref():
    base = order_ref("abc123", BAR, "AAPL", "BUY")
    others = {order_ref("abc123", BAR + timedelta(minutes=5), "AAPL", "BUY"),
              order_ref("abc124", BAR, "AAPL", "BUY"),
              order_ref("abc123", BAR, "AAPLX", "BUY"),
              order_ref("abc123", BAR, "AAPL", "SELL"),
              order_ref("abc123", BAR, "AAPL", "BUY", 1)}
    assert base not in others and len(others) == 5


def test_refs_round_trip_and_stay_short():
    ref = OrderRef(session_key("a-long-dagster-run-id-0f8e7d6c"), BAR, "BRK B", "SELL", 37)
    assert len(ref.text) <= MAX_REF_LENGTH
    assert parse_order_ref(ref.text) == ref
    assert parse_order_ref(ref.text).bar_time == BAR
    assert ref.next().sequence == 38 and ref.next().text != ref.text
    pandas_time = pd.Timestamp("2024-03-05 15:30", tz="America/New_York")
    assert parse_order_ref(order_ref("x", pandas_time, "A", "BUY")).bar_time == pandas_time


def test_session_keys_are_stable_and_short():
    assert session_key("run-1") == session_key("run-1") != session_key("run-2")
    assert len(session_key("run-1")) == 8


@pytest.mark.parametrize("text", ["", "manual order", "tt:abc:s9vse0:AAPL:X:0",
                                  "tt:abc:s9vse0:AAPL:B", "tt:abc:s9vse0:AAPL:B:00",
                                  "xx:abc:s9vse0:AAPL:B:0", "tt:abc:S9VSE0:AAPL:B:0"])
def test_foreign_refs_are_not_parsed(text):
    assert not is_order_ref(text)
    with pytest.raises(ValueError, match="tt order ref"):
        parse_order_ref(text)


@pytest.mark.parametrize("args, message", [
    (("toolong123", BAR, "A", "BUY"), "session"),
    (("s", datetime(2024, 3, 5, 15, 30), "A", "BUY"), "tz-aware"),
    (("s", BAR + timedelta(milliseconds=1), "A", "BUY"), "whole seconds"),
    (("s", BAR, "A:B", "BUY"), "symbol"),
    (("s", BAR, "A", "buy"), "side"),
    (("s", BAR, "A", "BUY", -1), "sequence"),
    (("s", BAR, "X" * 40, "BUY"), "limit is 40"),
])
def test_bad_ref_fields_are_named(args, message):
    with pytest.raises(ValueError, match=message):
        order_ref(*args)


def test_an_order_the_broker_knows_is_never_sent_again():
    sent = order_ref("abc123", BAR, "AAPL", "BUY")
    open_orders = {sent}
    executions = {order_ref("abc123", BAR, "MSFT", "SELL")}
    known = open_orders | executions
    assert already_sent(sent, known)
    assert already_sent(order_ref("abc123", BAR, "MSFT", "SELL"), known)
    assert not already_sent(order_ref("abc123", BAR + timedelta(minutes=1), "AAPL", "BUY"), known)
    assert not already_sent(order_ref("abc123", BAR, "AAPL", "BUY", 1), known)
    with pytest.raises(ValueError, match="non-empty"):
        already_sent("", known)
