"""Environment speed: our env against tensortrade's default env and a FinRL-style pandas env.

All comparisons run in one process on the same synthetic market (``generate_bars``; 30 assets x
8 features x window 30 by default) with pre-drawn random actions, so the ratios hold on whatever
machine runs them:

* random-action env steps/s: ours vs ``tensortrade.env.default.create`` (ManagedRiskOrders +
  RiskAdjustedReturns) and vs ``PandasStockTradingEnv`` below (FinRL StockTradingEnv's pattern:
  per-step ``DataFrame.loc`` lookups and Python loops over stocks);
* rate from the first to the last 400-step block of one episode (ours must stay flat; tensortrade's
  default components are O(t) per step);
* PPO env-steps/s training on our env vs on a null env with the same spaces;
* steps/s and memory over N symbols x F features.

Rates are measured in CPU time of this process (``time.process_time``): the machine is shared,
and wall time would mostly measure other people's load. Torch runs on one thread.
"""

from __future__ import annotations

import gc
import logging
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np
import pandas as pd

from tt_platform.bench.harness import BenchResult
from tt_platform.data.synthetic import generate_bars
from tt_platform.env import EnvConfig, MarketData, make_env

WINDOW = 30
cpu_clock = time.process_time
BLOCK = 400
LAGS = (1, 2, 3, 5, 10, 20, 40, 60)


# ----------------------------------------------------------------------------- data
def bench_market(n_symbols: int = 30, n_features: int = 8, n_bars: int = 2520, seed: int = 7
                 ) -> MarketData:
    """Synthetic closes from ``generate_bars`` plus ``n_features`` lagged log-return features
    (z-scored, NaN during warmup and masked)."""
    years = int(np.ceil(n_bars / 252)) + 1
    symbols = [f"S{i:03d}" for i in range(n_symbols)]
    bars = generate_bars(symbols, "2005-01-01", f"{2005 + years}-12-31", seed=seed)
    close_frame = bars.pivot(index="ts", columns="symbol", values="close")[symbols].iloc[:n_bars]
    close = close_frame.to_numpy(dtype=np.float64)
    log_close = np.log(close)
    t = len(close)
    features = np.full((t, n_symbols, n_features), np.nan, dtype=np.float32)
    for k in range(n_features):
        lag = LAGS[k % len(LAGS)] * (1 + k // len(LAGS))
        if lag < t:
            change = log_close[lag:] - log_close[:-lag]
            features[lag:, :, k] = change / (np.nanstd(change) or 1.0)
    return MarketData(timestamps=close_frame.index, symbols=symbols, close=close,
                      features=features, feature_mask=np.isfinite(features),
                      feature_names=[f"ret_{k}" for k in range(n_features)])


def bench_config(**overrides: Any) -> EnvConfig:
    # No stops: every episode runs to the end of the data, so blocks are comparable.
    values = dict(window_size=WINDOW, long_only=False, per_symbol_cap=0.2, max_drawdown=1.0,
                  equity_floor=0.0, episode_length=None, random_start=False)
    return EnvConfig(**(values | overrides))


# ----------------------------------------------------------------------------- runners
def block_rates(step: Callable[[int], bool], n_steps: int, block: int = BLOCK) -> list[float]:
    """Steps/s of consecutive blocks; ``step(i)`` returns True when the episode is over."""
    rates = []
    start = cpu_clock()
    for i in range(n_steps):
        done = step(i)
        if (i + 1) % block == 0:
            now = cpu_clock()
            rates.append(block / (now - start))
            start = now
        if done:
            break
    return rates


def run_ours(market: MarketData, n_steps: int, seed: int = 0, config: EnvConfig | None = None,
             block: int = BLOCK) -> tuple[float, list[float]]:
    env = make_env(market, config or bench_config(), seed=seed)
    actions = np.random.default_rng(seed).uniform(-1, 1, (n_steps, market.n_symbols)).astype(np.float32)
    env.reset()

    def step(i: int) -> bool:
        _, _, terminated, truncated, _ = env.step(actions[i])
        return terminated or truncated

    start = cpu_clock()
    steps = 0
    for i in range(n_steps):
        steps += 1
        if step(i):
            break
    rate = steps / (cpu_clock() - start)
    env.reset()
    return rate, block_rates(step, n_steps, block=block)


def build_tensortrade_env(market: MarketData, window: int = WINDOW) -> Any:
    """tensortrade's default env on the same prices and features."""
    from tt_platform.env.tensortrade_compat import import_tensortrade

    import_tensortrade()
    from tensortrade.env import default
    from tensortrade.env.default.actions import ManagedRiskOrders
    from tensortrade.env.default.rewards import RiskAdjustedReturns
    from tensortrade.feed.core import DataFeed, Stream
    from tensortrade.oms.exchanges import Exchange, ExchangeOptions
    from tensortrade.oms.instruments import Instrument
    from tensortrade.oms.services.execution.simulated import execute_order
    from tensortrade.oms.wallets import Portfolio, Wallet

    # tensortrade logs every cancelled order on the root logger.
    logging.getLogger().setLevel(logging.ERROR)
    usd = Instrument("USD", 2, "U.S. Dollar")
    instruments = [Instrument(s, 8, s) for s in market.symbols]
    exchange = Exchange("sim", service=execute_order, options=ExchangeOptions(commission=0.0003))(
        *[Stream.source(market.close[:, i].tolist(), dtype="float").rename(f"USD-{s}")
          for i, s in enumerate(market.symbols)])
    portfolio = Portfolio(usd, [Wallet(exchange, 100_000 * usd)]
                          + [Wallet(exchange, 0 * inst) for inst in instruments])
    values = market.masked_features()
    feed = DataFeed([
        Stream.source(values[:, i, j].astype(float).tolist(), dtype="float").rename(f"{s}:{name}")
        for i, s in enumerate(market.symbols) for j, name in enumerate(market.feature_names)])
    return default.create(portfolio=portfolio, action_scheme=ManagedRiskOrders(),
                          reward_scheme=RiskAdjustedReturns(), feed=feed, window_size=window)


def run_tensortrade(market: MarketData, n_steps: int, seed: int = 0) -> tuple[float, list[float]]:
    env = build_tensortrade_env(market)
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, env.action_space.n, n_steps)
    env.reset()

    def step(i: int) -> bool:
        _, _, done, _ = env.step(int(actions[i]))
        return bool(done)

    start = cpu_clock()
    rates = block_rates(step, n_steps, block=max(1, min(BLOCK, n_steps // 3)))
    return n_steps / (cpu_clock() - start), rates


class PandasStockTradingEnv:
    """Baseline in the style of FinRL's ``StockTradingEnv``: the market is a long DataFrame
    indexed by day, each step looks the day (and the observation window) up with ``.loc`` and
    trades stock by stock in Python; asset history grows in a list."""

    def __init__(self, market: MarketData, window: int = WINDOW, hmax: int = 100,
                 initial_amount: float = 100_000.0, cost_pct: float = 0.0003) -> None:
        t, n = market.close.shape
        values = market.masked_features()
        frame = pd.DataFrame({
            "day": np.repeat(np.arange(t), n),
            "tic": np.tile(market.symbols, t),
            "close": market.close.reshape(-1),
        })
        self.tech_cols = list(market.feature_names)
        for j, name in enumerate(self.tech_cols):
            frame[name] = values[:, :, j].reshape(-1)
        self.df = frame.set_index("day")
        self.stock_dim = n
        self.window = window
        self.hmax = hmax
        self.initial_amount = initial_amount
        self.cost_pct = cost_pct
        self.last_day = t - 1

    def reset(self) -> np.ndarray:
        self.day = self.window - 1
        self.data = self.df.loc[self.day, :]
        self.cash = self.initial_amount
        self.holdings = [0.0] * self.stock_dim
        self.asset_memory = [self.initial_amount]
        self.rewards_memory: list[float] = []
        return self._state()

    def _state(self) -> np.ndarray:
        window = self.df.loc[self.day - self.window + 1:self.day, self.tech_cols]
        return np.array([self.cash] + self.data.close.values.tolist() + list(self.holdings)
                        + window.to_numpy().ravel().tolist(), dtype=np.float32)

    def _sell(self, index: int, action: int) -> int:
        price = self.data.close.values[index]
        sell = min(abs(action), int(self.holdings[index]))
        self.cash += price * sell * (1 - self.cost_pct)
        self.holdings[index] -= sell
        return sell

    def _buy(self, index: int, action: int) -> int:
        price = self.data.close.values[index]
        buy = min(action, int(self.cash // (price * (1 + self.cost_pct))))
        self.cash -= price * buy * (1 + self.cost_pct)
        self.holdings[index] += buy
        return buy

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, float, bool, dict]:
        actions = (np.asarray(actions) * self.hmax).astype(int)
        begin = self.cash + float(np.sum(self.data.close.values * np.array(self.holdings)))
        order = np.argsort(actions)
        for index in order[: int((actions < 0).sum())]:
            self._sell(int(index), int(actions[index]))
        for index in order[::-1][: int((actions > 0).sum())]:
            self._buy(int(index), int(actions[index]))
        self.day += 1
        self.data = self.df.loc[self.day, :]
        state = self._state()
        end = self.cash + float(np.sum(self.data.close.values * np.array(self.holdings)))
        self.asset_memory.append(end)
        reward = end - begin
        self.rewards_memory.append(reward)
        return state, reward, self.day >= self.last_day, {}


def run_pandas(market: MarketData, n_steps: int, seed: int = 0) -> float:
    env = PandasStockTradingEnv(market)
    actions = np.random.default_rng(seed).uniform(-1, 1, (n_steps, market.n_symbols))
    env.reset()
    start = cpu_clock()
    steps = 0
    for i in range(n_steps):
        steps += 1
        if env.step(actions[i])[2]:
            break
    return steps / (cpu_clock() - start)


# ----------------------------------------------------------------------------- PPO
class NullEnv(gymnasium.Env):
    """Same spaces and episode length as the trading env, no work per step.

    It returns one fixed random observation: with an all-zero observation PPO's update ran about
    20 % slower here, which would flatter our env in the comparison.
    """

    def __init__(self, observation_space: gymnasium.spaces.Box,
                 action_space: gymnasium.spaces.Space, episode_length: int) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        self.episode_length = episode_length
        rng = np.random.default_rng(0)
        low = np.maximum(observation_space.low, -1.0)
        high = np.minimum(observation_space.high, 1.0)
        self._obs = rng.uniform(low, high).astype(observation_space.dtype)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        return self._obs, {}

    def step(self, action):
        self._t += 1
        return self._obs, 0.0, False, self._t >= self.episode_length, {}


def ppo_rate(make: Callable[[], gymnasium.Env], timesteps: int, n_envs: int, n_steps: int,
             n_epochs: int) -> float:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(1)
    vec = DummyVecEnv([make for _ in range(n_envs)])
    model = PPO("MlpPolicy", vec, n_steps=n_steps, batch_size=64, n_epochs=n_epochs, seed=0,
                device="cpu", verbose=0)
    start = cpu_clock()
    model.learn(total_timesteps=timesteps)
    return model.num_timesteps / (cpu_clock() - start)


def run_ppo(market: MarketData, timesteps: int, repeats: int, n_epochs: int,
            episode_length: int = 252) -> tuple[float, float]:
    config = bench_config(episode_length=episode_length, random_start=True)
    probe = make_env(market, config)
    spaces = (probe.observation_space, probe.action_space)

    def ours() -> gymnasium.Env:
        return make_env(market, config, seed=0)

    def null() -> gymnasium.Env:
        return NullEnv(*spaces, episode_length=episode_length)

    best_ours = best_null = 0.0
    for _ in range(repeats):  # interleaved, best of each, to damp CPU contention
        best_null = max(best_null, ppo_rate(null, timesteps, 4, 256, n_epochs))
        best_ours = max(best_ours, ppo_rate(ours, timesteps, 4, 256, n_epochs))
    return best_ours, best_null


# ----------------------------------------------------------------------------- memory
def env_memory_mb(market: MarketData) -> float:
    """Peak traced allocation while building the env and stepping it (market excluded)."""
    gc.collect()
    tracemalloc.start()
    try:
        env = make_env(market, bench_config())
        env.reset()
        for _ in range(50):
            env.step(env.action_space.sample())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


# ----------------------------------------------------------------------------- entry point
def run(quick: bool = False) -> list[BenchResult]:
    n_bars = 500 if quick else 2520
    block = 100 if quick else BLOCK
    market = bench_market(30, 8, n_bars)
    episode = market.n_steps - WINDOW

    our_rate, our_blocks = run_ours(market, episode, block=block)
    if not quick:
        # best per block over repeats: blocks are compared for drift, not for noise
        for seed in (1, 2):
            rate, again = run_ours(market, episode, seed=seed, block=block)
            our_blocks = [max(a, b) for a, b in zip(our_blocks, again, strict=True)]
            our_rate = max(our_rate, rate)
    tt_rate, tt_blocks = run_tensortrade(market, 150 if quick else 1200)
    pandas_rate = run_pandas(market, 100 if quick else 1000)
    our_drift = our_blocks[0] / our_blocks[-1]
    tt_drift = tt_blocks[0] / tt_blocks[-1]

    ppo_ours, ppo_null = run_ppo(market, timesteps=512 if quick else 3072,
                                 repeats=1 if quick else 2, n_epochs=1 if quick else 10)

    results = [
        BenchResult("env steps/s vs tensortrade default (30x8, window 30)", our_rate, "steps/s",
                    target=">= 50x tensortrade", baseline=tt_rate, ratio=our_rate / tt_rate,
                    passed=our_rate / tt_rate >= 50),
        BenchResult("env steps/s vs FinRL-style pandas env", our_rate, "steps/s",
                    target="context (no target)", baseline=pandas_rate,
                    ratio=our_rate / pandas_rate),
        BenchResult(f"env rate first/last {block}-step block (ours; baseline tensortrade)",
                    our_drift, "x", target="<= 1.25 (flat)", baseline=tt_drift,
                    ratio=tt_drift / our_drift, passed=our_drift <= 1.25),
        BenchResult("PPO env-steps/s on our env vs null env", ppo_ours, "steps/s",
                    target=">= 0.90x null env", baseline=ppo_null, ratio=ppo_ours / ppo_null,
                    passed=ppo_ours / ppo_null >= 0.90),
    ]
    grid = [(10, 8)] if quick else [(10, 8), (10, 32), (30, 8), (30, 32), (100, 8), (100, 32)]
    grid_bars = 300 if quick else 1260
    grid_steps = 200 if quick else 1000
    for n, f in grid:
        m = bench_market(n, f, grid_bars)
        rate, _ = run_ours(m, min(grid_steps, m.n_steps - WINDOW))
        results.append(BenchResult(f"env steps/s N={n} F={f}", rate, "steps/s"))
        results.append(BenchResult(f"env memory N={n} F={f} ({m.n_steps} bars)",
                                   env_memory_mb(m), "MB"))
    return results


if __name__ == "__main__":
    import sys

    from tt_platform.bench.harness import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
