"""``BatchedTradingVecEnv``: N copies of the trading env stepped together as one SB3 ``VecEnv``.

SB3's ``DummyVecEnv`` steps N gymnasium envs one after another: each copy goes through the
gymnasium adapter, tensortrade's ``TradingEnv.step`` and its own observer, and every step's infos
are deep-copied. This env holds the same N copies (built by ``make_env``, so every component, the
``RiskGate`` and the ``ExecutionCore`` are exactly the ones a single env uses) and steps them as a
batch:

* actions -> target weights for all copies in one numpy expression over the copy axis;
* each copy's ``EpisodeState.execute`` (risk gate, execution core, mark), reward scheme, stopper
  and informer, in a loop over copies: the core books one portfolio per call, and looping keeps
  its arithmetic (and whatever it grows into) the single source of truth;
* observations for all copies written straight into one [N, symbols, rows, window] array (one
  slice copy per copy, the positions row for all copies at once).

Results are identical to ``DummyVecEnv([lambda: make_env(market, config, seed=seed + i) ...])``:
same observations, rewards, dones and infos (``TimeLimit.truncated``, ``terminal_observation``),
the same auto-reset and the same seeding (copy i seeded ``seed + i``; ``VecEnv.seed`` applies at
the next ``reset``). ``tt_platform_tests/env/test_vector_env.py`` checks this step by step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from tt_platform.config.env import EnvConfig
from tt_platform.env.components import (
    SimpleDiscreteAction,
    VolatilityTargetedAction,
    WindowObserver,
)
from tt_platform.env.factory import make_env
from tt_platform.env.gym_adapter import TradingGymEnv
from tt_platform.env.market import MarketData

# PortfolioInformer entries holding arrays owned by the episode state
_ARRAY_INFO_KEYS = ("weights", "positions", "target_weights")


def _share_read_only_arrays(first: TradingGymEnv, env: TradingGymEnv) -> None:
    """Copies of one market precompute the same read-only arrays: ``env`` keeps ``first``'s."""
    a, b = first.trading_env, env.trading_env
    if type(a.observer) is WindowObserver and type(b.observer) is WindowObserver:
        b.observer.features_nft = a.observer.features_nft
    if (type(a.action_scheme) is VolatilityTargetedAction
            and type(b.action_scheme) is VolatilityTargetedAction):
        b.action_scheme.scale = a.action_scheme.scale


class BatchedTradingVecEnv(VecEnv):
    """``n_envs`` copies of ``make_env(market, config)``, copy i seeded ``seed + i``.

    ``envs`` holds the copies (``TradingGymEnv``); ``get_attr`` / ``env_method`` reach them as in
    ``DummyVecEnv``.
    """

    def __init__(self, market: MarketData, config: EnvConfig | None = None, n_envs: int = 1,
                 seed: int | None = None) -> None:
        if n_envs < 1:
            raise ValueError(f"BatchedTradingVecEnv needs n_envs >= 1, got {n_envs}")
        config = config or EnvConfig()
        self.market = market
        self.config = config
        self.envs: list[TradingGymEnv] = []
        for i in range(n_envs):
            env = make_env(market, config, seed=None if seed is None else seed + i)
            if self.envs:
                _share_read_only_arrays(self.envs[0], env)
            self.envs.append(env)
        first = self.envs[0]
        super().__init__(n_envs, first.observation_space, first.action_space)
        self._states = [env.state for env in self.envs]
        trading = [env.trading_env for env in self.envs]
        self._copies = [(env.state, t.reward_scheme, t.stopper, t.informer, t.clock, t)
                        for env, t in zip(self.envs, trading, strict=True)]
        self._action_schemes = [t.action_scheme for t in trading]
        self._observers = [t.observer for t in trading]
        action_scheme = self._action_schemes[0]
        observer = self._observers[0]
        # Vectorised paths for the components make_env builds; anything else goes copy by copy.
        self._vol_scale = (action_scheme.scale
                           if type(action_scheme) is VolatilityTargetedAction else None)
        self._discrete = type(action_scheme) is SimpleDiscreteAction
        self._window_obs = type(observer) is WindowObserver
        self._obs_shape = tuple(self.observation_space.shape)
        self._n_symbols = market.n_symbols
        self.actions: np.ndarray | None = None

    # -------------------------------------------------------------- VecEnv API
    def reset(self) -> VecEnvObs:
        obs = np.empty((self.num_envs, *self._obs_shape), dtype=self.observation_space.dtype)
        for i, env in enumerate(self.envs):
            options = self._options[i]
            maybe_options = {"options": options} if options else {}
            obs[i], self.reset_infos[i] = env.reset(seed=self._seeds[i], **maybe_options)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self.actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        actions = self.actions
        weights = self._target_weights(actions)
        rewards: list[float] = []
        dones: list[bool] = []
        infos: list[dict[str, Any]] = []
        snapshot = self._snapshot_info
        for i, (state, reward_scheme, stopper, informer, clock, trading) in enumerate(self._copies):
            # TradingEnv.step and TradingGymEnv.step, in their order, minus the observation
            if weights is None:
                self._action_schemes[i].perform(trading, actions[i])
            else:
                state.execute(weights[i])
            rewards.append(float(reward_scheme.reward(trading)))
            terminated = bool(stopper.stop(trading))
            info = snapshot(informer.info(trading))
            clock.increment()
            truncated = not terminated and state.exhausted
            if terminated or truncated:
                state.done = True
            dones.append(terminated or truncated)
            info["TimeLimit.truncated"] = truncated and not terminated
            infos.append(info)
        obs = self._observe()
        dones_array = np.array(dones, dtype=bool)
        for i in np.flatnonzero(dones_array):
            infos[i]["terminal_observation"] = obs[i].copy()
            obs[i], self.reset_infos[i] = self.envs[i].reset()
        # float32 like DummyVecEnv's reward buffer (the same rounding of each float)
        return obs, np.array(rewards, dtype=np.float32), dones_array, infos

    @staticmethod
    def _snapshot_info(info: dict[str, Any]) -> dict[str, Any]:
        """Copies of the arrays and dicts an info shares with the episode state, so it stays a
        snapshot of its step (DummyVecEnv deep-copies every info for the same reason)."""
        for key in _ARRAY_INFO_KEYS:
            value = info.get(key)
            if value is not None:
                info[key] = value.copy()
        components = info.get("reward_components")
        if components is not None:
            info["reward_components"] = dict(components)
        return info

    def _target_weights(self, actions: Any) -> np.ndarray | None:
        """[N, symbols] target weights for all copies (None: map them copy by copy)."""
        n, s = self.num_envs, self._n_symbols
        if self._vol_scale is not None:
            a = np.asarray(actions, dtype=np.float64).reshape(n, s)
            t = np.fromiter((state.t for state in self._states), dtype=np.int64, count=n)
            return np.minimum(np.maximum(a, -1.0), 1.0) * self._vol_scale[t]
        if self._discrete:
            scheme = self._action_schemes[0]
            choice = np.asarray(actions, dtype=np.int64).reshape(n, s)
            if ((choice < 0) | (choice >= len(scheme.sides))).any():
                raise ValueError(
                    f"discrete action out of range 0..{len(scheme.sides) - 1}: {choice}")
            return scheme.sides[choice] * scheme.unit
        return None

    def _observe(self) -> np.ndarray:
        n = self.num_envs
        if not self._window_obs:
            return np.stack([obs.observe(copy[5]) for obs, copy
                             in zip(self._observers, self._copies, strict=True)])
        observer = self._observers[0]
        f, window = observer._f, observer.window
        obs = np.empty((n, *observer.shape), dtype=np.float32)
        features = observer.features_nft
        for i, state in enumerate(self._states):
            t = state.t
            obs[i, :, :f, :] = features[:, :, t - window + 1:t + 1]
        if observer.include_positions:
            clip = observer.clip
            weights = np.stack([state.weights for state in self._states])
            obs[:, :, f, :] = np.minimum(np.maximum(weights, -clip), clip)[:, :, None]
        return obs.reshape(n, -1) if observer.flat else obs

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [env.get_wrapper_attr(attr_name) for env in self._target_envs(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for env in self._target_envs(indices):
            setattr(env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        return [env.get_wrapper_attr(method_name)(*method_args, **method_kwargs)
                for env in self._target_envs(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        from stable_baselines3.common import env_util

        return [env_util.is_wrapped(env, wrapper_class) for env in self._target_envs(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in self.envs]

    def _target_envs(self, indices: VecEnvIndices) -> list[TradingGymEnv]:
        return [self.envs[i] for i in self._get_indices(indices)]
