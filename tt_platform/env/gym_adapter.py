"""Gymnasium face of tensortrade's ``TradingEnv``.

tensortrade keeps the old gym API (``reset()`` without a seed, 4-tuple ``step``). This adapter
gives SB3 the gymnasium API: ``reset(seed=, options=)`` -> ``(obs, info)`` and a 5-tuple ``step``
where ``terminated`` comes from the stopper (a drawdown or equity stop) and ``truncated`` from
running out of data or reaching ``episode_length``.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import pandas as pd
from gymnasium import spaces

from tt_platform.env.tensortrade_compat import install_shims

install_shims()

from tensortrade.env.generic import TradingEnv  # noqa: E402

from tt_platform.env.state import EpisodeState  # noqa: E402


def to_gymnasium_space(space: Any) -> spaces.Space:
    """Convert a gym (or gymnasium) space to the gymnasium equivalent."""
    if isinstance(space, spaces.Space):
        return space
    kind = type(space).__name__
    if kind == "Box":
        return spaces.Box(low=space.low, high=space.high, shape=space.shape, dtype=space.dtype)
    if kind == "Discrete":
        return spaces.Discrete(int(space.n))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(np.asarray(space.nvec))
    if kind == "MultiBinary":
        return spaces.MultiBinary(space.n)
    raise TypeError(f"cannot convert space {space!r} to gymnasium")


class TradingGymEnv(gymnasium.Env):
    """Wraps a tensortrade ``TradingEnv`` built on an ``EpisodeState``.

    reset options: ``start_index`` / ``end_index`` (bar positions) or ``start`` / ``end``
    (timestamps) pin the episode, e.g. for a deterministic evaluation over a test window.
    """

    metadata = {"render_modes": []}

    def __init__(self, trading_env: TradingEnv, state: EpisodeState, seed: int | None = None) -> None:
        super().__init__()
        self.trading_env = trading_env
        self.state = state
        self.market = state.market
        self.config = state.config
        self.action_space = to_gymnasium_space(trading_env.action_space)
        self.observation_space = to_gymnasium_space(trading_env.observation_space)
        self._initial_seed = seed
        self._seeded = False

    # -------------------------------------------------------------- episode bounds
    def _bounds(self, options: dict[str, Any] | None) -> tuple[int, int]:
        state, config = self.state, self.config
        first, last = state.first_start, self.market.n_steps - 1
        options = dict(options or {})
        unknown = set(options) - {"start_index", "end_index", "start", "end"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}")
        start_index = options.get("start_index")
        end_index = options.get("end_index")
        if options.get("start") is not None:
            start_index = self._index_of(options["start"], "start")
        if options.get("end") is not None:
            end_index = self._index_of(options["end"], "end", side="right") - 1
        stop = last if end_index is None else int(end_index)
        if start_index is not None:
            start = max(int(start_index), first)
        elif config.random_start:
            latest = stop - (config.episode_length or 1)
            start = int(self.np_random.integers(first, max(first, latest) + 1))
        else:
            start = first
        if config.episode_length is not None:
            stop = min(stop, start + config.episode_length)
        if not first <= start < stop <= last:
            raise ValueError(
                f"episode [{start}, {stop}] does not fit the data: need "
                f"{first} <= start < stop <= {last} (window_size={config.window_size})")
        return start, stop

    def _index_of(self, value: Any, name: str, side: str = "left") -> int:
        ts = pd.Timestamp(value)
        ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
        return int(self.market.timestamps.searchsorted(ts, side=side))

    # -------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None and not self._seeded:
            seed = self._initial_seed
        super().reset(seed=seed)
        self._seeded = True
        start, stop = self._bounds(options)
        self.state.reset(start, stop)
        obs = self.trading_env.reset()
        return obs, self.trading_env.informer.info(self.trading_env)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, done, info = self.trading_env.step(action)
        terminated = bool(done)
        truncated = not terminated and self.state.exhausted
        if terminated or truncated:
            self.state.done = True
        return obs, float(reward), terminated, truncated, info

    def render(self) -> None:
        return None

    def close(self) -> None:
        self.trading_env.close()
