"""Training throughput: PPO env-steps/s with the batched VecEnv and the shared-symbol extractor.

On the env bench's market (``bench_market``: 30 symbols x 8 features, window 30, so 30 x 9 x 30 =
8,100 observed values with the positions row) PPO spends its time in the policy network, not in
the env. This bench measures, in one process and interleaved:

* (a) today's setup: flat ``MlpPolicy`` on ``DummyVecEnv``, 4 envs x 256 steps (the env bench's
  PPO row; the issue's 529 steps/s);
* (b) the faster settings: ``vec_env: batched``, ``policy_extractor: shared_symbol``,
  ``fused_optimizer: true``, 32 envs x 32 steps (copies are cheap in the batched env, and more
  of them amortise SB3's per-step policy call), minibatch 256 (160 gradient steps per rollout of
  tiny matrices are bound by torch's per-op overhead; 40 larger ones do the same epochs);
* (c) (b)'s policy and settings on a null env with the same spaces (``bench.env.NullEnv`` in a
  ``DummyVecEnv``, as in the env bench), and the same pair at minibatch 64 (the larger minibatch
  makes training cheaper, so the env's share of each step grows);
* context: the flat policy on ``DummyVecEnv`` at (b)'s 32 x 32 (what the rollout shape alone
  gives), (b) at minibatch 64 (what the minibatch alone gives), and (b) at 16 envs x 64 steps.

All use the trainer's own ``make_vec_env`` / ``build_model`` and 1,024 steps per rollout, 10
epochs, net_arch [64, 64]; minibatch 64 except (b) and (c). Rates are CPU time of this process
(``time.process_time``) in ``model.learn``, best of the interleaved repeats, torch on one thread.

Validation: whether the faster policy learns at least as well. A market with a planted per-symbol
signal (feature 0 at bar t predicts each symbol's return to t+1; the other features are lagged
returns and noise) is split 70/30 in time; for 3 seeds, flat (at 32 x 32) and fast (b) train on
the first part with ``train_policy`` for the same number of steps, then a deterministic rollout over the
held-out part gives the Sharpe ratio (``training.metrics.record_metrics``). On the plain bench
market there is nothing to learn, so a comparison there only measures noise.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass

import gymnasium
import numpy as np
import pandas as pd

from tt_platform.bench.env import NullEnv, bench_config, bench_market
from tt_platform.bench.harness import BenchResult
from tt_platform.env import EnvConfig, MarketData, make_env, policy_from_model, rollout
from tt_platform.training import TrainConfig, train_policy
from tt_platform.training.checkpoint import algo_class, load_model
from tt_platform.training.metrics import record_metrics
from tt_platform.training.trainer import (
    ObservationLayout,
    algo_kwargs,
    build_model,
    make_vec_env,
    torch_threads,
)

cpu_clock = time.process_time
EPISODE_LENGTH = 252
SEEDS = (1, 2, 3)

# (a): the env bench's PPO setup, i.e. today's defaults scaled to 4 envs
TODAY = TrainConfig(n_envs=4, n_steps=256, batch_size=64, n_epochs=10, net_arch=[64, 64], seed=0)
# the same 1,024 steps per rollout as TODAY, in 32 env copies
FLAT32 = TODAY.model_copy(update={"n_envs": 32, "n_steps": 32})
# minibatch 256: a quarter of the gradient steps per rollout; small minibatches cost per-op
# overhead, not arithmetic, once the policy is small (measured: no worse held-out, see validation)
FAST_SETTINGS = {"vec_env": "batched", "policy_extractor": "shared_symbol", "fused_optimizer": True,
                 "n_envs": 32, "n_steps": 32, "batch_size": 256}
FAST = TODAY.model_copy(update=FAST_SETTINGS)
FAST_B64 = FAST.model_copy(update={"batch_size": 64})
FAST16 = FAST.model_copy(update={"n_envs": 16, "n_steps": 64})


def _learn_rate(model: object, timesteps: int) -> float:
    start = cpu_clock()
    model.learn(total_timesteps=timesteps)
    return model.num_timesteps / (cpu_clock() - start)


def ppo_rate(market: MarketData, env_config: EnvConfig, train_config: TrainConfig,
             timesteps: int) -> float:
    """Env-steps/s of ``model.learn`` with the trainer's vec env and model."""
    model = build_model(train_config, make_vec_env(market, env_config, train_config))
    return _learn_rate(model, timesteps)


def null_ppo_rate(market: MarketData, env_config: EnvConfig, train_config: TrainConfig,
                  timesteps: int) -> float:
    """The same model and settings on ``NullEnv`` copies with the trading env's spaces."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    probe = make_env(market, env_config)
    spaces = (probe.observation_space, probe.action_space)

    def null() -> gymnasium.Env:
        return NullEnv(*spaces, episode_length=EPISODE_LENGTH)

    vec = DummyVecEnv([null for _ in range(train_config.n_envs)])
    model = algo_class(train_config.algo)(
        train_config.policy, vec, seed=train_config.seed, device=train_config.device, verbose=0,
        **algo_kwargs(train_config, ObservationLayout.of(market, env_config)))
    return _learn_rate(model, timesteps)


@dataclass
class Throughput:
    today: float = 0.0
    fast: float = 0.0
    null: float = 0.0
    flat32: float = 0.0
    fast16: float = 0.0
    fast_b64: float = 0.0
    null_b64: float = 0.0


def measure_throughput(market: MarketData, timesteps: int, repeats: int) -> Throughput:
    """Best of ``repeats`` interleaved runs of each setup, to damp CPU contention (the flat
    context row runs once)."""
    env_config = bench_config(episode_length=EPISODE_LENGTH, random_start=True)
    best = Throughput()
    for repeat in range(repeats):
        best.today = max(best.today, ppo_rate(market, env_config, TODAY, timesteps))
        best.fast = max(best.fast, ppo_rate(market, env_config, FAST, timesteps))
        best.null = max(best.null, null_ppo_rate(market, env_config, FAST, timesteps))
        best.fast16 = max(best.fast16, ppo_rate(market, env_config, FAST16, timesteps))
        if repeat == 0:
            best.flat32 = ppo_rate(market, env_config, FLAT32, timesteps)
            best.fast_b64 = ppo_rate(market, env_config, FAST_B64, timesteps)
            best.null_b64 = null_ppo_rate(market, env_config, FAST_B64, timesteps)
    return best


# ----------------------------------------------------------------------------- validation
def signal_market(n_symbols: int = 30, n_features: int = 8, n_bars: int = 1500,
                  strength: float = 0.5, vol: float = 0.01, seed: int = 11) -> MarketData:
    """Returns r_{t+1} = vol x (strength x s_t + noise) with s_t observed as feature 0 at t;
    features 1-3 are z-scored 1/5/20-bar log returns, the rest noise."""
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n_bars, n_symbols))
    log_ret = np.zeros((n_bars, n_symbols))
    log_ret[1:] = vol * (strength * signal[:-1] + rng.standard_normal((n_bars - 1, n_symbols)))
    close = 100.0 * np.exp(np.cumsum(log_ret, axis=0))
    features = rng.standard_normal((n_bars, n_symbols, n_features)).astype(np.float32)
    features[:, :, 0] = signal
    for k, lag in enumerate((1, 5, 20), start=1):
        if k < n_features:
            change = np.full_like(close, np.nan)
            change[lag:] = np.log(close[lag:] / close[:-lag])
            features[:, :, k] = change / np.nanstd(change)
    timestamps = pd.date_range("2010-01-01", periods=n_bars, freq="B", tz="UTC")
    return MarketData(timestamps=timestamps, symbols=[f"S{i:03d}" for i in range(n_symbols)],
                      close=close, features=features, feature_mask=np.isfinite(features),
                      feature_names=[f"f{k}" for k in range(n_features)])


def validation_sharpe(market: MarketData, env_config: EnvConfig, train_config: TrainConfig,
                      train_fraction: float = 0.7) -> tuple[float, float]:
    """(held-out Sharpe, train seconds) of ``train_policy`` on the first ``train_fraction``."""
    cut = int(market.n_steps * train_fraction)
    train_part = market.take(slice(0, cut))
    held_out = market.take(slice(cut - env_config.window_size, market.n_steps))
    with tempfile.TemporaryDirectory() as folder:
        result = train_policy(train_part, env_config, train_config, checkpoint_dir=folder)
        model = load_model(result.model_path)
    record = rollout(make_env(held_out, env_config.whole_period(stops=False)),
                     policy_from_model(model, deterministic=True))
    sharpe = record_metrics(record)["sharpe"]
    return (float("nan") if sharpe is None else float(sharpe)), result.train_seconds


def measure_validation(timesteps: int, seeds: tuple[int, ...], n_bars: int
                       ) -> dict[str, list[float]]:
    market = signal_market(n_bars=n_bars)
    env_config = bench_config(episode_length=EPISODE_LENGTH, random_start=True)
    # no periodic checkpoints and no in-sample rollout: only the held-out rollout counts
    runtime = {"total_timesteps": timesteps, "checkpoint_every": timesteps, "eval_episode": False}
    sharpes: dict[str, list[float]] = {"flat": [], "fast": []}
    for seed in seeds:
        for name, config in (("flat", FLAT32), ("fast", FAST)):
            sharpe, _ = validation_sharpe(market, env_config,
                                          config.model_copy(update=runtime | {"seed": seed}))
            sharpes[name].append(sharpe)
    return sharpes


# ----------------------------------------------------------------------------- entry point
def run(quick: bool = False) -> list[BenchResult]:
    with torch_threads(1):
        market = bench_market(30, 8, 600 if quick else 2520)
        rates = measure_throughput(market, timesteps=1024 if quick else 3072,
                                   repeats=1 if quick else 3)
        sharpes = measure_validation(timesteps=1024 if quick else 16384,
                                     seeds=SEEDS[:1] if quick else SEEDS,
                                     n_bars=300 if quick else 1500)
    fast_vs_today = rates.fast / rates.today
    fast_vs_null = rates.fast / rates.null
    flat_mean, fast_mean = float(np.mean(sharpes["flat"])), float(np.mean(sharpes["fast"]))
    per_seed = ", ".join(f"{a:+.2f}/{b:+.2f}" for a, b in zip(sharpes["fast"], sharpes["flat"],
                                                               strict=True))
    return [
        BenchResult("PPO env-steps/s: batched + shared_symbol (32 x 32, minibatch 256) vs flat MLP + "
                    "DummyVecEnv (4 x 256, minibatch 64), 30x8, window 30", rates.fast, "steps/s", target=">= 3x flat",
                    baseline=rates.today, ratio=fast_vs_today, passed=fast_vs_today >= 3.0),
        BenchResult("PPO env-steps/s: batched + shared_symbol on our env vs null env",
                    rates.fast, "steps/s", target=">= 0.90x null env", baseline=rates.null,
                    ratio=fast_vs_null, passed=fast_vs_null >= 0.90),
        BenchResult("PPO env-steps/s: batched + shared_symbol at minibatch 64, our env vs null env",
                    rates.fast_b64, "steps/s", target=">= 0.90x null env", baseline=rates.null_b64,
                    ratio=rates.fast_b64 / rates.null_b64, passed=rates.fast_b64 / rates.null_b64 >= 0.90),
        BenchResult("PPO env-steps/s: flat MLP + DummyVecEnv at 32 envs x 32 (context)",
                    rates.flat32, "steps/s", target="context (no target)",
                    baseline=rates.today, ratio=rates.flat32 / rates.today),
        BenchResult("PPO env-steps/s: batched + shared_symbol at minibatch 64 (context)",
                    rates.fast_b64, "steps/s", target="context (no target)",
                    baseline=rates.today, ratio=rates.fast_b64 / rates.today),
        BenchResult("PPO env-steps/s: batched + shared_symbol at 16 envs x 64 (context)",
                    rates.fast16, "steps/s", target="context (no target)",
                    baseline=rates.today, ratio=rates.fast16 / rates.today),
        BenchResult(f"held-out Sharpe, mean of {len(sharpes['fast'])} seeds, shared_symbol vs "
                    f"flat (per seed fast/flat: {per_seed})", fast_mean, "sharpe",
                    target=">= flat", baseline=flat_mean,
                    passed=bool(fast_mean >= flat_mean)),
    ]


if __name__ == "__main__":
    import sys

    from tt_platform.bench.harness import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
