import math

import numpy as np
import pytest

from tt_platform.env import EnvConfig, MarketData, make_env
from tt_platform_tests.env.markets import price_market, random_market

NO_COSTS = dict(commission_bps=0.0, slippage_bps=0.0)


def scales(env):
    return env.unwrapped.trading_env.action_scheme.scale


def test_zero_volatility_falls_back_to_the_floor():
    close = np.full((40, 2), 100.0)
    close[:, 1] = 100.0 * np.exp(np.cumsum(np.r_[0, np.tile([0.02, -0.02], 20)[:39]]))
    env = make_env(price_market(close), EnvConfig(window_size=5, vol_lookback=5, vol_floor=0.10,
                                                  risk_target=0.15, per_symbol_cap=1.0))
    scale = scales(env)
    # flat series: vol 0 -> floor 0.10 -> 0.15 / 0.10 / 2 symbols
    assert scale[20, 0] == pytest.approx(0.15 / 0.10 / 2)
    assert np.isfinite(scale).all()
    env.reset(options={"start_index": 20})
    _, _, _, _, info = env.step(np.array([1.0, 0.0]))
    assert info["target_weights"][0] == pytest.approx(0.75)


def test_volatility_floor_binds_only_below_it():
    market = random_market(t=100, n=2, vol=0.02, seed=2)
    vol = market.annualised_volatility(20)
    low_floor = scales(make_env(market, EnvConfig(window_size=5, vol_floor=0.01)))
    high_floor = scales(make_env(market, EnvConfig(window_size=5, vol_floor=2.0)))
    np.testing.assert_allclose(low_floor[50], 0.15 / vol[50] / 2)
    np.testing.assert_allclose(high_floor[50], [0.15 / 2.0 / 2] * 2)


def test_missing_volatility_history_means_no_position():
    market = random_market(t=60, n=2)
    env = make_env(market, EnvConfig(window_size=3, vol_lookback=20))
    assert (scales(env)[:20] == 0).all()
    env.reset()
    _, _, _, _, info = env.step(np.ones(2))
    np.testing.assert_array_equal(info["target_weights"], [0.0, 0.0])


def test_multi_symbol_vector_maps_each_exposure_to_its_symbol():
    market = random_market(t=80, n=4, seed=4)
    env = make_env(market, EnvConfig(window_size=30, long_only=False, per_symbol_cap=1.0,
                                     leverage_cap=10.0, **NO_COSTS))
    env.reset()
    t = env.unwrapped.state.t
    action = np.array([1.0, -0.5, 0.0, 0.25])
    _, _, _, _, info = env.step(action)
    np.testing.assert_allclose(info["target_weights"], action * scales(env)[t])
    # exposures outside [-1, 1] are clipped, not amplified
    _, _, _, _, info = env.step(np.array([5.0, -5.0, 0.0, 0.0]))
    np.testing.assert_allclose(info["target_weights"][:2], np.array([1.0, -1.0]) * scales(env)[t + 1][:2])


def test_leverage_and_per_symbol_caps_clamp_the_vol_target():
    market = random_market(t=80, n=3, vol=0.001, seed=5)  # tiny vol -> huge raw weights
    env = make_env(market, EnvConfig(window_size=25, leverage_cap=1.0, per_symbol_cap=0.4,
                                     vol_floor=0.01, long_only=False))
    env.reset()
    _, _, _, _, info = env.step(np.array([1.0, 1.0, -1.0]))
    weights = info["target_weights"]
    assert np.abs(weights).sum() == pytest.approx(1.0)
    np.testing.assert_allclose(np.abs(weights), [1 / 3] * 3)
    assert info["risk_breaches"] == 2  # per-symbol cap, then leverage


def test_long_only_turns_short_exposure_into_flat():
    market = random_market(t=80, n=2, seed=6)
    env = make_env(market, EnvConfig(window_size=25, long_only=True))
    env.reset()
    _, _, _, _, info = env.step(np.array([-1.0, 0.5]))
    assert info["target_weights"][0] == 0.0
    assert info["target_weights"][1] > 0.0
    assert (info["weights"] >= 0).all()


def test_discrete_action_equal_weight_flat_long_short():
    market = random_market(t=60, n=4)
    env = make_env(market, EnvConfig(window_size=5, action_scheme="discrete", long_only=False,
                                     leverage_cap=1.0, per_symbol_cap=0.5))
    assert list(env.action_space.nvec) == [3, 3, 3, 3]
    env.reset()
    _, _, _, _, info = env.step(np.array([0, 1, 2, 1]))
    np.testing.assert_allclose(info["target_weights"], [0.0, 0.25, -0.25, 0.25])
    long_only = make_env(market, EnvConfig(window_size=5, action_scheme="discrete"))
    assert list(long_only.action_space.nvec) == [2, 2, 2, 2]
    with pytest.raises(ValueError, match="out of range"):
        long_only.reset()
        long_only.step(np.array([2, 0, 0, 0]))


def test_observation_window_ends_at_the_decision_bar_and_masks_nan():
    close = np.full((30, 2), 50.0)
    market = price_market(close, f=2)
    features = market.features.copy()
    features[12, 1, 0] = np.nan            # a NaN value
    mask = np.isfinite(features)
    mask[13, 0, 1] = False                 # a valid-looking value flagged invalid
    market = MarketData(market.timestamps, market.symbols, market.close, features, mask,
                        market.feature_names)
    env = make_env(market, EnvConfig(window_size=4, observation="tensor", obs_clip=100.0))
    obs, info = env.reset(options={"start_index": 13})
    assert obs.shape == (2, 3, 4)          # symbols, features + position row, window
    assert info["t"] == 13
    np.testing.assert_array_equal(obs[0, 0], [10, 11, 12, 13])   # bars 10..13, none after
    assert obs[1, 0, 2] == 0.0             # NaN at bar 12 is masked to 0
    assert obs[0, 1, 3] == 0.0             # mask False at bar 13 -> 0
    assert obs[1, 1, 3] == 13.0
    assert not np.isnan(obs).any()
    obs, *_ = env.step(np.zeros(2))
    np.testing.assert_array_equal(obs[0, 0], [11, 12, 13, 14])
    flat = make_env(market, EnvConfig(window_size=4, observation="flat", obs_clip=100.0))
    flat_obs, _ = flat.reset(options={"start_index": 13})
    np.testing.assert_array_equal(flat_obs, env.reset(options={"start_index": 13})[0].reshape(-1))


def test_positions_row_shows_current_weights():
    market = random_market(t=60, n=2, seed=8)
    env = make_env(market, EnvConfig(window_size=25, observation="tensor"))
    env.reset()
    obs, _, _, _, info = env.step(np.array([1.0, 1.0]))
    np.testing.assert_allclose(obs[:, -1, 0], info["weights"], rtol=1e-6)


def test_reward_is_net_log_return_over_vol_minus_penalties():
    close = np.full((20, 1), 100.0)
    close[11:, 0] = 90.0                                       # -10 % after bar 10
    config = EnvConfig(window_size=3, vol_lookback=3, vol_floor=1.0, risk_target=1.0,
                       per_symbol_cap=1.0, commission_bps=10, slippage_bps=0,
                       drawdown_penalty=2.0, turnover_penalty=0.5, reward_vol_floor=0.01,
                       max_drawdown=0.9)
    env = make_env(price_market(close, f=1), config)
    env.reset(options={"start_index": 10})
    _, reward, _, _, info = env.step(np.array([1.0]))
    # weight 1.0 at 100: commission 10 bps of 100,000, then the price falls 10 %
    shares = 100_000 / 100.0
    equity = 100_000 - 100.0 + shares * (90.0 - 100.0)
    assert info["equity"] == pytest.approx(equity)
    log_ret = math.log(equity / 100_000)
    drawdown = 1 - equity / 100_000
    expected = log_ret / 0.01 - 2.0 * drawdown - 0.5 * 1.0
    assert reward == pytest.approx(expected)
    parts = info["reward_components"]
    assert parts["turnover_penalty"] == pytest.approx(0.5)
    assert parts["drawdown_penalty"] == pytest.approx(2.0 * drawdown)
    # the standing 10 % drawdown is not charged again: only the commission's sliver of new
    # drawdown from re-sizing to weight 1.0 is
    dd_before = info["drawdown"]
    _, _, _, _, info = env.step(np.array([1.0]))
    new_dd = info["drawdown"] - dd_before
    assert 0 < new_dd < 1e-4
    assert info["reward_components"]["drawdown_penalty"] == pytest.approx(2.0 * new_dd)


def test_observation_clip():
    close = np.full((30, 1), 50.0)
    env = make_env(price_market(close, f=1), EnvConfig(window_size=4, observation="tensor"))
    obs, _ = env.reset(options={"start_index": 12})
    np.testing.assert_array_equal(obs[0, 0], [9, 10, 10, 10])
    assert env.observation_space.contains(obs)


def test_high_turnover_is_penalised_and_costs_are_paid():
    market = random_market(t=80, n=2, seed=9)
    config = EnvConfig(window_size=25, long_only=False, turnover_penalty=1.0, leverage_cap=2.0,
                       per_symbol_cap=1.0, risk_target=1.0, commission_bps=5, slippage_bps=5)
    env = make_env(market, config)
    env.reset()
    env.step(np.array([1.0, -1.0]))
    _, _, _, _, info = env.step(np.array([-1.0, 1.0]))  # full flip
    assert info["turnover"] > 1.5
    assert info["cost"] == pytest.approx(info["commission"] + info["slippage"])
    assert info["cost"] > 0
    assert info["reward_components"]["turnover_penalty"] == pytest.approx(info["turnover"])
