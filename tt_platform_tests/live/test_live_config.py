"""The live-session config: the Dagster run-config shape and the bare section, the repo's
paper.yaml, and one error naming the file and the key path for every kind of bad input."""

from pathlib import Path

import pytest

from tt_platform.core.risk import RiskLimits
from tt_platform.live.config import (
    INTERVALS,
    LIVE_OP,
    LiveConfigError,
    LiveSessionConfig,
    load_live_config,
    parse_live_config,
)

REPO = Path(__file__).resolve().parents[2]
SOURCE = "paper.yaml"
PREFIX = f"ops.{LIVE_OP}.config."


def run_config(section: dict) -> dict:
    return {"ops": {LIVE_OP: {"config": section}}}


def error_of(data, source: str = SOURCE) -> str:
    with pytest.raises(LiveConfigError) as raised:
        parse_live_config(data, source=source)
    return str(raised.value)


# ---------------------------------------------------------------------------- shapes
def test_the_run_config_shape_and_the_bare_section_give_the_same_config():
    section = {"mode": "live", "policy": "version:3", "symbols": [" aapl", "msft"], "capital": 50_000,
               "interval": "5min", "risk": {"per_symbol_cap": 0.2, "daily_loss_limit": None},
               "orders": {"order_type": "limit", "limit_offset_bps": 3}, "ib": {"port": 4002}}
    bare = parse_live_config(section)
    wrapped = parse_live_config(run_config(section) | {"resources": {}, "execution": {}, "loggers": {}})
    assert bare == wrapped
    assert bare.mode == "live" and bare.capital == 50_000.0 and bare.interval == "5min"
    assert bare.symbols == ["AAPL", "MSFT"]  # stripped and upper-cased
    assert bare.orders.order_type == "limit" and bare.ib.port == 4002
    assert bare.risk.limits() == RiskLimits(leverage_cap=1.0, per_symbol_cap=0.2, long_only=True,
                                            max_net_exposure=None, max_symbol_notional=None,
                                            daily_loss_limit=None)


def test_an_empty_document_and_an_empty_op_config_are_the_defaults():
    defaults = LiveSessionConfig()
    assert parse_live_config(None) == defaults
    assert parse_live_config({}) == defaults
    assert parse_live_config({"ops": {LIVE_OP: {}}}) == defaults
    assert defaults.mode == "paper" and defaults.policy == "champion" and defaults.clock == "wall"


def test_the_repositorys_paper_yaml_loads_as_a_paper_session_of_the_champion():
    config = load_live_config(REPO / "paper.yaml")
    assert config.mode == "paper"
    assert config.policy_selector() == ("alias", "champion")
    assert config.capital == 100_000.0
    assert config.risk.max_session_drawdown == 0.05 and config.risk.daily_loss_limit == 0.03
    assert config.orders.order_type == "market" and config.cancel_on_stop and not config.flatten_on_stop
    # what is logged and stored round-trips
    assert LiveSessionConfig.model_validate(config.safe_dict()) == config


def test_a_run_config_without_the_op_or_with_other_top_level_keys_is_refused():
    assert error_of({"ops": {"another_op": {"config": {}}}}) == \
        f"{SOURCE}: ops.{LIVE_OP}.config is missing or not a mapping"
    assert error_of({"ops": {LIVE_OP: {"config": ["mode", "paper"]}}}) == \
        f"{SOURCE}: ops.{LIVE_OP}.config is missing or not a mapping"
    message = error_of(run_config({}) | {"mode": "live"})
    assert message == f"{SOURCE}: unknown top-level key(s) ['mode'] beside ops"
    assert error_of(["mode", "paper"]) == f"{SOURCE}: expected a mapping of keys, got list"


# ---------------------------------------------------------------------------- bad values
@pytest.mark.parametrize(
    ("section", "key", "problem"),
    [
        ({"capital": 0}, "capital", "greater than 0"),
        ({"risk": {"per_symbol_cap": -1}}, "risk.per_symbol_cap", "greater than 0"),
        ({"interval": "2min"}, "interval", "'2min' is not one of"),
        ({"policy": "bad spec!"}, "policy", "'bad spec!' is neither an MLflow alias"),
        ({"policy": "policy: "}, "policy", "'policy:' needs a policy id"),
        ({"symbols": ["AAPL", "msft", " MSFT"]}, "symbols", "symbols lists ['MSFT'] more than once"),
        ({"clock": "gps"}, "clock", "Input should be 'wall' or 'feed'"),
        ({"risk": {"leverage": 2}}, "risk.leverage", "Extra inputs are not permitted"),
        ({"colour": "blue"}, "colour", "Extra inputs are not permitted"),
        ({"capital": float("nan")}, "capital", "finite number"),
        ({"ib": {"port": 70000}}, "ib.port", "less than or equal to 65535"),
    ],
)
@pytest.mark.parametrize("wrapped", [True, False], ids=["run-config", "bare"])
def test_a_bad_value_gives_one_error_naming_the_file_and_the_key_path(section, key, problem, wrapped):
    message = error_of(run_config(section) if wrapped else section)
    path = f"{PREFIX}{key}" if wrapped else key
    assert message.startswith(f"{SOURCE}: {path}: "), message
    assert problem in message
    assert message.count(f"{SOURCE}:") == 1  # one problem, one mention


def test_clock_feed_serves_replays_in_both_modes():
    assert parse_live_config({"mode": "paper", "clock": "feed"}).clock == "feed"
    assert parse_live_config({"mode": "live", "clock": "feed"}).clock == "feed"


def test_every_problem_of_a_config_is_named_in_the_one_error():
    message = error_of(run_config({"mode": "live", "clock": "gps", "capital": 0, "interval": "2min"}))
    assert message.split(f"; {SOURCE}: ") == [
        f"{SOURCE}: {PREFIX}interval: Value error, interval '2min' is not one of {list(INTERVALS)}",
        f"{PREFIX}capital: Input should be greater than 0",
        f"{PREFIX}clock: Input should be 'wall' or 'feed'",
    ]


# ---------------------------------------------------------------------------- the file
def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(LiveConfigError, match=r"paper\.yaml: no such file"):
        load_live_config(tmp_path / "paper.yaml")


def test_a_bad_value_in_a_file_names_the_file_and_the_key_path(tmp_path):
    path = tmp_path / "paper.yaml"
    path.write_text("ops:\n  trading_session:\n    config:\n      risk:\n        per_symbol_cap: -1\n")
    with pytest.raises(LiveConfigError) as raised:
        load_live_config(path)
    assert str(raised.value).startswith(f"{path}: {PREFIX}risk.per_symbol_cap: ")


def test_a_duplicate_key_names_the_file_and_its_line(tmp_path):
    path = tmp_path / "paper.yaml"
    path.write_text("ops:\n  trading_session:\n    config:\n      capital: 1000\n      mode: paper\n"
                    "      capital: 2000\n")
    with pytest.raises(LiveConfigError) as raised:
        load_live_config(path)
    assert str(raised.value) == (f"{path}, line 6: duplicate key 'ops.trading_session.config.capital' "
                                 "(first at line 4)")


def test_bytes_that_are_not_utf8_name_the_file_and_the_line(tmp_path):
    path = tmp_path / "paper.yaml"
    path.write_bytes(b"ops:\n  trading_session:\n    config:\n      policy: caf\xe9\n")
    with pytest.raises(LiveConfigError) as raised:
        load_live_config(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: line 4: not UTF-8 text (byte 0xe9"), message


def test_yaml_that_does_not_parse_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "paper.yaml"
    path.write_text("ops:\n  trading_session:\n    config:\n      symbols: [AAPL, MSFT\n      mode: paper\n")
    with pytest.raises(LiveConfigError) as raised:
        load_live_config(path)
    message = str(raised.value)
    assert message.startswith(f"{path}, line ") and "not valid YAML" in message


# ---------------------------------------------------------------------------- the selector
@pytest.mark.parametrize(
    ("policy", "selector"),
    [
        ("champion", ("alias", "champion")),
        ("staging-2", ("alias", "staging-2")),
        ("3", ("version", "3")),
        ("version:3", ("version", "3")),
        ("  version:12 ", ("version", "12")),
        ("policy:abc", ("policy_id", "abc")),
        ("policy: ppo-basic-s7 ", ("policy_id", "ppo-basic-s7")),
    ],
)
def test_policy_selector(policy, selector):
    assert parse_live_config({"policy": policy}).policy_selector() == selector


@pytest.mark.parametrize("policy", ["0", "version:0", "version:", "v 3", "-x", ""])
def test_a_selector_that_is_neither_alias_version_nor_policy_id_is_refused(policy):
    assert error_of({"policy": policy}).startswith(f"{SOURCE}: policy: ")
