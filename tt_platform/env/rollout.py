"""Run one episode with a policy and keep what happened at every step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np
import pandas as pd

PolicyFn = Callable[[np.ndarray], Any]


@dataclass
class EpisodeRecord:
    """Per-step arrays of one episode (S steps, N symbols).

    ``timestamps[i]`` is the bar at which step i's equity is marked (``t_index[i]`` into
    ``market.timestamps``); ``start_timestamp`` is the first decision bar, where equity was
    ``initial_equity``.
    """

    symbols: list[str]
    timestamps: pd.DatetimeIndex
    t_index: np.ndarray          # [S] int
    actions: np.ndarray          # [S, ...] as given to env.step
    rewards: np.ndarray          # [S]
    equity: np.ndarray           # [S]
    cash: np.ndarray             # [S]
    weights: np.ndarray          # [S, N] weights after the step's mark
    positions: np.ndarray        # [S, N] shares held after the step
    target_weights: np.ndarray   # [S, N] weights booked (after the risk gate)
    turnover: np.ndarray         # [S]
    cost: np.ndarray             # [S] commission + slippage
    drawdown: np.ndarray         # [S]
    gross_exposure: np.ndarray   # [S]
    reward_components: dict[str, np.ndarray]
    start_timestamp: pd.Timestamp
    initial_equity: float
    terminated: bool
    truncated: bool
    stop_reason: str | None = None
    periods_per_year: float = 252.0
    leverage_cap: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return len(self.rewards)

    def equity_curve(self) -> pd.Series:
        """Equity indexed by timestamp, starting with the initial equity at the first bar."""
        index = pd.DatetimeIndex([self.start_timestamp]).append(self.timestamps)
        return pd.Series(np.concatenate([[self.initial_equity], self.equity]), index=index,
                         name="equity")

    def returns(self) -> np.ndarray:
        """Simple step returns of equity (net of costs)."""
        curve = np.concatenate([[self.initial_equity], self.equity])
        return curve[1:] / curve[:-1] - 1.0


def policy_from_model(model: Any, deterministic: bool = True) -> PolicyFn:
    """Adapt an SB3 model (anything with ``predict``) to a policy function."""

    def policy(obs: np.ndarray) -> Any:
        action, _ = model.predict(obs, deterministic=deterministic)
        return action

    return policy


def rollout(env: gymnasium.Env, policy_fn: PolicyFn, *, seed: int | None = None,
            options: dict[str, Any] | None = None, max_steps: int | None = None) -> EpisodeRecord:
    """Reset ``env`` and step it with ``policy_fn(obs) -> action`` until the episode ends."""
    base = env.unwrapped
    market = getattr(base, "market", None)
    if market is None:
        raise TypeError(f"rollout needs a tt_platform trading env, got {type(base).__name__}")
    obs, info = env.reset(seed=seed, options=options)
    start_t = int(info["t"])
    initial_equity = float(info["equity"])
    actions, rewards, infos = [], [], []
    terminated = truncated = False
    while not (terminated or truncated):
        if max_steps is not None and len(rewards) >= max_steps:
            break
        action = policy_fn(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        actions.append(np.asarray(action).copy())
        rewards.append(reward)
        infos.append(info)
    n = market.n_symbols
    t_index = np.array([i["t"] for i in infos], dtype=np.int64)
    component_names = list(infos[0]["reward_components"]) if infos else []
    config = getattr(base, "config", None)
    return EpisodeRecord(
        symbols=list(market.symbols),
        timestamps=market.timestamps[t_index],
        t_index=t_index,
        actions=np.array(actions) if actions else np.zeros((0, n)),
        rewards=np.asarray(rewards, dtype=np.float64),
        equity=np.array([i["equity"] for i in infos], dtype=np.float64),
        cash=np.array([i["cash"] for i in infos], dtype=np.float64),
        weights=np.array([i["weights"] for i in infos]).reshape(-1, n),
        positions=np.array([i["positions"] for i in infos]).reshape(-1, n),
        target_weights=np.array([i["target_weights"] for i in infos]).reshape(-1, n),
        turnover=np.array([i["turnover"] for i in infos], dtype=np.float64),
        cost=np.array([i["cost"] for i in infos], dtype=np.float64),
        drawdown=np.array([i["drawdown"] for i in infos], dtype=np.float64),
        gross_exposure=np.array([i["gross_exposure"] for i in infos], dtype=np.float64),
        reward_components={k: np.array([i["reward_components"][k] for i in infos])
                           for k in component_names},
        start_timestamp=market.timestamps[start_t],
        initial_equity=initial_equity,
        terminated=bool(terminated),
        truncated=bool(truncated),
        stop_reason=infos[-1].get("stop_reason") if infos else None,
        periods_per_year=float(getattr(base.state, "periods_per_year", market.periods_per_year)),
        leverage_cap=float(config.leverage_cap) if config is not None else 1.0,
    )
