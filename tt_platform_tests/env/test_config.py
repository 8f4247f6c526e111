import math

import numpy as np
import pytest
from pydantic import ValidationError

from tt_platform.config import RunConfig, load_run_config
from tt_platform.env import EnvConfig, make_env
from tt_platform_tests.env.markets import random_market


def test_defaults_are_safe():
    config = EnvConfig()
    assert config.long_only and config.leverage_cap == 1.0
    assert config.per_symbol_cap <= config.leverage_cap
    assert config.observation == "flat" and config.action_scheme == "vol_target"


@pytest.mark.parametrize("kwargs, text", [
    ({"per_symbol_cap": 2.0, "leverage_cap": 1.0}, "per_symbol_cap 2.0 exceeds leverage_cap"),
    ({"window_size": 0}, "window_size"),
    ({"vol_floor": 0}, "vol_floor"),
    ({"action_scheme": "market"}, "action_scheme"),
    ({"risk_targt": 0.1}, "risk_targt"),  # typos are errors, not silently ignored
])
def test_invalid_configs_name_the_key(kwargs, text):
    with pytest.raises(ValidationError, match=text):
        EnvConfig(**kwargs)


def test_whole_period_runs_from_the_first_bar_to_the_end():
    config = EnvConfig(window_size=5, episode_length=30, random_start=True, max_drawdown=0.2)
    whole = config.whole_period()
    assert (whole.episode_length, whole.random_start, whole.max_drawdown) == (None, False, 0.2)
    unstopped = config.whole_period(stops=False)
    assert (unstopped.max_drawdown, unstopped.equity_floor) == (1.0, 0.0)
    assert unstopped.window_size == 5


# Every env setting, set in YAML to a value other than its default, and where the built env
# shows it. A new EnvConfig field must be added here, or the coverage test below fails.
ENV_YAML = """
env:
  window_size: 7
  episode_length: 15
  random_start: false
  initial_cash: 25000
  commission_bps: 3.5
  slippage_bps: 4.5
  min_commission: 1.25
  min_order_value: 50
  fill_at: open
  long_only: false
  leverage_cap: 1.5
  per_symbol_cap: 0.4
  risk_target: 0.25
  vol_floor: 0.07
  vol_lookback: 9
  action_scheme: vol_target
  observation: tensor
  include_positions: false
  obs_clip: 4.0
  reward_vol_halflife: 11.0
  reward_vol_floor: 0.002
  drawdown_penalty: 2.5
  turnover_penalty: 0.3
  reward_scale: 3.0
  max_drawdown: 0.2
  equity_floor: 0.25
  stopper_warmup_steps: 6
  periods_per_year: 260
"""


def _action(env):
    return env.trading_env.action_scheme


def _reward(env):
    return env.trading_env.reward_scheme


def _stopper(env):
    return env.trading_env.stopper


def _observer(env):
    return env.trading_env.observer


def _expected_scale(env, config):
    vol = env.market.annualised_volatility(config.vol_lookback)
    vol = vol * math.sqrt(config.periods_per_year / env.market.periods_per_year)
    with np.errstate(invalid="ignore"):
        scale = config.risk_target / np.maximum(vol, config.vol_floor) / env.market.n_symbols
    return np.where(np.isfinite(scale), scale, 0.0)


def _episode_steps(env):
    env.reset(seed=0)
    return env.state.stop - env.state.start


def _starts(env):
    starts = set()
    for seed in range(5):
        env.reset(seed=seed)
        starts.add(env.state.start)
    return starts


OBSERVED = {
    "window_size": lambda env, c: _observer(env).window == c.window_size,
    "episode_length": lambda env, c: _episode_steps(env) == c.episode_length,
    "random_start": lambda env, c: _starts(env) == {env.state.first_start},
    "initial_cash": lambda env, c: env.state.portfolio.initial_cash == c.initial_cash,
    "commission_bps": lambda env, c: env.state.core.cost_model.commission_bps == c.commission_bps,
    "slippage_bps": lambda env, c: env.state.core.cost_model.slippage_bps == c.slippage_bps,
    "min_commission": lambda env, c: env.state.core.cost_model.min_commission == c.min_commission,
    "min_order_value": lambda env, c: env.state.core.min_order_value == c.min_order_value,
    "fill_at": lambda env, c: env.state.core.fill_at == c.fill_at,
    "long_only": lambda env, c: env.state.gate.limits.long_only == c.long_only,
    "leverage_cap": lambda env, c: env.state.gate.limits.leverage_cap == c.leverage_cap,
    "per_symbol_cap": lambda env, c: env.state.gate.limits.per_symbol_cap == c.per_symbol_cap,
    "risk_target": lambda env, c: np.allclose(_action(env).scale, _expected_scale(env, c)),
    "vol_floor": lambda env, c: np.allclose(_action(env).scale, _expected_scale(env, c)),
    "vol_lookback": lambda env, c: np.allclose(_action(env).scale, _expected_scale(env, c)),
    "action_scheme": lambda env, c: type(_action(env)).__name__ == "VolatilityTargetedAction",
    "observation": lambda env, c: env.observation_space.shape == (3, 3, 7),  # [symbols, features, window]
    "include_positions": lambda env, c: _observer(env).n_rows == 3,  # no weights row
    "obs_clip": lambda env, c: _observer(env).clip == c.obs_clip and env.observation_space.high.max() == 4.0,
    "reward_vol_halflife": lambda env, c: math.isclose(_reward(env).alpha, 1 - 0.5 ** (1 / c.reward_vol_halflife)),
    "reward_vol_floor": lambda env, c: _reward(env).vol_floor == c.reward_vol_floor,
    "drawdown_penalty": lambda env, c: _reward(env).drawdown_penalty == c.drawdown_penalty,
    "turnover_penalty": lambda env, c: _reward(env).turnover_penalty == c.turnover_penalty,
    "reward_scale": lambda env, c: _reward(env).scale == c.reward_scale,
    "max_drawdown": lambda env, c: _stopper(env).max_drawdown == c.max_drawdown,
    "equity_floor": lambda env, c: _stopper(env).floor_equity == c.equity_floor * c.initial_cash,
    "stopper_warmup_steps": lambda env, c: _stopper(env).warmup_steps == c.stopper_warmup_steps,
    "periods_per_year": lambda env, c: env.state.periods_per_year == c.periods_per_year,
}


def test_every_env_setting_is_observed_here():
    assert set(OBSERVED) == set(EnvConfig.model_fields)


def test_every_env_setting_in_yaml_reaches_the_built_env(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(ENV_YAML)
    config = load_run_config(path).env
    defaults = EnvConfig()
    not_set = [k for k in EnvConfig.model_fields if getattr(config, k) == getattr(defaults, k)]
    assert not_set == ["action_scheme"]  # the non-default one is checked below
    market = random_market(t=80, n=3, f=3, open=random_market(t=80, n=3, f=3, seed=5).close)
    for key, observed in OBSERVED.items():
        env = make_env(market, config)
        assert observed(env, config), key


def test_discrete_actions_from_yaml(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("env:\n  action_scheme: discrete\n  long_only: false\n  leverage_cap: 0.9\n  per_symbol_cap: 0.3\n")
    env = make_env(random_market(t=60), load_run_config(path).env)
    assert type(env.trading_env.action_scheme).__name__ == "SimpleDiscreteAction"
    assert env.action_space.nvec.tolist() == [3, 3, 3]  # flat, long, short per symbol
    assert env.trading_env.action_scheme.unit == pytest.approx(0.9 / 3)


def test_run_config_env_section_is_what_make_env_takes():
    config = RunConfig().with_overrides(**{"env.window_size": 6, "env.drawdown_penalty": 0.0})
    env = make_env(random_market(t=60), config.env)
    assert env.config is config.env
    assert env.trading_env.observer.window == 6 and env.trading_env.reward_scheme.drawdown_penalty == 0.0
