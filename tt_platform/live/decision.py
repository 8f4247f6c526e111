"""One decision of the live loop: from the policy's target weights on a completed bar to the
orders to send, through the same core functions, in the same order, as the backtester
(``tt_platform.evaluation.backtest``):

1. ``RiskGate.apply`` clamps the weights (drawdown and equity as if the portfolio were marked
   at the decision prices);
2. the circuit breaker may hold the book or flatten it (``guardrails``);
3. ``orders_from_targets`` sizes the orders at the last prices;
4. ``RiskGate.screen_orders`` applies the market-hours gate and the daily kill switch.

With the breaker untripped, the orders equal the backtester's for the same inputs (tested).
Each order gets its idempotency key (``order_refs``). Nothing here talks to a broker.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from tt_platform.core.accounting import Portfolio
from tt_platform.core.orders import Order, OrderType, orders_from_targets
from tt_platform.core.risk import RiskBreach, RiskGate
from tt_platform.live.guardrails import (
    CircuitBreaker,
    GuardrailVerdict,
    guarded_targets,
    screen_guarded_orders,
)
from tt_platform.live.order_refs import order_ref

# Decision verdicts, most severe first: a tripped guardrail explains an empty order list
# better than the clamp that came before it.
TRIPPED = "tripped"
MARKET_CLOSED = "market_closed"
BLOCKED = "blocked"
CLAMPED = "clamped"
PASS = "pass"


def action_to_target_weights(action: Any, market: Any, env_config: Any) -> np.ndarray:
    """Target weights for ``action`` at the last bar of ``market`` (``MarketData`` up to the
    decision bar), mapped by the training env's own action scheme for ``env_config``.

    Builds the env's episode state and action scheme over ``market`` (O(bars x symbols)), so
    volatility sizing uses exactly the history the env would have used at that bar.
    """
    # Imported here: the env package pulls in gymnasium and tensortrade.
    from tt_platform.env.factory import make_action_scheme
    from tt_platform.env.state import EpisodeState

    state = EpisodeState(market, env_config)
    state.t = market.n_steps - 1  # the decision bar: the last completed one
    scheme = make_action_scheme(state, env_config)
    return np.asarray(scheme.target_weights(action), dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Decision:
    """What the loop decided on one completed bar.

    requested_weights: the policy's targets; gated_weights: after ``RiskGate.apply``;
    sized_weights: what the orders were sized to (zeros when the breaker flattens, None when it
    holds the book). weight_breaches: rules that clamped weights; order_breaches: rules that
    stopped orders (market closed, daily kill switch). orders and order_refs are parallel.
    latency_ms: from ``started_ns`` (or the call) to the orders being ready.
    """

    bar_time: datetime
    symbols: tuple[str, ...]
    equity: float
    drawdown: float
    requested_weights: np.ndarray
    gated_weights: np.ndarray
    sized_weights: np.ndarray | None
    weight_breaches: tuple[RiskBreach, ...]
    order_breaches: tuple[RiskBreach, ...]
    guardrails: GuardrailVerdict
    market_open: bool
    orders: tuple[Order, ...]
    order_refs: tuple[str, ...]
    latency_ms: float

    @property
    def breaches(self) -> tuple[RiskBreach, ...]:
        return self.weight_breaches + self.order_breaches

    @property
    def verdict(self) -> str:
        """``"tripped"``, ``"market_closed"``, ``"blocked"``, ``"clamped"`` or ``"pass"``."""
        if self.guardrails.tripped:
            return TRIPPED
        if not self.market_open:
            return MARKET_CLOSED
        if self.order_breaches:
            return BLOCKED
        if self.weight_breaches:
            return CLAMPED
        return PASS

    def describe_breaches(self) -> str:
        """Every breach in words, ``"; "``-separated (empty when none)."""
        return "; ".join(b.describe(list(self.symbols)) for b in self.breaches)

    def audit_record(self, run_id: str, policy_version: str, feature_set_hash: str
                     ) -> AuditRecord:
        return AuditRecord(run_id=run_id, bar_time=self.bar_time, policy_version=policy_version,
                           feature_set_hash=feature_set_hash, verdict=self.verdict,
                           breaches=self.describe_breaches(), guardrails=self.guardrails,
                           order_refs=self.order_refs, latency_ms=self.latency_ms)


@dataclass(frozen=True)
class AuditRecord:
    """One row of the append-only decision audit log."""

    run_id: str
    bar_time: datetime
    policy_version: str
    feature_set_hash: str
    verdict: str
    breaches: str
    guardrails: GuardrailVerdict
    order_refs: tuple[str, ...]
    latency_ms: float

    def __post_init__(self) -> None:
        for name in ("run_id", "policy_version", "feature_set_hash"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"AuditRecord.{name} must be a non-empty string, "
                                 f"got {getattr(self, name)!r}")

    def as_row(self) -> dict[str, object]:
        """Flat columns: scalars only; ``order_refs`` as a JSON array, guardrail fields
        prefixed ``guard_``."""
        row: dict[str, object] = {
            "run_id": self.run_id,
            "bar_time": self.bar_time,
            "policy_version": self.policy_version,
            "feature_set_hash": self.feature_set_hash,
            "verdict": self.verdict,
            "breaches": self.breaches,
            "n_orders": len(self.order_refs),
            # JSON: refs may contain spaces (IB symbols like "BRK B"), never ambiguity.
            "order_refs": json.dumps(list(self.order_refs)),
            "latency_ms": self.latency_ms,
        }
        row.update({f"guard_{key}": value for key, value in self.guardrails.as_row().items()})
        return row


def decide(*, bar_time: datetime, target_weights: np.ndarray, portfolio: Portfolio,
           prices: np.ndarray, market_open: bool, trading_day: Hashable, gate: RiskGate,
           ref_session: str, breaker: CircuitBreaker | None = None,
           tradable: np.ndarray | None = None, min_order_value: float = 0.0,
           order_type: OrderType | str = OrderType.MARKET, limit_offset_bps: float = 0.0,
           tag: str = "rebalance", clamp_weights: bool = True,
           started_ns: int | None = None) -> Decision:
    """Decide the orders for the bar that closed at ``bar_time``.

    target_weights: the policy's targets, one per ``portfolio.symbols`` (see
        ``action_to_target_weights``).
    prices: the last prices, finite and > 0 for every symbol (the last close for a symbol
        without a bar, with ``tradable`` False for it).
    market_open: the market clock's verdict; closed means no orders.
    trading_day: a key that changes once per trading day (daily kill switch, breaker).
    gate, breaker: one of each per portfolio, kept across decisions (they hold state).
    ref_session: the short session key of the order refs (``order_refs.session_key``).
    clamp_weights: False passes weights unclamped, as the backtester does with no limits.
    started_ns: ``time.perf_counter_ns()`` when the bar closed; default: when called.

    The portfolio is not changed: equity and drawdown are computed as a mark at ``prices``
    would record them.
    """
    started = time.perf_counter_ns() if started_ns is None else started_ns
    prices = np.asarray(prices, dtype=np.float64)
    weights = np.asarray(target_weights, dtype=np.float64)
    n = portfolio.n_symbols
    if prices.shape != (n,):
        raise ValueError(f"decide: prices has shape {prices.shape}, expected ({n},) "
                         "(one price per symbol)")
    if weights.shape != (n,):
        raise ValueError(f"decide: target_weights has shape {weights.shape}, expected ({n},) "
                         "(one weight per symbol)")
    if not isinstance(bar_time, datetime) or bar_time.tzinfo is None:
        raise ValueError(f"decide: bar_time must be a tz-aware datetime, got {bar_time!r}")
    if not prices.min() > 0.0:  # also catches NaN
        bad = int(np.flatnonzero(~(prices > 0.0))[0])
        raise ValueError(f"decide: price for {portfolio.symbols[bad]!r} is {float(prices[bad])!r}; "
                         "prices must be finite and > 0")
    equity = portfolio.value(prices)
    if not math.isfinite(equity):
        raise ValueError(f"decide: portfolio equity at these prices is {equity!r}")
    # What Portfolio.record_mark would set, without recording the mark.
    peak = max(portfolio.peak_equity, equity)
    drawdown = 1.0 - equity / peak if peak > 0.0 else 1.0

    if clamp_weights:
        gated, weight_breaches = gate.apply(weights, drawdown=drawdown, equity=equity)
    else:
        gated, weight_breaches = weights.copy(), ()
    breaker_verdict = None if breaker is None else breaker.check(trading_day, equity)
    sized = guarded_targets(gated, breaker_verdict)
    orders: list[Order] = []
    if sized is not None:
        orders = orders_from_targets(portfolio, sized, prices, tradable=tradable,
                                     min_order_value=min_order_value, order_type=order_type,
                                     limit_offset_bps=limit_offset_bps, tag=tag)
    orders, order_breaches, guard = screen_guarded_orders(
        gate, orders, breaker_verdict, is_open=bool(market_open), trading_day=trading_day,
        equity=equity)
    refs = tuple(order_ref(ref_session, bar_time, order.symbol, order.side) for order in orders)
    latency_ms = (time.perf_counter_ns() - started) / 1e6
    return Decision(
        bar_time=bar_time, symbols=tuple(portfolio.symbols), equity=equity, drawdown=drawdown,
        requested_weights=_frozen(weights), gated_weights=_frozen(gated),
        sized_weights=None if sized is None else _frozen(sized),
        weight_breaches=tuple(weight_breaches), order_breaches=tuple(order_breaches),
        guardrails=guard, market_open=bool(market_open), orders=tuple(orders),
        order_refs=refs, latency_ms=latency_ms)


def _frozen(values: np.ndarray) -> np.ndarray:
    copy = np.array(values, dtype=np.float64)
    copy.flags.writeable = False
    return copy
