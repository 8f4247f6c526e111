"""Pre-trade risk gate: clamps target weights to the limits, screens orders, and reports what it
changed.

Training, backtests and the live loop put every target through the same ``RiskGate`` so a policy
never learns on positions the live loop would refuse. Two stages:

* ``apply(target_weights, ...)``: weight rules (long-only, per-symbol caps in weight and in
  currency, net and gross exposure, the drawdown kill switch).
* ``screen_orders(orders, ...)``: rules that stop trading altogether (market hours, the daily
  loss kill switch). They act on orders, not weights: "hold what you have" is no orders, while
  re-targeting the current weights would still send rounding-sized trades.

The core knows no calendar: callers say whether the market is open and which session (day) a
check belongs to.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from tt_platform.core.orders import Order


@dataclass(frozen=True)
class RiskLimits:
    """Limits on target weights (fractions of equity).

    leverage_cap: max gross exposure, sum of |w|.
    per_symbol_cap: max |w| of any one symbol.
    long_only: no negative weights.
    max_drawdown: at or beyond this drawdown (0.25 = 25 %) every target becomes flat;
        None disables the kill switch.
    max_net_exposure: max |sum of w|; None disables it.
    max_symbol_notional: max |position value| of any one symbol, in currency (|w| x equity);
        None disables it.
    daily_loss_limit: when equity has fallen this fraction (0.03 = 3 %) below its value at the
        end of the previous session, no more orders are sent for the rest of the session;
        positions are held, not sold (the max_drawdown switch is the one that goes flat).
        None disables it.
    """

    leverage_cap: float = 1.0
    per_symbol_cap: float = 1.0
    long_only: bool = True
    max_drawdown: float | None = None
    max_net_exposure: float | None = None
    max_symbol_notional: float | None = None
    daily_loss_limit: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.leverage_cap) and self.leverage_cap > 0):
            raise ValueError(f"RiskLimits.leverage_cap must be > 0, got {self.leverage_cap!r}")
        if not (math.isfinite(self.per_symbol_cap) and self.per_symbol_cap > 0):
            raise ValueError(f"RiskLimits.per_symbol_cap must be > 0, got {self.per_symbol_cap!r}")
        if self.max_drawdown is not None and not 0 < self.max_drawdown <= 1:
            raise ValueError(f"RiskLimits.max_drawdown must be in (0, 1], got {self.max_drawdown!r}")
        if self.max_net_exposure is not None and not self.max_net_exposure >= 0:
            raise ValueError(
                f"RiskLimits.max_net_exposure must be >= 0, got {self.max_net_exposure!r}")
        if self.max_symbol_notional is not None and not (
                math.isfinite(self.max_symbol_notional) and self.max_symbol_notional >= 0):
            raise ValueError(f"RiskLimits.max_symbol_notional must be a finite number >= 0, "
                             f"got {self.max_symbol_notional!r}")
        if self.daily_loss_limit is not None and not 0 < self.daily_loss_limit <= 1:
            raise ValueError(
                f"RiskLimits.daily_loss_limit must be in (0, 1], got {self.daily_loss_limit!r}")


@dataclass(frozen=True)
class RiskBreach:
    """One rule that changed the targets: which symbols (indices; empty for portfolio-level
    rules), what was asked and what was allowed."""

    rule: str
    indices: tuple[int, ...]
    requested: tuple[float, ...]
    allowed: tuple[float, ...]

    def describe(self, symbols: list[str] | None = None) -> str:
        if not self.indices:
            return f"{self.rule}: {self.requested[0]:.4g} -> {self.allowed[0]:.4g}"
        names = [symbols[i] if symbols else str(i) for i in self.indices]
        pairs = ", ".join(f"{n} {r:.4g}->{a:.4g}"
                          for n, r, a in zip(names, self.requested, self.allowed, strict=True))
        return f"{self.rule}: {pairs}"


def _symbol_breach(rule: str, mask: np.ndarray, before: np.ndarray, after: np.ndarray) -> RiskBreach:
    idx = np.flatnonzero(mask)
    return RiskBreach(rule, tuple(int(i) for i in idx), tuple(before[idx].tolist()),
                      tuple(after[idx].tolist()))


class RiskGate:
    """Applies ``RiskLimits`` to weights in a fixed order: non-finite -> 0, drawdown kill switch,
    long-only, per-symbol cap, per-symbol notional cap, net exposure, gross leverage (scaled
    proportionally, keeping the mix); then screens orders (market hours, daily loss).

    The daily kill switch remembers the session and its starting equity: use one gate per
    portfolio, and ``reset()`` it when the portfolio starts over.
    """

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self.reset()

    def reset(self) -> None:
        self._session: Hashable | None = None
        self._session_start_equity = 0.0
        self._last_equity: float | None = None
        self._halted = False
        self._daily_loss = 0.0

    def apply(self, target_weights: np.ndarray, *, drawdown: float = 0.0,
              equity: float | None = None) -> tuple[np.ndarray, tuple[RiskBreach, ...]]:
        """Clamp ``target_weights``; ``equity`` (currency) is needed for the notional cap."""
        limits = self.limits
        w = np.asarray(target_weights, dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"RiskGate.apply: target_weights must be 1-D, got shape {w.shape}")
        breaches: list[RiskBreach] = []
        if w.size == 0:
            return w.copy(), ()

        # Cheap reductions first; masks are only built when a rule actually fires.
        if not math.isfinite(float(w.sum())):
            finite = np.isfinite(w)
            clean = np.where(finite, w, 0.0)
            breaches.append(_symbol_breach("non_finite_weight", ~finite, w, clean))
            w = clean

        if limits.max_drawdown is not None and drawdown >= limits.max_drawdown and w.any():
            breaches.append(RiskBreach("max_drawdown", (), (float(drawdown),),
                                       (limits.max_drawdown,)))
            return np.zeros_like(w), tuple(breaches)

        if limits.long_only and w.min() < 0.0:
            clipped = np.maximum(w, 0.0)
            breaches.append(_symbol_breach("long_only", w < 0.0, w, clipped))
            w = clipped

        cap = limits.per_symbol_cap
        magnitude = np.abs(w)
        if magnitude.max() > cap:
            clipped = np.minimum(np.maximum(w, -cap), cap)
            breaches.append(_symbol_breach("per_symbol_cap", magnitude > cap, w, clipped))
            w = clipped
            magnitude = np.abs(w)

        if limits.max_symbol_notional is not None:
            if equity is None:
                raise ValueError("RiskGate.apply: max_symbol_notional needs the equity")
            if equity > 0.0:
                cap_weight = limits.max_symbol_notional / equity
                if magnitude.max() > cap_weight:
                    clipped = np.minimum(np.maximum(w, -cap_weight), cap_weight)
                    breaches.append(_symbol_breach("max_symbol_notional", magnitude > cap_weight,
                                                   w * equity, clipped * equity))
                    w = clipped
                    magnitude = np.abs(w)

        if limits.max_net_exposure is not None:
            net = float(w.sum())
            if abs(net) > limits.max_net_exposure:
                # Shrink only the side that causes the excess, so the hedge stays intact.
                side = w > 0 if net > 0 else w < 0
                side_sum = float(w[side].sum())
                keep = (side_sum - (net - math.copysign(limits.max_net_exposure, net))) / side_sum
                w = np.where(side, w * keep, w)
                breaches.append(RiskBreach("max_net_exposure", (), (net,), (float(w.sum()),)))
                magnitude = np.abs(w)

        gross = float(magnitude.sum())
        if gross > limits.leverage_cap:
            w = w * (limits.leverage_cap / gross)
            breaches.append(RiskBreach("leverage_cap", (), (gross,), (limits.leverage_cap,)))

        return w, tuple(breaches)

    def screen_orders(self, orders: Sequence[Order], *, is_open: bool = True,
                      session: Hashable | None = None, equity: float | None = None
                      ) -> tuple[list[Order], tuple[RiskBreach, ...]]:
        """The orders that may be sent now: none when the market is closed (``is_open``) or the
        daily kill switch has tripped this ``session``.

        Call it at every decision, with or without orders, passing ``session`` (any key that
        changes once per trading day) and the marked ``equity`` when ``daily_loss_limit`` is
        set: the switch measures the loss from the last equity seen in the previous session (so
        an overnight gap counts) and stays tripped until the session changes, even if equity
        recovers.
        """
        self._update_daily_loss(session, equity)
        if not orders:
            return [], ()
        if not is_open:
            return [], (RiskBreach("market_closed", (), (float(len(orders)),), (0.0,)),)
        if self._halted:
            return [], (RiskBreach("daily_loss_limit", (), (self._daily_loss,),
                                   (float(self.limits.daily_loss_limit),)),)  # type: ignore[arg-type]
        return list(orders), ()

    def resume_daily(self, session: Hashable, start_equity: float, last_equity: float, halted: bool) -> None:
        """Restore the daily kill switch after a restart (from the recorded decisions), so a job
        restarted on the day its switch tripped does not trade again that day."""
        for name, value in (("start_equity", start_equity), ("last_equity", last_equity)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0.0):
                raise ValueError(f"RiskGate.resume_daily: {name} must be a finite number > 0, got {value!r}")
        if session is None:
            raise ValueError("RiskGate.resume_daily: session is None")
        self._session = session
        self._session_start_equity = float(start_equity)
        self._last_equity = float(last_equity)
        self._daily_loss = 1.0 - float(last_equity) / float(start_equity)
        self._halted = bool(halted)

    @property
    def halted(self) -> bool:
        """True while the daily kill switch stops trading."""
        return self._halted

    def _update_daily_loss(self, session: Hashable | None, equity: float | None) -> None:
        limit = self.limits.daily_loss_limit
        if limit is None:
            return
        if session is None or equity is None:
            raise ValueError("RiskGate.screen_orders: daily_loss_limit needs session and equity")
        if session != self._session:
            self._session = session
            self._session_start_equity = equity if self._last_equity is None else self._last_equity
            self._halted = False
        self._last_equity = equity
        start = self._session_start_equity
        self._daily_loss = 1.0 - equity / start if start > 0.0 else 1.0
        if self._daily_loss >= limit:
            self._halted = True
