"""What ``tt`` prints last when something is wrong with its input: one line naming the file, line,
host or setting concerned, with the run to look up; never a Python traceback on the terminal.

``tt`` runs as a real process (what a user sees on the terminal), on a temporary Dagster
instance and TT_HOME (the ``dagster_home`` fixture) and the session's PostgreSQL schema. The IB
case runs in-process so the connection retries can be shortened.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tt_platform.cli import app
from tt_platform.settings import get_settings
from tt_platform_tests.cli.test_tt_runs import dagster_home  # noqa: F401 - fixture

TT = Path(sys.executable).with_name("tt")


def _tt(tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> tuple[int, str, str]:
    """Run ``tt`` as a process; stdout and stderr go to files (the run may start servers)."""
    out, err = tmp_path / "tt.out", tmp_path / "tt.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        done = subprocess.run(
            [str(TT), *args], cwd=tmp_path, env=env or dict(os.environ), stdin=subprocess.DEVNULL,
            stdout=stdout, stderr=stderr, timeout=timeout,
        )
    return done.returncode, out.read_text(), err.read_text()


def _last_line(stdout: str, stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()] or [line for line in stdout.splitlines() if line.strip()]
    return lines[-1]


def _assert_run_failure_line(last: str, reason: str) -> None:
    """``run <id> failed: <step>: <reason> (full log: `tt ui` -> Runs -> <id8>; step output in ...)``"""
    assert last.startswith("run ") and " failed: " in last, last
    run_id = last.split()[1]
    assert len(run_id) == 36, last
    assert reason in last, last
    assert f"`tt ui` -> Runs -> {run_id[:8]}" in last, last
    assert f"compute_logs{os.sep}{run_id}" in last, last
    assert "Error occurred while executing" not in last


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BARS = "date,open,high,low,close,volume\n" + "".join(
    f"2021-01-{day:02d},1,2,0.5,{'NaN' if day == 7 else '1.5'},100\n" for day in (4, 5, 6, 7, 8)
)


LATIN1_BARS = BARS.replace("2021-01-06,1,2,0.5,1.5,100", "2021-01-06,1,2,0.5,1.5,100 caf\u00e9").encode("latin-1")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (BARS.encode(), "csv/bad/SPY.csv, line 5: 'close' is not a number: 'NaN'"),
        (LATIN1_BARS, "csv/bad/SPY.csv, line 4: not UTF-8 text (byte 0xe9 at column 31); save the file as UTF-8"),
        (b"\x00\x01binary" * 64, "csv/bad/SPY.csv: binary data, not a text file"),
    ],
    ids=["nan-close", "latin-1-byte", "binary"],
)
def test_a_bad_csv_ends_with_file_line_and_problem(tmp_path, dagster_home, content, reason):  # noqa: F811
    folder = tmp_path / "csv" / "bad"
    folder.mkdir(parents=True)
    (folder / "SPY.csv").write_bytes(content)
    code, out, err = _tt(
        tmp_path, "ingest", "--source", "csv", "--csv-dir", "csv/bad", "--symbols", "SPY",
        "--start", "2021-01-04", "--end", "2021-01-29",
    )
    assert code == 1, out + err
    last = _last_line(out, err)
    _assert_run_failure_line(last, reason)
    assert "ImportFormatError" not in last and "UnicodeDecodeError" not in out + err
    assert "Traceback" not in err and "Traceback" not in out


def test_missing_csv_folder_ends_with_the_folder(tmp_path, dagster_home):  # noqa: F811
    missing = tmp_path / "no-such-folder"
    code, out, err = _tt(
        tmp_path, "ingest", "--source", "csv", "--csv-dir", str(missing), "--symbols", "AAA",
        "--start", "2021-01-04", "--end", "2021-01-29",
    )
    assert code == 1, out + err
    _assert_run_failure_line(_last_line(out, err), str(missing))
    assert "Traceback" not in err and "Traceback" not in out


def test_checkpoint_error_ends_with_the_checkpoint_path(tmp_path, dagster_home):  # noqa: F811
    config = tmp_path / "run.yaml"
    config.write_text(
        "universe:\n  symbols: [AAA, BBB]\ndata:\n  source: synthetic\n  start: 2020-01-02\n  end: 2020-12-31\n  seed: 3\n"
    )
    checkpoint = tmp_path / "not-a-checkpoint"
    checkpoint.mkdir()
    code, out, err = _tt(tmp_path, "ingest", "--config", str(config))
    assert code == 0, out + err
    code, out, err = _tt(tmp_path, "train", "--config", str(config), "--resume-checkpoint", str(checkpoint), timeout=600)
    assert code == 1, out + err
    last = _last_line(out, err)
    _assert_run_failure_line(last, f"{checkpoint}: not a checkpoint")
    assert "CheckpointError" not in last
    assert "Traceback" not in err and "Traceback" not in out


def test_unreachable_ib_ends_with_host_port_and_attempts(tmp_path, dagster_home, monkeypatch, capfd):  # noqa: F811
    from tt_platform.data.sources.ib import IBSourceConfig
    from tt_platform.defs.market_data.resources import BarSourceResource

    port = _closed_port()
    monkeypatch.setenv("IB_PORT", str(port))
    monkeypatch.setenv("IB_HOST", "127.0.0.1")
    get_settings.cache_clear()

    def quick_ib_config(self, settings):
        return IBSourceConfig(
            host=settings.ib_host, port=settings.ib_port, client_id=settings.ib_client_id,
            connect_attempts=2, connect_backoff_seconds=0.05, connect_backoff_max_seconds=0.1, connect_timeout=1.0,
        )

    monkeypatch.setattr(BarSourceResource, "ib_config", quick_ib_config)
    result = CliRunner().invoke(
        app,
        ["ingest", "--source", "ib", "--symbols", "SPY", "--start", "2021-01-04", "--end", "2021-01-29"],
    )
    captured = capfd.readouterr()
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    _assert_run_failure_line(last, f"cannot connect to IB at 127.0.0.1:{port}")
    assert "after 2 attempts" in last, last
    terminal = result.output + captured.out + captured.err
    assert "Traceback" not in terminal


def test_a_database_connection_dropped_mid_run_ends_with_the_server_not_the_sql(
    tmp_path, dagster_home, monkeypatch, capfd  # noqa: F811
):
    import sqlalchemy as sa

    from tt_platform.store import prices as prices_module
    from tt_platform.store.engine import server_location

    original = prices_module.lock_symbols

    def lock_then_lose_the_connection(conn, table, symbols):
        original(conn, table, symbols)
        conn.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))  # as a server restart would

    monkeypatch.setattr(prices_module, "lock_symbols", lock_then_lose_the_connection)
    result = CliRunner().invoke(
        app, ["ingest", "--source", "synthetic", "--symbols", "SPY", "--start", "2021-01-04", "--end", "2021-01-29"]
    )
    captured = capfd.readouterr()
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    _assert_run_failure_line(last, f"lost the connection to PostgreSQL at {server_location(os.environ['TT_DB_URL'])} (")
    assert "INSERT" not in last and "DELETE" not in last and "[SQL" not in last, last
    assert "Traceback" not in result.output + captured.out + captured.err


def test_wrong_database_port_is_one_line_naming_host_port_and_database(tmp_path):
    port = _closed_port()
    env = dict(os.environ, TT_HOME=str(tmp_path / "home"), TT_DB_URL=f"postgresql+psycopg2://trader:s3cret@127.0.0.1:{port}/nope")
    for command in (["info"], ["ingest", "--source", "synthetic", "--symbols", "SPY"]):
        code, out, err = _tt(tmp_path, *command, env=env, timeout=120)
        assert code != 0, out + err
        assert _last_line(out, err) == f"cannot connect to PostgreSQL at 127.0.0.1:{port}, database 'nope': connection refused"
        assert "s3cret" not in out + err and "Traceback" not in out + err
        assert len(err.strip().splitlines()) == 1, err


def test_wrong_database_name_is_one_line_naming_the_database(tmp_path, embedded_postgres):
    url = embedded_postgres.url("no_such_db")
    env = dict(os.environ, TT_HOME=str(tmp_path / "home"), TT_DB_URL=url)
    code, out, err = _tt(tmp_path, "info", env=env, timeout=120)
    assert code != 0, out + err
    last = _last_line(out, err)
    assert last.startswith("cannot connect to PostgreSQL at ") and "database 'no_such_db': no such database" in last, last
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (bytes(range(256)) * 8, "binary data, not a CSV of split and dividend events"),
        (b"symbol,ex_date,action_type,value\nM\xfcNCH,2020-01-02,split,2\n", "line 2: not UTF-8 text (byte 0xfc"),
    ],
    ids=["binary", "latin-1"],
)
def test_corporate_actions_names_a_binary_or_non_utf8_file(tmp_path, content, problem):
    path = tmp_path / "actions.csv"
    path.write_bytes(content)
    code, out, err = _tt(tmp_path, "corporate-actions", str(path), "--format", "csv", timeout=120)
    assert code == 2, out + err
    last = _last_line(out, err)
    assert last.startswith(str(path)) and problem in last, last
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("name: café\n".encode("latin-1"), "line 1: not UTF-8 text (byte 0xe9 at offset 9)"),
        (b"name: a\ndata:\n  start: 2021-01-04\n  start: 2021-02-01\n", "line 4: duplicate key 'data.start' (first at line 3)"),
        (b"data:\n  start: '20200102'\n", "data.start"),
    ],
    ids=["latin-1-config", "duplicate-key", "date-as-number"],
)
def test_a_bad_config_file_is_one_line_naming_the_file_and_no_traceback(tmp_path, content, problem):
    config = tmp_path / "run.yaml"
    config.write_bytes(content)
    result = CliRunner().invoke(app, ["ingest", "--config", str(config)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert str(config) in lines[0] and problem in lines[0], lines[0]
    assert "Traceback" not in result.output
