"""Pre-trade risk gate: clamps target weights to the limits and reports what it changed.

Training, backtests and the live loop put every target through the same ``RiskGate`` so a policy
never learns on positions the live loop would refuse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RiskLimits:
    """Limits on target weights (fractions of equity).

    leverage_cap: max gross exposure, sum of |w|.
    per_symbol_cap: max |w| of any one symbol.
    long_only: no negative weights.
    max_drawdown: at or beyond this drawdown (0.25 = 25 %) every target becomes flat;
        None disables the kill switch.
    max_net_exposure: max |sum of w|; None disables it.
    """

    leverage_cap: float = 1.0
    per_symbol_cap: float = 1.0
    long_only: bool = True
    max_drawdown: float | None = None
    max_net_exposure: float | None = None

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
    """Applies ``RiskLimits`` in a fixed order: non-finite -> 0, drawdown kill switch, long-only,
    per-symbol cap, net exposure, gross leverage (scaled proportionally, keeping the mix)."""

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits

    def apply(self, target_weights: np.ndarray, *, drawdown: float = 0.0
              ) -> tuple[np.ndarray, tuple[RiskBreach, ...]]:
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
