"""Rule-based strategies: what a policy must beat, run through the same ``Backtester``.

Each is a callable ``(t, state) -> target weights | None`` reading only ``state.history`` (bars
up to t). None means "no orders this bar", so a strategy that is not due to rebalance lets its
weights drift instead of trading back to them. Periods are counted in decisions (bars): with
daily bars ``every=21`` is about monthly, ``lookback=252`` a year.
"""

from __future__ import annotations

import math

import numpy as np

from tt_platform.evaluation.backtest import StrategyState


def _equal_weights(members: np.ndarray, gross: float) -> np.ndarray | None:
    """``gross / count`` on ``members``, rounded down so the sum never exceeds ``gross``: a sum
    one ulp above the leverage cap would be reported as a risk-gate breach."""
    count = int(members.sum())
    if count == 0:
        return None
    weight = gross / count
    weights = np.where(members, weight, 0.0)
    while float(np.abs(weights).sum()) > gross:
        weight = float(np.nextafter(weight, 0.0))
        weights = np.where(members, weight, 0.0)
    return weights


def _check_positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{owner}.{name} must be > 0, got {value!r}")


class BuyAndHold:
    """Buys once, at the first decision, and never trades again.

    ``weights``: the weights to buy; else ``symbol``: all of ``gross`` in that one benchmark;
    else equal weights (summing to ``gross``) over the symbols that have a bar at the first
    decision -- a symbol listed later is never bought, as a holder never buys it.
    """

    name = "buy_and_hold"

    def __init__(self, weights: np.ndarray | None = None, *, symbol: str | None = None,
                 gross: float = 1.0) -> None:
        if weights is not None and symbol is not None:
            raise ValueError("BuyAndHold takes weights or a symbol, not both")
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.symbol = symbol
        self.gross = float(gross)

    def __call__(self, t: int, state: StrategyState) -> np.ndarray | None:
        if state.step > 0:
            return None
        if self.weights is not None:
            return self.weights
        if self.symbol is not None:
            if self.symbol not in state.symbols:
                raise ValueError(f"BuyAndHold: {self.symbol!r} is not among {state.symbols}")
            return np.where(np.asarray(state.symbols) == self.symbol, self.gross, 0.0)
        return _equal_weights(state.history.tradable[-1], self.gross)


class EqualWeight:
    """Equal weights (summing to ``gross``) over the symbols with a bar, rebalanced every
    ``every`` decisions (1: every bar)."""

    name = "equal_weight"

    def __init__(self, every: int = 21, gross: float = 1.0) -> None:
        if every < 1:
            raise ValueError(f"EqualWeight.every must be >= 1, got {every!r}")
        _check_positive("EqualWeight", gross=gross)
        self.every = int(every)
        self.gross = float(gross)

    def __call__(self, t: int, state: StrategyState) -> np.ndarray | None:
        if state.step % self.every:
            return None
        return _equal_weights(state.history.tradable[-1], self.gross)


class VolatilityTargetedEqualWeight:
    """Equal weights scaled so the basket's realised volatility meets ``target_vol``.

    At each rebalance (every ``every`` decisions) the members are the symbols with a bar now
    and a price over the last ``lookback`` returns; the scale is ``target_vol`` over the
    annualised standard deviation of the equal-weighted basket's past ``lookback`` returns
    (correlations included), capped at ``max_gross``. No trade until ``lookback`` returns
    exist. Set ``target_vol`` to a policy's realised volatility for a risk-matched baseline.
    """

    name = "vol_target_equal_weight"

    def __init__(self, target_vol: float, lookback: int = 63, every: int = 21,
                 max_gross: float = 1.0) -> None:
        _check_positive("VolatilityTargetedEqualWeight", target_vol=target_vol,
                        max_gross=max_gross)
        if lookback < 2 or every < 1:
            raise ValueError(f"VolatilityTargetedEqualWeight needs lookback >= 2 and every >= 1, "
                             f"got {lookback!r}, {every!r}")
        self.target_vol = float(target_vol)
        self.lookback = int(lookback)
        self.every = int(every)
        self.max_gross = float(max_gross)

    def __call__(self, t: int, state: StrategyState) -> np.ndarray | None:
        if state.step % self.every:
            return None
        history = state.history
        if history.n_steps <= self.lookback:
            return None
        window = history.last_price[-self.lookback - 1:]
        members = history.tradable[-1] & np.isfinite(window).all(axis=0)
        if not members.any():
            return None
        prices = window[:, members]
        basket = (prices[1:] / prices[:-1] - 1.0).mean(axis=1)
        vol = float(basket.std(ddof=1)) * math.sqrt(state.periods_per_year)
        gross = min(self.target_vol / vol, self.max_gross) if vol > 0.0 else self.max_gross
        return _equal_weights(members, gross)


class Momentum:
    """Cross-sectional momentum: equal weights in the ``top_k`` symbols by their return from
    ``lookback`` bars ago to ``skip`` bars ago (12-1 months with daily bars: 252 and 21,
    skipping the last month's reversal), rebalanced every ``every`` decisions.

    Only symbols with a bar now and prices at both ends rank; ties keep the panel's symbol
    order. ``positive_only`` drops symbols with a return <= 0 (the rest stays in cash). No
    trade until ``lookback`` bars of history exist.
    """

    name = "momentum"

    def __init__(self, top_k: int, lookback: int = 252, skip: int = 21, every: int = 21,
                 gross: float = 1.0, positive_only: bool = False) -> None:
        if top_k < 1 or every < 1 or not 0 <= skip < lookback:
            raise ValueError(f"Momentum needs top_k >= 1, every >= 1 and 0 <= skip < lookback, "
                             f"got top_k={top_k!r}, every={every!r}, skip={skip!r}, "
                             f"lookback={lookback!r}")
        _check_positive("Momentum", gross=gross)
        self.top_k = int(top_k)
        self.lookback = int(lookback)
        self.skip = int(skip)
        self.every = int(every)
        self.gross = float(gross)
        self.positive_only = positive_only

    def scores(self, state: StrategyState) -> np.ndarray:
        """Past return per symbol; NaN where it cannot rank."""
        history = state.history
        if history.n_steps <= self.lookback:
            return np.full(history.n_symbols, np.nan)
        prices = history.last_price
        with np.errstate(invalid="ignore"):
            score = prices[-1 - self.skip] / prices[-1 - self.lookback] - 1.0
        return np.where(history.tradable[-1], score, np.nan)

    def __call__(self, t: int, state: StrategyState) -> np.ndarray | None:
        if state.step % self.every:
            return None
        score = self.scores(state)
        ranked = np.isfinite(score)
        if self.positive_only:
            ranked &= score > 0.0
        if not ranked.any():
            return None if state.history.n_steps <= self.lookback else np.zeros_like(score)
        # Stable sort on -score: ties keep the symbol order.
        order = np.argsort(np.where(ranked, -score, np.inf), kind="stable")
        chosen = np.zeros(len(score), dtype=bool)
        chosen[order[:min(self.top_k, int(ranked.sum()))]] = True
        return _equal_weights(chosen, self.gross)
