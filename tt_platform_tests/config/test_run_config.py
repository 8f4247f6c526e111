from datetime import date
from pathlib import Path

import pytest

from tt_platform.config.run_config import Mode, RunConfig, RunConfigError, load_run_config, parse_run_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_defaults_are_the_demo():
    config = load_run_config(None)
    assert config.mode is Mode.backtest
    assert config.data.source == "synthetic"
    assert len(config.universe.symbols) == 5


def test_valid_file_loads_with_types(tmp_path):
    path = write(
        tmp_path,
        "mode: paper\ndata:\n  interval: 1h\n  start: 2020-01-01\n  end: 2020-06-30\nportfolio:\n  capital: 50000\n  leverage_cap: 2\n",
    )
    config = load_run_config(path)
    assert config.mode is Mode.paper
    assert config.data.interval == "1h"
    assert config.data.start == date(2020, 1, 1)
    assert config.portfolio.capital == 50000.0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("portfolio:\n  leverage_cap: -1\n", "portfolio.leverage_cap: Input should be greater than 0"),
        ("portfolio:\n  levrage_cap: 2\n", "portfolio.levrage_cap: unknown key"),
        ("mode: yolo\n", "mode: Input should be 'backtest', 'paper' or 'live'"),
        ("data:\n  interval: 2d\n", "data.interval"),
        ("data:\n  start: 2021-01-01\n  end: 2020-01-01\n", "data: end 2020-01-01 is before start 2021-01-01"),
        ("data:\n  source: csv\n", "data: source 'csv' needs csv_dir"),
        ("- just\n- a list\n", "(top level): expected a mapping"),
        ("data: [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_file_names_file_key_and_problem(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(RunConfigError) as error:
        load_run_config(path)
    message = str(error.value)
    assert str(path) in message
    assert expected in message


def test_missing_file_is_named(tmp_path):
    with pytest.raises(RunConfigError, match="config file not found"):
        load_run_config(tmp_path / "nope.yaml")


def test_overrides_are_validated_and_hash_changes():
    base = RunConfig()
    changed = base.with_overrides(**{"data.interval": "1h", "mode": Mode.live})
    assert changed.data.interval == "1h" and changed.mode is Mode.live
    assert changed.config_hash != base.config_hash
    # where bars come from and the execution mode do not change what a policy is
    same = base.with_overrides(**{"data.source": "ib", "mode": Mode.paper})
    assert same.config_hash == base.config_hash
    assert RunConfig().config_hash == base.config_hash
    with pytest.raises(RunConfigError, match="command-line overrides: portfolio.capital"):
        base.with_overrides(**{"portfolio.capital": 0})


def test_relative_watchlist_resolves_next_to_config(tmp_path):
    (tmp_path / "wl.csv").write_text("symbol\nAAA\n")
    config = load_run_config(write(tmp_path, "universe:\n  watchlist: wl.csv\n"))
    assert config.universe.watchlist == (tmp_path / "wl.csv").resolve()


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
