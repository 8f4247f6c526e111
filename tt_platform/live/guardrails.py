"""Guardrails that stop a live session from trading: the session-drawdown circuit breaker,
combined with the risk gate's daily kill switch and market-hours gate.

The breaker measures drawdown from the highest equity marked this trading day. Once tripped it
stays tripped for the rest of the day, even if equity recovers, and resets on the first check of
the next trading day. With ``flatten`` on, a tripped breaker targets zero weights (sell
everything); otherwise the book is held and no orders are sent.

Every check yields a ``GuardrailVerdict``, a flat record for the audit log.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from tt_platform.core.orders import Order
from tt_platform.core.risk import RiskBreach, RiskGate

PASS = "pass"
TRIPPED = "tripped"
SESSION_DRAWDOWN = "session_drawdown"
DAILY_LOSS_LIMIT = "daily_loss_limit"


@dataclass(frozen=True)
class BreakerVerdict:
    """One check of the circuit breaker.

    tripped: the breaker stops trading (now or since earlier today); tripped_now: this check
    tripped it. session_drawdown = 1 - equity / session_peak.
    """

    trading_day: str
    equity: float
    session_peak: float
    session_drawdown: float
    threshold: float
    tripped: bool
    tripped_now: bool
    flatten: bool


class CircuitBreaker:
    """Trips when the drawdown from today's peak equity reaches ``max_session_drawdown``
    (0.05 = 5 %); ``flatten`` makes a tripped breaker sell everything instead of holding.

    Use one breaker per portfolio and check it at every decision.
    """

    def __init__(self, max_session_drawdown: float, *, flatten: bool = False) -> None:
        if not (isinstance(max_session_drawdown, (int, float))
                and 0.0 < max_session_drawdown <= 1.0):
            raise ValueError(f"CircuitBreaker.max_session_drawdown must be in (0, 1], "
                             f"got {max_session_drawdown!r}")
        self.max_session_drawdown = float(max_session_drawdown)
        self.flatten = bool(flatten)
        self.reset()

    def reset(self) -> None:
        """Forget the trading day: the next check starts a new one, untripped."""
        self._trading_day: Hashable | None = None
        self._peak = 0.0
        self._tripped = False

    def resume(self, trading_day: Hashable, session_peak: float, tripped: bool) -> None:
        """Restore today's state after a restart (from the last recorded verdict), so a job
        restarted mid-day does not trade again after its breaker tripped."""
        if not (math.isfinite(session_peak) and session_peak > 0.0):
            raise ValueError(f"CircuitBreaker.resume: session_peak must be a finite number > 0, "
                             f"got {session_peak!r}")
        self._trading_day = trading_day
        self._peak = float(session_peak)
        self._tripped = bool(tripped)

    @property
    def tripped(self) -> bool:
        return self._tripped

    def check(self, trading_day: Hashable, equity: float) -> BreakerVerdict:
        """Record ``equity`` marked on ``trading_day`` (any key that changes once per day) and
        say whether trading must stop."""
        if trading_day is None:
            raise ValueError("CircuitBreaker.check: trading_day is None")
        if not math.isfinite(equity):
            raise ValueError(f"CircuitBreaker.check: equity must be finite, got {equity!r}")
        if trading_day != self._trading_day:
            self._trading_day = trading_day
            self._peak = equity
            self._tripped = False
        self._peak = max(self._peak, equity)
        drawdown = 1.0 - equity / self._peak if self._peak > 0.0 else 1.0
        tripped_now = not self._tripped and drawdown >= self.max_session_drawdown
        self._tripped = self._tripped or tripped_now
        return BreakerVerdict(str(trading_day), float(equity), self._peak, drawdown,
                              self.max_session_drawdown, self._tripped, tripped_now,
                              self.flatten)


@dataclass(frozen=True)
class GuardrailVerdict:
    """Whether the session may trade at one decision, with the numbers behind it.

    status: ``"pass"`` or ``"tripped"``; reasons: ``"session_drawdown"`` (circuit breaker)
    and/or ``"daily_loss_limit"`` (the risk gate's daily kill switch). flattening: a tripped
    breaker with flatten on, so the orders close every position.
    """

    status: str
    reasons: tuple[str, ...]
    trading_day: str
    equity: float
    session_drawdown: float | None
    session_drawdown_threshold: float | None
    breaker_tripped_now: bool
    daily_halted: bool
    daily_loss_limit: float | None
    flattening: bool

    @property
    def tripped(self) -> bool:
        return self.status == TRIPPED

    def as_row(self) -> dict[str, object]:
        """Flat columns for the audit log (reasons joined by commas)."""
        row = asdict(self)
        row["reasons"] = ",".join(self.reasons)
        return row


def guarded_targets(target_weights: np.ndarray, breaker: BreakerVerdict | None
                    ) -> np.ndarray | None:
    """What to size orders to once the breaker has spoken: the weights themselves when it has
    not tripped, zeros (sell everything) when it tripped with flatten, None (hold, no orders)
    when it tripped without flatten."""
    if breaker is None or not breaker.tripped:
        return target_weights
    if breaker.flatten:
        return np.zeros_like(np.asarray(target_weights, dtype=np.float64))
    return None


def screen_guarded_orders(gate: RiskGate, orders: Sequence[Order], breaker: BreakerVerdict | None,
                          *, is_open: bool, trading_day: Hashable, equity: float
                          ) -> tuple[list[Order], tuple[RiskBreach, ...], GuardrailVerdict]:
    """The orders that may be sent, the gate's order-level breaches, and the verdict.

    Orders go through ``gate.screen_orders`` (market hours, daily kill switch) at every
    decision, with or without orders, so the daily loss is tracked. Flatten orders only reduce
    positions, so the daily kill switch -- which stops new risk and holds the book -- does not
    hold them back; the market-hours gate does.
    """
    passed, breaches = gate.screen_orders(orders, is_open=is_open, session=trading_day,
                                          equity=equity)
    flattening = breaker is not None and breaker.tripped and breaker.flatten
    if flattening and is_open and gate.halted:
        passed = list(orders)
    reasons = []
    if breaker is not None and breaker.tripped:
        reasons.append(SESSION_DRAWDOWN)
    if gate.halted:
        reasons.append(DAILY_LOSS_LIMIT)
    verdict = GuardrailVerdict(
        status=TRIPPED if reasons else PASS,
        reasons=tuple(reasons),
        trading_day=str(trading_day),
        equity=float(equity),
        session_drawdown=None if breaker is None else breaker.session_drawdown,
        session_drawdown_threshold=None if breaker is None else breaker.threshold,
        breaker_tripped_now=breaker is not None and breaker.tripped_now,
        daily_halted=gate.halted,
        daily_loss_limit=gate.limits.daily_loss_limit,
        flattening=flattening,
    )
    return passed, breaches, verdict
