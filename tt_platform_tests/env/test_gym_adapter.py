import warnings

import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env

from tt_platform.env import EnvConfig, make_env, rollout
from tt_platform.env.state import EpisodeOver
from tt_platform_tests.env.markets import price_market, random_market

INFO_KEYS = {"equity", "cash", "weights", "turnover", "cost", "drawdown", "t", "step"}


@pytest.mark.parametrize("config", [
    EnvConfig(window_size=5, observation="flat"),
    EnvConfig(window_size=5, observation="tensor", long_only=False),
    EnvConfig(window_size=5, action_scheme="discrete", long_only=False),
    EnvConfig(window_size=5, fill_at="open", episode_length=20, random_start=True),
])
def test_sb3_check_env_passes(config):
    market = random_market(t=60, n=3)
    market.open = market.close * 1.001
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SB3's image-space hints for 3-D float boxes
        check_env(make_env(market, config, seed=0), warn=False)


def test_step_info_has_the_evaluation_fields():
    env = make_env(random_market(), EnvConfig(window_size=5))
    obs, info = env.reset()
    assert INFO_KEYS <= set(info)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert INFO_KEYS <= set(info)
    assert isinstance(info["weights"], np.ndarray) and info["weights"].shape == (3,)
    assert info["t"] == 5 and info["step"] == 1
    assert env.observation_space.contains(obs)


def test_truncated_at_end_of_data_not_terminated():
    env = make_env(random_market(t=30), EnvConfig(window_size=5))
    env.reset()
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(np.zeros(3))
        steps += 1
    assert (terminated, truncated) == (False, True)
    assert steps == 30 - 5 and info["t"] == 29
    with pytest.raises(EpisodeOver):
        env.step(np.zeros(3))


def test_episode_length_truncates():
    env = make_env(random_market(t=60), EnvConfig(window_size=5, episode_length=7))
    record = rollout(env, lambda obs: np.zeros(3))
    assert record.n_steps == 7 and record.truncated and not record.terminated


def test_drawdown_stop_terminates():
    close = np.full((40, 1), 100.0)
    close[21:, 0] = 50.0   # -50 % crash after bar 20
    config = EnvConfig(window_size=3, vol_lookback=3, risk_target=1.0, vol_floor=1.0,
                       per_symbol_cap=1.0, max_drawdown=0.3)
    record = rollout(make_env(price_market(close, f=1), config), lambda obs: np.ones(1),
                     options={"start_index": 15})
    assert record.terminated and not record.truncated
    assert record.stop_reason == "max_drawdown"
    assert record.timestamps[-1] == price_market(close, f=1).timestamps[21]
    assert record.drawdown[-1] >= 0.3


def test_stopper_warmup_and_equity_floor():
    close = np.full((40, 1), 100.0)
    close[21:, 0] = 60.0
    base = dict(window_size=3, vol_lookback=3, risk_target=1.0, vol_floor=1.0, per_symbol_cap=1.0,
                max_drawdown=0.3)
    waited = rollout(make_env(price_market(close, f=1), EnvConfig(**base, stopper_warmup_steps=50,
                                                                  equity_floor=0.0)),
                     lambda obs: np.ones(1), options={"start_index": 15})
    assert waited.truncated and not waited.terminated
    floored = rollout(make_env(price_market(close, f=1), EnvConfig(**base, stopper_warmup_steps=50,
                                                                   equity_floor=0.7)),
                      lambda obs: np.ones(1), options={"start_index": 15})
    assert floored.terminated and floored.stop_reason == "equity_floor"


def test_random_start_is_seeded_and_options_pin_the_window():
    market = random_market(t=200)
    config = EnvConfig(window_size=5, episode_length=10, random_start=True)
    starts_a = [make_env(market, config, seed=s).reset()[1]["t"] for s in range(5)]
    starts_b = [make_env(market, config, seed=s).reset()[1]["t"] for s in range(5)]
    assert starts_a == starts_b and len(set(starts_a)) > 1
    env = make_env(market, config, seed=0)
    _, info = env.reset(options={"start": market.timestamps[50]})
    assert info["t"] == 50
    record = rollout(env, lambda obs: np.zeros(3),
                     options={"start_index": 20, "end": market.timestamps[24]})
    assert list(record.t_index) == [21, 22, 23, 24]
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"begin": 3})
    with pytest.raises(ValueError, match="does not fit"):
        env.reset(options={"start_index": 199})


def test_too_short_market_is_refused():
    with pytest.raises(ValueError, match="at least 31"):
        make_env(random_market(t=30), EnvConfig(window_size=30))


def test_fill_at_open_needs_open_prices():
    with pytest.raises(ValueError, match="open"):
        make_env(random_market(), EnvConfig(window_size=5, fill_at="open"))
