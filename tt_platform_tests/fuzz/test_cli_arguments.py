"""Fuzzing the ``tt`` command line: each command with its own options given odd values, options
it does not have, missing values, stray arguments, and config files that are broken.

Nothing here runs a job or reaches a database: the run launcher and the database check are
stand-ins (the database check refuses in one line, as it does when no server answers), so the
property is about what ``tt`` does with the arguments themselves.

Property: ``tt`` either finishes (exit 0) or stops with exit 2 and a last line that says what is
wrong (click's usage error or the command's own message); never a traceback, never exit 1's
"unexpected" error.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from typer.testing import CliRunner

import tt_platform.cli as cli
import tt_platform.orchestration as orchestration
from tt_platform.settings import get_settings
from tt_platform_tests.fuzz.properties import FUZZ

runner = CliRunner()

VALUES = st.one_of(
    st.sampled_from([
        "", " ", "-", "--", "0", "-1", "1", "20", "1e400", "nan", "inf", "-inf", "99999999999999999999999", "1.5",
        "2020-01-02", "2020-02-30", "20200102", "2019-01-02T10:00", "1d", "1h", "2d", "1min", "backtest", "paper",
        "live", "hodl", "synthetic", "csv", "ib", "emulator", "SPY", "SPY,QQQ", ",,,", "SPY=0.5,QQQ=0.5", "SPY=abc",
        "SPY=nan", "=1", "quandl", "lean", "zipline", "champion", "policy:", "é", "a\nb", "\x7f",
    ]),
    st.text(max_size=10).filter(lambda text: "\x00" not in text),  # a NUL cannot be in an argv
)

# each command and the options it declares (flags take no value)
COMMANDS: dict[str, tuple[list[str], list[str]]] = {
    "demo": (["--config", "-c", "--mode", "--interval", "--source"], ["--emulator", "--no-emulator"]),
    "ingest": (["--config", "--source", "--symbols", "--start", "--end", "--csv-dir", "--interval", "--mode"],
               ["--emulator", "--no-emulator"]),
    "train": (["--config", "--mode", "--interval", "--resume-checkpoint"], ["--features", "--no-features"]),
    "walk-forward": (["--config", "--mode", "--interval", "--workers"], ["--features", "--no-features"]),
    "evaluate": (["--config", "--mode", "--interval"], []),
    "stress": (["--config", "--policy", "--weights", "--equity", "--daily-loss-limit", "--seed"], ["--rebalance", "--hold"]),
    "tune": (["--config", "--trials", "--timeout", "--workers", "--storage"], []),
    "launch-config": (["--config"], []),
    "corporate-actions": (["--format", "--symbol"], []),
    "live": (["--config"], ["--dry-run"]),
}
PATH_OPTIONS = {"--config", "-c", "--csv-dir", "--resume-checkpoint"}
CONFIG_TEXTS = {
    "good.yaml": "name: fuzz\nuniverse:\n  symbols: [SPY, QQQ]\n",
    "bad.yaml": "env:\n  window_size: -3\n  nonsense: 1\n",
    "broken.yaml": "name: [unclosed\n",
    "paper.yaml": "ops:\n  trading_session:\n    config:\n      mode: paper\n      capital: 1000\n",
    "actions.csv": "symbol,ex_date,action_type,value\nKO,2014-03-12,cash_dividend,0.305\n",
    "binary.bin": "\x00\x01\x02",
}


@pytest.fixture(scope="module")
def home():
    """Files to point options at, a TT_HOME of its own, and stand-ins for what would start runs."""
    with tempfile.TemporaryDirectory(prefix="tt-fuzz-cli-") as name, pytest.MonkeyPatch.context() as patch:
        folder = Path(name)
        for file_name, text in CONFIG_TEXTS.items():
            (folder / file_name).write_text(text, encoding="latin-1")
        (folder / "a folder").mkdir()
        patch.setenv("TT_HOME", str(folder / "home"))
        patch.setattr(cli, "_run_assets", lambda *args, **kwargs: {"success": True, "run_id": "0" * 36, "assets": {}})
        patch.setattr(cli, "_database_url", lambda: cli._fail("cannot connect to PostgreSQL (a stand-in in this test)"))
        patch.setattr(orchestration, "fold_partition_keys", lambda instance=None: [])
        patch.setattr(orchestration, "run_job", lambda *args, **kwargs: {"status": "SUCCESS", "success": True,
                                                                         "run_id": "0" * 36, "assets": {}})
        get_settings.cache_clear()
        yield folder
        get_settings.cache_clear()


@st.composite
def command_lines(draw, folder: Path) -> list[str]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    options, flags = COMMANDS[command]
    paths = st.sampled_from([str(folder / name) for name in (*CONFIG_TEXTS, "a folder", "missing.yaml")])
    args = [command]
    if command == "corporate-actions":
        args.append(draw(st.one_of(paths, VALUES)))
    elif command == "live" and draw(st.integers(0, 4)) > 0:
        args += ["--config", draw(paths)]
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["option", "option", "option", "flag", "unknown", "stray", "no value"]))
        if kind == "option" and options:
            option = draw(st.sampled_from(options))
            args += [option, draw(paths if option in PATH_OPTIONS and draw(st.booleans()) else VALUES)]
        elif kind == "flag" and flags:
            args.append(draw(st.sampled_from(flags)))
        elif kind == "unknown":
            args.append(draw(st.sampled_from(["--nope", "-x", "--config=", "--trials=abc", "--help", "-h"])))
        elif kind == "stray":
            args.append(draw(VALUES))
        elif options:
            args.append(draw(st.sampled_from(options)))  # an option without its value, last
            break
    return args


def _assert_clear_outcome(result, args: list[str]) -> None:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"tt {args} raised {result.exception!r}\n{result.output}") from result.exception
    assert result.exit_code in (0, 2), f"tt {args} exited {result.exit_code}:\n{result.output}"
    assert "Traceback" not in result.output and "tt: unexpected" not in result.output, result.output
    if result.exit_code == 2:
        lines = [line for line in result.output.splitlines() if line.strip(" │╭╮╰╯─")]
        assert lines, f"tt {args} exited 2 saying nothing"


@FUZZ
@given(st.data())
def test_every_command_line_runs_or_says_what_is_wrong(home, data):
    args = data.draw(command_lines(home))
    result = runner.invoke(cli.app, args, catch_exceptions=True)
    event(f"exit {result.exit_code}")
    _assert_clear_outcome(result, args)


def test_the_stand_ins_keep_a_good_command_line_away_from_any_database(home):
    result = runner.invoke(cli.app, ["stress", "--config", str(home / "good.yaml"), "--weights", "SPY=0.5,QQQ=0.5"])
    assert result.exit_code == 2 and "cannot connect to PostgreSQL (a stand-in in this test)" in result.output
    assert isinstance(result.exception, SystemExit)
