import numpy as np
import pytest

from tt_platform.env import EnvConfig, make_env, rollout
from tt_platform_tests.env.markets import random_market


def noisy_policy(seed):
    rng = np.random.default_rng(seed)
    return lambda obs: rng.uniform(-1, 1, 3)


def test_rollout_records_a_consistent_equity_curve():
    market = random_market(t=90)
    env = make_env(market, EnvConfig(window_size=25, long_only=False, commission_bps=2,
                                     slippage_bps=3, per_symbol_cap=0.6))
    record = rollout(env, noisy_policy(1))
    assert record.n_steps == 90 - 25
    curve = record.equity_curve()
    assert curve.iloc[0] == 100_000.0 and curve.index[0] == market.timestamps[24]
    assert list(curve.index[1:]) == list(market.timestamps[25:])
    # cash + positions valued at the mark rebuild equity at every step
    positions_value = record.weights * record.equity[:, None]
    np.testing.assert_allclose(record.cash + positions_value.sum(axis=1), record.equity)
    np.testing.assert_allclose(record.gross_exposure, np.abs(record.weights).sum(axis=1))
    assert record.actions.shape == (65, 3) and record.target_weights.shape == (65, 3)
    assert set(record.reward_components) == {"log_return", "sharpe_term", "drawdown_penalty",
                                             "turnover_penalty"}
    np.testing.assert_allclose(np.exp(np.cumsum(record.reward_components["log_return"])),
                               record.equity / 100_000.0)
    assert record.cost.sum() > 0
    returns = record.returns()
    assert returns[0] == pytest.approx(record.equity[0] / 100_000 - 1)


def test_same_seed_same_episode():
    market = random_market(t=150)
    config = EnvConfig(window_size=10, episode_length=30, random_start=True)
    a = rollout(make_env(market, config), noisy_policy(7), seed=11)
    b = rollout(make_env(market, config), noisy_policy(7), seed=11)
    c = rollout(make_env(market, config), noisy_policy(7), seed=12)
    np.testing.assert_array_equal(a.equity, b.equity)
    np.testing.assert_array_equal(a.t_index, b.t_index)
    assert a.t_index[0] != c.t_index[0] or not np.array_equal(a.equity, c.equity)


def test_rollout_refuses_foreign_envs():
    import gymnasium

    with pytest.raises(TypeError, match="tt_platform trading env"):
        rollout(gymnasium.make("CartPole-v1"), lambda obs: 0)
