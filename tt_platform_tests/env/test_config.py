import pytest
from pydantic import ValidationError

from tt_platform.env import EnvConfig


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
