"""Fast components on tensortrade's generic interfaces.

They keep tensortrade's component model (action scheme, reward scheme, observer, stopper,
informer, renderer) but read and write one shared ``EpisodeState`` backed by precomputed numpy
arrays, so a step never walks the history (tensortrade's defaults are O(t) per step).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tt_platform.env.tensortrade_compat import install_shims

install_shims()

from gymnasium import spaces  # noqa: E402
from tensortrade.env.generic import (  # noqa: E402
    ActionScheme,
    Informer,
    Observer,
    Renderer,
    RewardScheme,
    Stopper,
)

from tt_platform.env.state import EpisodeState  # noqa: E402


# ---------------------------------------------------------------------------- actions
class VolatilityTargetedAction(ActionScheme):
    """Continuous exposures a in [-1, 1] per symbol, sized by volatility.

    weight_i = a_i x risk_target / max(vol_i, vol_floor) / N, so each symbol at full exposure
    carries an equal share of the volatility target. The risk gate then applies the
    long-only flag, the per-symbol cap and the leverage cap. vol_i is the realised volatility
    up to the decision bar; a zero volatility falls back to ``vol_floor``; a symbol without
    enough history (NaN volatility) or without a bar gets no position.
    """

    def __init__(self, state: EpisodeState, *, risk_target: float, vol_floor: float,
                 vol_lookback: int) -> None:
        super().__init__()
        if not (risk_target > 0 and vol_floor > 0):
            raise ValueError(
                f"risk_target ({risk_target}) and vol_floor ({vol_floor}) must be > 0")
        self.state = state
        market = state.market
        vol = market.annualised_volatility(vol_lookback)
        if state.config.periods_per_year is not None:
            vol = vol * math.sqrt(state.config.periods_per_year / market.periods_per_year)
        with np.errstate(invalid="ignore"):
            scale = risk_target / np.maximum(vol, vol_floor) / market.n_symbols
        # Precomputed per bar, so perform() is one multiply.
        self.scale = np.where(np.isfinite(scale) & market.tradable, scale, 0.0)
        self._space = spaces.Box(-1.0, 1.0, shape=(market.n_symbols,), dtype=np.float32)

    @property
    def action_space(self) -> spaces.Box:
        return self._space

    def target_weights(self, action: Any) -> np.ndarray:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self._space.shape:
            a = a.reshape(self._space.shape)
        # minimum/maximum: np.clip's Python wrapper costs more than the arithmetic here.
        return np.minimum(np.maximum(a, -1.0), 1.0) * self.scale[self.state.t]

    def perform(self, env: Any, action: Any) -> None:
        self.state.execute(self.target_weights(action))


class SimpleDiscreteAction(ActionScheme):
    """Per symbol: 0 flat, 1 long, 2 short (no short choice when long-only).

    Every active symbol gets an equal weight of leverage_cap / N, so one symbol's choice never
    changes another's size.
    """

    def __init__(self, state: EpisodeState, *, leverage_cap: float, long_only: bool) -> None:
        super().__init__()
        self.state = state
        n = state.n_symbols
        self.unit = leverage_cap / n
        self.sides = np.array([0.0, 1.0] if long_only else [0.0, 1.0, -1.0])
        self._space = spaces.MultiDiscrete(np.full(n, len(self.sides), dtype=np.int64))

    @property
    def action_space(self) -> spaces.MultiDiscrete:
        return self._space

    def target_weights(self, action: Any) -> np.ndarray:
        choice = np.asarray(action, dtype=np.int64).reshape(self._space.shape)
        if ((choice < 0) | (choice >= len(self.sides))).any():
            raise ValueError(f"discrete action out of range 0..{len(self.sides) - 1}: {choice}")
        return self.sides[choice] * self.unit

    def perform(self, env: Any, action: Any) -> None:
        self.state.execute(self.target_weights(action))


# ---------------------------------------------------------------------------- reward
class RiskAwareReward(RewardScheme):
    """Sharpe-like step reward, net of costs:

    reward = scale x ( r_t / max(sigma_{t-1}, floor)
                       - drawdown_penalty x max(0, dd_t - dd_{t-1})
                       - turnover_penalty x turnover_t )

    r_t is the log return of equity over the step (commission and slippage already paid),
    sigma an EWMA of past squared step returns (O(1) per step). Only new drawdown is penalised,
    so a lasting drawdown is not charged again every bar.
    """

    def __init__(self, state: EpisodeState, *, vol_halflife: float, vol_floor: float,
                 drawdown_penalty: float, turnover_penalty: float, scale: float = 1.0) -> None:
        super().__init__()
        self.state = state
        self.alpha = 1.0 - 0.5 ** (1.0 / vol_halflife)
        self.vol_floor = vol_floor
        self.drawdown_penalty = drawdown_penalty
        self.turnover_penalty = turnover_penalty
        self.scale = scale
        self.reset()

    def reset(self) -> None:
        self.var = self.vol_floor ** 2
        self.components: dict[str, float] = {}

    def reward(self, env: Any) -> float:
        state = self.state
        portfolio = state.portfolio
        ratio = portfolio.equity / state.prev_equity if state.prev_equity > 0 else 0.0
        log_ret = math.log(ratio) if ratio > 1e-6 else math.log(1e-6)
        sharpe_term = log_ret / max(math.sqrt(self.var), self.vol_floor)
        self.var += self.alpha * (log_ret * log_ret - self.var)
        new_dd = portfolio.drawdown - state.prev_drawdown
        dd_term = self.drawdown_penalty * new_dd if new_dd > 0.0 else 0.0
        turnover = state.fills.turnover if state.fills is not None else 0.0
        to_term = self.turnover_penalty * turnover
        value = self.scale * (sharpe_term - dd_term - to_term)
        self.components = {"log_return": log_ret, "sharpe_term": sharpe_term,
                           "drawdown_penalty": dd_term, "turnover_penalty": to_term}
        return value


# ---------------------------------------------------------------------------- stopper
class DrawdownStopper(Stopper):
    """Ends the episode (terminated) at ``max_drawdown``, or when equity falls below
    ``equity_floor`` x initial cash; the drawdown check waits ``warmup_steps``."""

    def __init__(self, state: EpisodeState, *, max_drawdown: float, equity_floor: float,
                 warmup_steps: int = 0) -> None:
        super().__init__()
        self.state = state
        self.max_drawdown = max_drawdown
        self.floor_equity = equity_floor * state.portfolio.initial_cash
        self.warmup_steps = warmup_steps
        self.reason: str | None = None

    def reset(self) -> None:
        self.reason = None

    def stop(self, env: Any) -> bool:
        portfolio = self.state.portfolio
        if portfolio.equity <= 0.0 or portfolio.equity < self.floor_equity:
            self.reason = "equity_floor"
        elif self.state.steps > self.warmup_steps and portfolio.drawdown >= self.max_drawdown:
            self.reason = "max_drawdown"
        else:
            return False
        self.state.done = True
        return True


# ---------------------------------------------------------------------------- observer
class WindowObserver(Observer):
    """Features over the last ``window`` bars up to t (never after), as a
    [symbols, features, window] tensor or the same values flattened.

    Invalid or NaN features are 0 (masked). With ``include_positions`` one extra feature row
    holds each symbol's current weight, so the policy sees what it holds.
    """

    def __init__(self, state: EpisodeState, *, window: int, flat: bool = False,
                 include_positions: bool = True, clip: float = 10.0) -> None:
        super().__init__()
        self.state = state
        self.window = window
        self.flat = flat
        self.include_positions = include_positions
        self.clip = float(clip)
        market = state.market
        masked = np.clip(market.masked_features(), -self.clip, self.clip)
        # [N, F, T] contiguous: a window is one strided slice, already in output order.
        self.features_nft = np.ascontiguousarray(masked.transpose(1, 2, 0))
        n, f = market.n_symbols, market.n_features
        self.n_rows = f + (1 if include_positions else 0)
        if self.n_rows == 0:
            raise ValueError("observation would be empty: market has no features and "
                             "include_positions is False")
        self.shape = (n, self.n_rows, window)
        obs_shape = (n * self.n_rows * window,) if flat else self.shape
        self._space = spaces.Box(-self.clip, self.clip, shape=obs_shape, dtype=np.float32)
        self._f = f

    @property
    def observation_space(self) -> spaces.Box:
        return self._space

    def observe(self, env: Any) -> np.ndarray:
        t = self.state.t
        obs = np.empty(self.shape, dtype=np.float32)
        obs[:, :self._f, :] = self.features_nft[:, :, t - self.window + 1:t + 1]
        if self.include_positions:
            weights = np.minimum(np.maximum(self.state.weights, -self.clip), self.clip)
            obs[:, self._f, :] = weights[:, None]
        return obs.reshape(-1) if self.flat else obs


# ---------------------------------------------------------------------------- informer
class PortfolioInformer(Informer):
    """Per-step facts evaluation needs to rebuild the equity curve from a rollout."""

    def __init__(self, state: EpisodeState, reward_scheme: RiskAwareReward | None = None,
                 stopper: DrawdownStopper | None = None) -> None:
        super().__init__()
        self.state = state
        self.reward_scheme = reward_scheme
        self.stopper = stopper

    def info(self, env: Any) -> dict[str, Any]:
        state = self.state
        portfolio = state.portfolio
        fills = state.fills
        weights = state.weights
        return {
            "t": state.t,
            "step": state.steps,
            "equity": portfolio.equity,
            "cash": portfolio.cash,
            "weights": weights,
            "positions": portfolio.positions,
            "target_weights": state.target_weights,
            "gross_exposure": float(np.abs(weights).sum()),
            "turnover": fills.turnover if fills is not None else 0.0,
            "cost": fills.cost if fills is not None else 0.0,
            "commission": fills.commission if fills is not None else 0.0,
            "slippage": fills.slippage if fills is not None else 0.0,
            "drawdown": portfolio.drawdown,
            "risk_breaches": len(state.breaches),
            "reward_components": self.reward_scheme.components if self.reward_scheme else {},
            "stop_reason": self.stopper.reason if self.stopper else None,
        }


class NullRenderer(Renderer):
    """Training needs no rendering; plots come from the recorded episodes."""

    def render(self, env: Any, **kwargs: Any) -> None:
        return None
