"""The env benchmark's baselines are real environments, and its quick mode runs."""

import numpy as np
import pytest

from tt_platform.bench.env import (
    NullEnv,
    PandasStockTradingEnv,
    bench_market,
    build_tensortrade_env,
    run,
)


def test_bench_market_shape_and_warmup_mask():
    market = bench_market(n_symbols=4, n_features=3, n_bars=120)
    assert market.close.shape == (120, 4) and market.features.shape == (120, 4, 3)
    assert not market.feature_mask[0, :, 0].any() and market.feature_mask[1, :, 0].all()
    assert not market.feature_mask[2, :, 2].any() and market.feature_mask[3, :, 2].all()


def test_pandas_baseline_keeps_its_books():
    market = bench_market(n_symbols=3, n_features=2, n_bars=80)
    env = PandasStockTradingEnv(market, window=10)
    state = env.reset()
    assert state.shape == (1 + 3 + 3 + 10 * 3 * 2,)
    _, reward, done, _ = env.step(np.array([1.0, 0.5, 0.0]))
    assert env.holdings == [100, 50, 0] and not done
    prices = market.close[10]
    spent = (100 * market.close[9, 0] + 50 * market.close[9, 1]) * 1.0003
    assert env.cash == pytest.approx(100_000 - spent)
    assert env.asset_memory[-1] == pytest.approx(env.cash + float(np.sum(prices * np.array([100, 50, 0]))))
    assert reward == pytest.approx(env.asset_memory[-1] - 100_000)


def test_null_env_and_tensortrade_env_step():
    market = bench_market(n_symbols=3, n_features=2, n_bars=60)
    env = build_tensortrade_env(market, window=5)
    obs = env.reset()
    assert obs.shape[0] == 5 and obs.shape[1] >= 3 * 2  # window x (features + portfolio columns)
    for action in (1, 0, 2):
        env.step(action)
    null = NullEnv(env.observation_space, env.action_space, episode_length=2)
    obs, _ = null.reset()
    assert env.observation_space.contains(obs) and obs.any()  # not all zeros
    assert null.step(0)[3] is False and null.step(0)[3] is True


def test_quick_run_reports_every_comparison():
    results = {r.name: r for r in run(quick=True)}
    speed = results["env steps/s vs tensortrade default (30x8, window 30)"]
    assert speed.value > 0 and speed.baseline > 0 and speed.ratio == speed.value / speed.baseline
    assert results["PPO env-steps/s on our env vs null env"].baseline > 0
    assert any(name.startswith("env memory N=10 F=8") for name in results)
