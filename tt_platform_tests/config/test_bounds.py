"""Limits on run-config values: each is defined once, on its model field (or the platform
setting for the universe size), and refuses a bad value from a file, overrides and Dagster."""

from pathlib import Path

import pytest

from tt_platform.config import EnvConfig, RunConfig, RunConfigError, TrainConfig, load_run_config
from tt_platform.config.training import MAX_TOTAL_TIMESTEPS, SEED_LIMIT
from tt_platform.data.watchlist import WatchlistError, load_watchlist, watchlist_from_symbols
from tt_platform.defs.platform.resources import RunConfigResource
from tt_platform.pipeline.universe import resolve_watchlist
from tt_platform.settings import DEFAULT_MAX_UNIVERSE, PlatformSettings, get_settings


@pytest.fixture
def max_universe(monkeypatch):
    """Set TT_MAX_UNIVERSE for one test (the settings are cached per process)."""

    def set_limit(value: int | None) -> None:
        if value is None:
            monkeypatch.delenv("TT_MAX_UNIVERSE", raising=False)
        else:
            monkeypatch.setenv("TT_MAX_UNIVERSE", str(value))
        get_settings.cache_clear()

    yield set_limit
    get_settings.cache_clear()


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def refused(**dotted) -> str:
    with pytest.raises(RunConfigError) as error:
        RunConfig().with_overrides(**dotted)
    return str(error.value)


# ----------------------------------------------------------------------------- training


def test_total_timesteps_is_at_most_a_billion(tmp_path):
    assert MAX_TOTAL_TIMESTEPS == 1_000_000_000
    assert RunConfig().with_overrides(**{"training.total_timesteps": MAX_TOTAL_TIMESTEPS}).training.total_timesteps == MAX_TOTAL_TIMESTEPS
    assert refused(**{"training.total_timesteps": MAX_TOTAL_TIMESTEPS + 1}) == (
        "command-line overrides: training.total_timesteps: Input should be less than or equal to 1000000000")
    with pytest.raises(RunConfigError, match=r"run.yaml: training.total_timesteps: Input should be less than or equal to 1000000000"):
        load_run_config(write(tmp_path, "training:\n  total_timesteps: 10000000000\n"))
    assert "training.total_timesteps: Input should be greater than or equal to 1" in refused(**{"training.total_timesteps": 0})


def test_seed_is_what_numpy_and_torch_accept():
    assert SEED_LIMIT == 2**32
    assert RunConfig().with_overrides(**{"training.seed": 0}).training.seed == 0
    assert TrainConfig(seed=2**32 - 2, n_envs=2).seed == 2**32 - 2
    assert "training.seed: Input should be greater than or equal to 0" in refused(**{"training.seed": -1})
    assert "training.seed: Input should be less than 4294967296" in refused(**{"training.seed": 2**32})
    assert "training.seed: Input should be a valid integer" in refused(**{"training.seed": "abc"})


def test_env_seeds_seed_to_seed_plus_n_envs_stay_below_two_to_the_32():
    message = refused(**{"training.seed": 2**32 - 1, "training.n_envs": 2})
    assert message == ("command-line overrides: training: seed 4294967295 with n_envs 2 seeds envs up to "
                       "4294967296, past the largest seed 4294967295 (2**32 - 1)")
    assert RunConfig().with_overrides(**{"training.seed": 2**32 - 1, "training.n_envs": 1}).training.seed == 2**32 - 1


def test_synthetic_data_seed_has_the_same_bounds():
    assert "data.seed: Input should be greater than or equal to 0" in refused(**{"data.seed": -1})
    assert "data.seed: Input should be less than 4294967296" in refused(**{"data.seed": 2**32})


def test_n_envs_is_between_1_and_64():
    assert "training.n_envs: Input should be greater than or equal to 1" in refused(**{"training.n_envs": 0})
    assert "training.n_envs: Input should be less than or equal to 64" in refused(**{"training.n_envs": 65})
    assert RunConfig().with_overrides(**{"training.n_envs": 64}).training.n_envs == 64


# ----------------------------------------------------------------------------- env


def test_initial_cash_is_positive_and_at_most_a_trillion(tmp_path):
    assert RunConfig().with_overrides(**{"env.initial_cash": 1e12}).env.initial_cash == 1e12
    assert refused(**{"env.initial_cash": 1e12 + 1}) == (
        "command-line overrides: env.initial_cash: Input should be less than or equal to 1000000000000")
    assert "env.initial_cash: Input should be greater than 0" in refused(**{"env.initial_cash": -5})
    with pytest.raises(ValueError, match="initial_cash"):
        EnvConfig(initial_cash=1e13)


@pytest.mark.parametrize("text, key", [
    ("env:\n  initial_cash: .inf\n", "env.initial_cash"),
    ("env:\n  initial_cash: .nan\n", "env.initial_cash"),
    ("training:\n  learning_rate: .inf\n", "training.learning_rate"),
    ("env:\n  obs_clip: .inf\n", "env.obs_clip"),
])
def test_infinite_and_nan_numbers_are_refused(tmp_path, text, key):
    with pytest.raises(RunConfigError) as error:
        load_run_config(write(tmp_path, text))
    assert f"run.yaml: {key}: Input should be a finite number" in str(error.value)


def test_window_size_is_between_1_and_1024():
    assert "env.window_size: Input should be greater than or equal to 1" in refused(**{"env.window_size": 0})
    assert "env.window_size: Input should be less than or equal to 1024" in refused(**{"env.window_size": 1025})


# ----------------------------------------------------------------------------- universe


def test_inline_universe_over_tt_max_universe_is_refused_naming_count_and_setting(tmp_path, max_universe):
    max_universe(None)
    assert DEFAULT_MAX_UNIVERSE == 2_000 and PlatformSettings(_env_file=None).max_universe == 2_000
    symbols = [f"S{i}" for i in range(2_001)]
    assert refused(**{"universe.symbols": symbols}) == (
        "command-line overrides: universe.symbols: 2,001 symbols exceed the universe limit of 2,000 "
        "(set TT_MAX_UNIVERSE to change it)")
    assert len(RunConfig().with_overrides(**{"universe.symbols": symbols[:2_000]}).universe.symbols) == 2_000
    # duplicates are one symbol of the universe
    assert len(RunConfig().with_overrides(**{"universe.symbols": symbols[:2_000] + ["s0", " S1"]}).universe.symbols) == 2_002

    max_universe(3)
    with pytest.raises(RunConfigError, match=r"run.yaml: universe.symbols: 4 symbols exceed the universe limit of 3 \(set TT_MAX_UNIVERSE"):
        load_run_config(write(tmp_path, "universe:\n  symbols: [A, B, C, D]\n"))
    with pytest.raises(RunConfigError, match="resources.run_config.config: universe.symbols: 4 symbols exceed"):
        RunConfigResource(universe={"symbols": ["A", "B", "C", "D"]}).load()
    assert load_run_config(write(tmp_path, "universe:\n  symbols: [A, B, C]\n")).universe.symbols == ["A", "B", "C"]


def test_watchlist_file_over_tt_max_universe_is_refused_naming_file_count_and_setting(tmp_path, max_universe):
    path = tmp_path / "wl.csv"
    path.write_text("symbol\nAAA\nBBB\nCCC\nbbb\n")
    max_universe(2)
    with pytest.raises(WatchlistError) as error:
        load_watchlist(path)
    assert str(error.value) == f"{path}: 3 symbols exceed the universe limit of 2 (set TT_MAX_UNIVERSE to change it)"
    config = load_run_config(write(tmp_path, "universe:\n  watchlist: wl.csv\n"))
    with pytest.raises(WatchlistError, match="3 symbols exceed the universe limit of 2"):
        resolve_watchlist(config)
    max_universe(3)  # duplicates count once
    assert load_watchlist(path).symbols == ["AAA", "BBB", "CCC"]
    assert resolve_watchlist(config).symbols == ["AAA", "BBB", "CCC"]
    with pytest.raises(WatchlistError, match="run config: 2 symbols exceed the universe limit of 1"):
        watchlist_from_symbols(["A", "B"], source="run config", max_symbols=1)


def test_tt_max_universe_must_be_at_least_one(monkeypatch):
    monkeypatch.setenv("TT_MAX_UNIVERSE", "0")
    with pytest.raises(ValueError, match="TT_MAX_UNIVERSE"):
        PlatformSettings(_env_file=None)
    monkeypatch.setenv("TT_MAX_UNIVERSE", "50")
    settings = PlatformSettings(_env_file=None)
    assert settings.max_universe == 50 and settings.safe_dump()["TT_MAX_UNIVERSE"] == "50"


# ----------------------------------------------------------------------------- one definition


def test_bounds_live_on_the_model_fields_and_reach_the_dagster_launchpad():
    from tt_platform.config.dagster import _description

    fields = TrainConfig.model_fields
    assert _description(fields["seed"]).endswith("(>= 0, < 4294967296)")
    assert _description(fields["total_timesteps"]).endswith("(>= 1, <= 1000000000)")
    assert _description(EnvConfig.model_fields["initial_cash"]).endswith("(> 0, <= 1000000000000.0)")
    with pytest.raises(RunConfigError, match="resources.run_config.config: training.seed: Input should be less than 4294967296"):
        RunConfigResource(training={"seed": 2**32}).load()
    with pytest.raises(RunConfigError, match="resources.run_config.config: env.initial_cash: Input should be less than or equal to"):
        RunConfigResource(env={"initial_cash": 2e12}).load()
