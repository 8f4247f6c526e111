from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml
from pydantic import BaseModel

from tt_platform.config import EnvConfig, TrainConfig
from tt_platform.config.run_config import (
    REFERENCE_CONFIG,
    Mode,
    RunConfig,
    RunConfigError,
    load_run_config,
    parse_run_config,
)
from tt_platform.data.sessions import last_completed_session

# a Friday afternoon in New York, before the close: the last completed session is Thursday
BEFORE_CLOSE = pd.Timestamp("2024-03-08 14:00", tz="America/New_York")


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_the_demo():
    config = load_run_config(None)
    assert config.mode is Mode.backtest
    assert config.data.source == "synthetic"
    assert len(config.universe.symbols) == 5
    assert config.training.algo == "ppo" and config.training.total_timesteps == 4096
    assert config.training.n_envs == 2 and config.training.seed == 42
    assert config.env.window_size == 20 and config.env.episode_length == 252 and config.env.random_start
    assert config.data.end == last_completed_session()


def test_env_and_training_sections_are_the_env_and_trainer_configs():
    # one model: the env factory and the trainer take the sections themselves
    assert RunConfig.model_fields["env"].annotation is EnvConfig
    assert RunConfig.model_fields["training"].annotation is TrainConfig
    from tt_platform.env.config import EnvConfig as FactoryEnvConfig
    from tt_platform.training.config import TrainConfig as TrainerTrainConfig

    assert FactoryEnvConfig is EnvConfig and TrainerTrainConfig is TrainConfig
    assert RunConfig().env == EnvConfig() and RunConfig().training == TrainConfig()
    assert "portfolio" not in RunConfig.model_fields


def test_valid_file_loads_with_types(tmp_path):
    path = write(
        tmp_path,
        "mode: paper\ndata:\n  interval: 1h\n  start: 2020-01-01\n  end: 2020-06-30\n"
        "env:\n  initial_cash: 50000\n  leverage_cap: 2\n  drawdown_penalty: 0.5\n"
        "training:\n  net_arch: [32, 16]\n  learning_rate: 0.001\n",
    )
    config = load_run_config(path)
    assert config.mode is Mode.paper
    assert config.data.interval == "1h"
    assert config.data.start == date(2020, 1, 1) and config.data.end == date(2020, 6, 30)
    assert config.env.initial_cash == 50000.0 and config.env.leverage_cap == 2.0
    assert config.env.drawdown_penalty == 0.5
    assert config.training.net_arch == [32, 16] and config.training.learning_rate == 0.001
    assert config.notes == ()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("env:\n  window_size: 0\n", "env.window_size: Input should be greater than or equal to 1"),
        ("env:\n  leverage_cap: -1\n", "env.leverage_cap: Input should be greater than 0"),
        ("env:\n  max_drawdown: 1.5\n", "env.max_drawdown: Input should be less than or equal to 1"),
        ("env:\n  per_symbol_cap: 2\n", "env: per_symbol_cap 2.0 exceeds leverage_cap 1.0"),
        ("env:\n  levrage_cap: 2\n", "env.levrage_cap: unknown key"),
        ("training:\n  learning_rate: 0\n", "training.learning_rate: Input should be greater than 0"),
        ("training:\n  net_arch: [64, 0]\n", "training.net_arch.1: Input should be greater than 0"),
        ("training:\n  n_steps: 8\n  batch_size: 64\n", "training: n_steps x n_envs (16) must be >= batch_size"),
        ("training:\n  algo: sac\nenv:\n  action_scheme: discrete\n", "training: algo 'sac' needs a continuous action space"),
        ("mode: yolo\n", "mode: Input should be 'backtest', 'paper' or 'live'"),
        ("data:\n  interval: 2d\n", "data.interval"),
        ("data:\n  start: 2021-01-01\n  end: 2020-01-01\n", "data: end 2020-01-01 is before start 2021-01-01"),
        ("data:\n  source: csv\n", "data: source 'csv' needs csv_dir"),
        ("- just\n- a list\n", "(top level): expected a mapping"),
        ("data: [unclosed\n", "line 2: invalid YAML"),
    ],
)
def test_bad_file_names_file_key_and_problem(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(RunConfigError) as error:
        load_run_config(path)
    assert f"{path}: {expected}" in str(error.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("portfolio:\n  capital: 5\n", "portfolio.capital: moved to env.initial_cash"),
        ("portfolio:\n  max_drawdown: 0.2\n", "portfolio.max_drawdown: moved to env.max_drawdown"),
        ("training:\n  window_size: 10\n", "training.window_size: moved to env.window_size"),
        ("training:\n  episode_length: 60\n", "training.episode_length: moved to env.episode_length"),
    ],
)
def test_keys_of_the_old_layout_say_where_they_moved(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(RunConfigError, match="moved to") as error:
        load_run_config(path)
    assert f"{path}: {expected}" in str(error.value)


def test_every_bound_is_defined_once_and_reaches_every_entry_point(tmp_path):
    """The same bound refuses a value in a file, in overrides, and in the section on its own."""
    with pytest.raises(RunConfigError, match=r"run.yaml: env.window_size: .*greater than or equal to 1"):
        load_run_config(write(tmp_path, "env:\n  window_size: 0\n"))
    with pytest.raises(RunConfigError, match=r"command-line overrides: env.window_size: .*less than or equal to 1024"):
        RunConfig().with_overrides(**{"env.window_size": 1025})
    with pytest.raises(ValueError, match="window_size"):
        EnvConfig(window_size=0)
    assert load_run_config(write(tmp_path, "env:\n  window_size: 1024\n")).env.window_size == 1024


def test_missing_file_is_named(tmp_path):
    with pytest.raises(RunConfigError, match="config file not found"):
        load_run_config(tmp_path / "nope.yaml")


def test_overrides_are_validated_and_hash_changes():
    base = RunConfig()
    changed = base.with_overrides(**{"data.interval": "1h", "mode": Mode.live})
    assert changed.data.interval == "1h" and changed.mode is Mode.live
    assert changed.config_hash != base.config_hash
    assert base.with_overrides(**{"env.drawdown_penalty": 2.0}).config_hash != base.config_hash
    assert base.with_overrides(**{"training.net_arch": [8]}).config_hash != base.config_hash
    with pytest.raises(RunConfigError, match="command-line overrides: env.initial_cash: Input should be greater than 0"):
        base.with_overrides(**{"env.initial_cash": 0})
    with pytest.raises(RunConfigError, match="command-line overrides: portfolio.capital: moved to env.initial_cash"):
        base.with_overrides(**{"portfolio.capital": 1})
    with pytest.raises(RunConfigError, match="command-line overrides: nope.key: unknown key"):
        base.with_overrides(**{"nope.key": 1})


def test_hash_leaves_out_source_csv_dir_and_mode(tmp_path):
    base = RunConfig()
    same = base.with_overrides(**{"data.source": "ib", "mode": Mode.paper})
    assert same.config_hash == base.config_hash
    as_csv = base.with_overrides(**{"data.source": "csv", "data.csv_dir": str(tmp_path)})
    assert as_csv.config_hash == base.config_hash
    assert RunConfig().config_hash == base.config_hash


def test_relative_paths_resolve_next_to_config(tmp_path):
    (tmp_path / "wl.csv").write_text("symbol\nAAA\n")
    config = load_run_config(write(tmp_path, "universe:\n  watchlist: wl.csv\ndata:\n  source: csv\n  csv_dir: bars\n"))
    assert config.universe.watchlist == (tmp_path / "wl.csv").resolve()
    assert config.data.csv_dir == (tmp_path / "bars").resolve()


def test_parse_accepts_empty_document():
    assert parse_run_config(None) == RunConfig()


def test_hash_follows_the_watchlist_content_not_its_location(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "wl.csv").write_text("symbol\nSPY\nQQQ\n")
        (tmp_path / folder / "run.yaml").write_text("universe:\n  watchlist: wl.csv\n")
    a = load_run_config(tmp_path / "a" / "run.yaml")
    b = load_run_config(tmp_path / "b" / "run.yaml")
    assert a.config_hash == b.config_hash
    (tmp_path / "b" / "wl.csv").write_text("symbol\nSPY\nIWM\n")
    assert load_run_config(tmp_path / "b" / "run.yaml").config_hash != a.config_hash


# ----------------------------------------------------------------------------- data.end


def test_omitted_end_is_the_last_completed_session(tmp_path):
    path = write(tmp_path, "data:\n  start: 2024-01-02\n")
    config = load_run_config(path, as_of=BEFORE_CLOSE)
    assert config.data.end == date(2024, 3, 7)  # Friday's session is not complete yet
    assert config.data.requested_end is None and config.notes == ()
    after_close = load_run_config(path, as_of=pd.Timestamp("2024-03-08 16:30", tz="America/New_York"))
    assert after_close.data.end == date(2024, 3, 8)
    weekend = load_run_config(path, as_of=pd.Timestamp("2024-03-10 12:00", tz="America/New_York"))
    assert weekend.data.end == date(2024, 3, 8)
    # a rolling config keeps its identity as sessions complete (the data snapshot hash differs)
    assert config.config_hash == after_close.config_hash
    explicit = load_run_config(write(tmp_path, "data:\n  start: 2024-01-02\n  end: 2024-03-07\n", "x.yaml"))
    assert explicit.config_hash != config.config_hash


def test_an_end_in_the_future_is_clamped_with_a_note(tmp_path):
    path = write(tmp_path, "data:\n  start: 2024-01-02\n  end: 2024-12-31\n")
    config = load_run_config(path, as_of=BEFORE_CLOSE)
    assert config.data.end == date(2024, 3, 7)
    assert config.data.requested_end == date(2024, 12, 31)
    assert config.notes == ("data.end 2024-12-31 is after the last completed session; using 2024-03-07",)
    # today's unfinished session is never asked for either
    today = load_run_config(write(tmp_path, "data:\n  start: 2024-01-02\n  end: 2024-03-08\n", "t.yaml"), as_of=BEFORE_CLOSE)
    assert today.data.end == date(2024, 3, 7) and today.notes
    # overrides keep the end as written and resolve it again
    assert config.with_overrides(name="other").data.requested_end == date(2024, 12, 31)
    past = load_run_config(write(tmp_path, "data:\n  start: 2024-01-02\n  end: 2024-02-29\n", "p.yaml"), as_of=BEFORE_CLOSE)
    assert past.data.end == date(2024, 2, 29) and past.notes == ()


def test_a_start_after_the_last_completed_session_is_an_error(tmp_path):
    path = write(tmp_path, "data:\n  start: 2024-03-08\n")
    with pytest.raises(RunConfigError, match=r"run.yaml: data: end 2024-03-07 \(the last completed session\) is before start 2024-03-08"):
        load_run_config(path, as_of=BEFORE_CLOSE)


# ----------------------------------------------------------------------------- reference file


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= _leaf_keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def _yaml_keys(data: dict, prefix: str = "") -> set[str]:
    keys = set()
    for name, value in data.items():
        if isinstance(value, dict):
            keys |= _yaml_keys(value, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_reference_config_lists_every_key_at_its_default():
    data = yaml.safe_load(REFERENCE_CONFIG.read_text())
    assert _yaml_keys(data) == _leaf_keys(RunConfig)
    config = load_run_config(REFERENCE_CONFIG)
    assert config == RunConfig()
    assert config.config_hash == RunConfig().config_hash


def test_a_pinned_market_clock_resolves_the_end_but_never_into_the_future(tmp_path):
    path = write(tmp_path, "data:\n  start: 2024-01-02\n")
    pinned = load_run_config(path, as_of=BEFORE_CLOSE, last_session=date(2024, 2, 29))
    assert pinned.data.end == date(2024, 2, 29)
    ahead = load_run_config(path, as_of=BEFORE_CLOSE, last_session=date(2024, 3, 8))
    assert ahead.data.end == date(2024, 3, 7)


def test_every_bar_source_is_accepted_and_none_changes_the_hash():
    from tt_platform.data.sources.factory import SOURCES

    hashes = set()
    for source in SOURCES:
        extra = {"data.csv_dir": "/tmp"} if source == "csv" else {}
        hashes.add(RunConfig().with_overrides(**{"data.source": source}, **extra).config_hash)
    assert hashes == {RunConfig().config_hash}


def test_overrides_resolve_against_the_same_session(tmp_path):
    config = load_run_config(write(tmp_path, "data:\n  start: 2024-01-02\n"), as_of=BEFORE_CLOSE)
    assert config.with_overrides(**{"env.window_size": 9}).data.end == date(2024, 3, 7)


# ----------------------------------------------------------------------------- duplicate keys


def test_duplicate_top_level_key_is_an_error_naming_key_and_lines(tmp_path):
    path = write(tmp_path, "name: x\ntraining:\n  seed: 1\nenv:\n  window_size: 3\n\ntraining:\n  seed: 2\n")
    with pytest.raises(RunConfigError) as error:
        load_run_config(path)
    assert str(error.value) == f"{path}: line 7: duplicate key 'training' (first at line 2)"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("env:\n  window_size: 3\n  window_size: 4\n", "line 3: duplicate key 'env.window_size' (first at line 2)"),
        ("universe:\n  symbols:\n    - {a: 1, a: 2}\n", "line 3: duplicate key 'universe.symbols.0.a' (first at line 3)"),
        ("data:\n  start: 2020-01-02\n  seed: 1\n  start: 2020-01-03\n", "line 4: duplicate key 'data.start' (first at line 2)"),
        ("training:\n  net_arch: [8]\n  'net_arch': [16]\n", "line 3: duplicate key 'training.net_arch' (first at line 2)"),
    ],
)
def test_duplicate_keys_are_refused_at_every_nesting_level(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(RunConfigError) as error:
        load_run_config(path)
    assert str(error.value) == f"{path}: {expected}"


def test_a_key_from_a_yaml_merge_may_be_overridden():
    from tt_platform.config.run_config import UniqueKeyLoader

    text = "base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  x: 3\n"
    assert yaml.load(text, Loader=UniqueKeyLoader)["use"] == {"x": 3, "y": 2}


# ----------------------------------------------------------------------------- unreadable files


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("name: café\n".encode("latin-1"), "line 1: not UTF-8 text (byte 0xe9 at offset 9)"),
        (b"name: x\nmode: backtest\nenv: {}\n\xff\n", "line 4: not UTF-8 text (byte 0xff at offset 31)"),
        ("name: x\n".encode("utf-16"), "line 1: not UTF-8 text (byte 0xff at offset 0; it looks like UTF-16 text)"),
        (bytes(range(256)), "line 2: not UTF-8 text (byte 0x80 at offset 128)"),
        (b"name: x\n\x00\x01\x02", "line 2: not a text file (NUL byte at offset 8; binary data or UTF-16/32 text)"),
        (b"name: a\x07b\n", "line 1: invalid YAML (character U+0007 is not allowed)"),
    ],
)
def test_a_config_that_is_not_utf8_text_is_one_line_naming_file_and_where(tmp_path, raw, expected):
    path = tmp_path / "run.yaml"
    path.write_bytes(raw)
    with pytest.raises(RunConfigError) as error:
        load_run_config(path)
    assert str(error.value) == f"{path}: {expected}"
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_a_utf8_byte_order_mark_is_allowed(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_bytes("\ufeffname: café\n".encode("utf-8"))
    assert load_run_config(path).name == "café"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_an_empty_config_file_is_the_defaults(tmp_path, text):
    config = load_run_config(write(tmp_path, text))
    assert config == load_run_config(None)
    assert config.config_hash == RunConfig().config_hash


def test_a_directory_given_as_config_is_named_as_such(tmp_path):
    with pytest.raises(RunConfigError) as error:
        load_run_config(tmp_path)
    assert str(error.value) == f"{tmp_path}: is a directory, not a file"


def test_an_impossible_date_is_named_with_its_key_not_a_traceback(tmp_path):
    path = write(tmp_path, "data:\n  start: 2020-02-30\n")
    with pytest.raises(RunConfigError) as error:
        load_run_config(path)
    assert str(error.value) == f"{path}: data.start: expected a date YYYY-MM-DD, got 2020-02-30 (day is out of range for month)"


def test_a_value_yaml_cannot_build_is_one_line(tmp_path):
    path = write(tmp_path, "training:\n  seed: !!int abc\n")
    with pytest.raises(RunConfigError, match=r"run.yaml: invalid YAML \(invalid literal for int"):
        load_run_config(path)


# ----------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    "text, expected",
    [
        ("data:\n  start: 20200102\n", "data.start: expected a date YYYY-MM-DD, got 20200102"),
        ("data:\n  start: '20200102'\n", "data.start: expected a date YYYY-MM-DD, got 20200102"),
        ("data:\n  start: 1577923200\n", "data.start: expected a date YYYY-MM-DD, got 1577923200"),
        ("data:\n  start: 2020-01-02 10:00:00\n", "data.start: expected a date YYYY-MM-DD, got 2020-01-02 10:00:00"),
        ("data:\n  start: 2020-01-02T00:00:00Z\n", "data.start: expected a date YYYY-MM-DD, got 2020-01-02 00:00:00+00:00"),
        ("data:\n  start: '2020-01-02T10:00'\n", "data.start: expected a date YYYY-MM-DD, got 2020-01-02T10:00"),
        ("data:\n  start: 2020/01/02\n", "data.start: expected a date YYYY-MM-DD, got 2020/01/02"),
        ("data:\n  start: '2020-1-2'\n", "data.start: expected a date YYYY-MM-DD, got 2020-1-2"),
        ("data:\n  start:\n", "data.start: expected a date YYYY-MM-DD, got null"),
        ("data:\n  start: true\n", "data.start: expected a date YYYY-MM-DD, got True"),
        ("data:\n  end: 20200630\n", "data.end: expected a date YYYY-MM-DD, got 20200630"),
        ("data:\n  end: 2020-06-30 16:00:00\n", "data.end: expected a date YYYY-MM-DD, got 2020-06-30 16:00:00"),
    ],
)
def test_dates_are_parsed_as_dates_only(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(RunConfigError) as error:
        load_run_config(path)
    assert str(error.value) == f"{path}: {expected}"


def test_iso_dates_quoted_or_not_are_accepted(tmp_path):
    for text in ("data:\n  start: 2020-01-02\n  end: 2020-06-30\n",
                 "data:\n  start: '2020-01-02'\n  end: \"2020-06-30\"\n"):
        config = load_run_config(write(tmp_path, text))
        assert (config.data.start, config.data.end) == (date(2020, 1, 2), date(2020, 6, 30))


def test_overrides_parse_dates_as_dates_only():
    base = RunConfig()
    assert base.with_overrides(**{"data.start": "2020-01-02"}).data.start == date(2020, 1, 2)
    assert base.with_overrides(**{"data.start": date(2020, 1, 3)}).data.start == date(2020, 1, 3)
    for value, shown in (("20200102", "20200102"), (20200102, "20200102"), ("2020-01-02T10:00", "2020-01-02T10:00"),
                         ("", "''")):
        with pytest.raises(RunConfigError) as error:
            base.with_overrides(**{"data.start": value})
        assert str(error.value) == f"command-line overrides: data.start: expected a date YYYY-MM-DD, got {shown}"
    with pytest.raises(RunConfigError, match="command-line overrides: data.end: expected a date YYYY-MM-DD, got 2020-06-30T00:00:00"):
        base.with_overrides(**{"data.end": pd.Timestamp("2020-06-30").to_pydatetime()})


# ----------------------------------------------------------------------------- data.start


def test_a_start_after_the_last_completed_session_names_both_dates_even_with_a_later_end(tmp_path):
    path = write(tmp_path, "data:\n  start: 2024-03-09\n  end: 2024-12-31\n")
    with pytest.raises(RunConfigError) as error:
        load_run_config(path, as_of=BEFORE_CLOSE)
    assert str(error.value) == (f"{path}: data: start 2024-03-09 is after the last completed session "
                                "2024-03-07 (end 2024-12-31 is clamped to it)")


def test_a_start_after_the_end_names_both_dates_as_written(tmp_path):
    path = write(tmp_path, "data:\n  start: 2025-01-02\n  end: 2024-12-31\n")
    with pytest.raises(RunConfigError) as error:
        load_run_config(path, as_of=BEFORE_CLOSE)
    assert str(error.value) == f"{path}: data: end 2024-12-31 is before start 2025-01-02"
    with pytest.raises(RunConfigError, match="command-line overrides: data: end 2024-03-07 .the last completed session. is before start 2024-03-08"):
        load_run_config(write(tmp_path, "data:\n  start: 2024-01-02\n", "ok.yaml"), as_of=BEFORE_CLOSE).with_overrides(
            **{"data.start": "2024-03-08"})


def test_start_on_the_last_completed_session_is_one_session(tmp_path):
    config = load_run_config(write(tmp_path, "data:\n  start: 2024-03-07\n"), as_of=BEFORE_CLOSE)
    assert config.data.start == config.data.end == date(2024, 3, 7)
