"""``tt ui``: the webserver and the daemon start together, share ``tt``'s instance, keep Dagster's
files under TT_HOME, and stop together on SIGTERM or SIGINT within 10 s.

The supervisor's rules are checked first with small Python children (fast, exact); then the real
``tt ui`` runs against a schema of the external PostgreSQL. Output goes to files: the children
inherit the descriptors, and a pipe would stay open as long as any of them lives.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from unittest import mock

import psutil
import pytest
from dagster._core.storage.dagster_run import DagsterRun

from tt_platform.runtime import REPO_ROOT
from tt_platform.ui_process import ChildCommand, dagster_ui_commands

TT = Path(sys.executable).with_name("tt")
STOP_BUDGET_SECONDS = 10.0
# what Dagster writes into DAGSTER_HOME by itself (webserver, daemon, `dagster dev`)
DAGSTER_HOME_ENTRIES = (".nux", "logs", ".logs_queue", ".telemetry", "history", "schedules", "storage")

SUPERVISE = """
import json, os, sys
from tt_platform.ui_process import ChildCommand, Supervisor
commands = [ChildCommand(name, tuple(argv)) for name, argv in json.loads(sys.argv[1])]
outcome = Supervisor(commands, env=dict(os.environ), grace_seconds=float(sys.argv[2]), kill_wait_seconds=2.0).run()
if outcome.problem:
    print("problem:", outcome.problem, flush=True)
sys.exit(outcome.exit_code)
"""
SLEEPER = "import time; time.sleep(120)"
DEAF = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
CRASHER = "import sys, time; time.sleep(1.0); sys.exit(3)"
# a child that starts a grandchild (as the webserver starts its code server) and records its pid
PARENT = (
    "import subprocess, sys, time; "
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
    "open(sys.argv[1], 'w').write(str(child.pid)); time.sleep(120)"
)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def _started_pids(log: Path, count: int, timeout: float = 30) -> list[int]:
    def pids() -> list[int]:
        return [int(line.rsplit("pid ", 1)[1].rstrip(")")) for line in log.read_text().splitlines() if " started (pid " in line]

    assert _wait_until(lambda: len(pids()) == count, timeout), log.read_text()
    return pids()


def _supervise(tmp_path: Path, children: list[tuple[str, list[str]]], grace: float = 5.0) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "supervisor.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", SUPERVISE, json.dumps(children), str(grace)],
            cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    return process, log


def _python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_stops_every_child_and_what_they_started(tmp_path, signum):
    grandchild_file = tmp_path / "grandchild.pid"
    process, log = _supervise(tmp_path, [("parent", _python(PARENT, str(grandchild_file))), ("sleeper", _python(SLEEPER))])
    try:
        pids = _started_pids(log, 2)
        assert _wait_until(lambda: grandchild_file.is_file() and grandchild_file.read_text(), 30)
        grandchild = int(grandchild_file.read_text())
        everyone = [*pids, grandchild]
        assert all(_alive(pid) for pid in everyone)
        # each child leads a process group of its own: a terminal's Ctrl-C reaches the supervisor only
        assert {os.getpgid(pid) for pid in pids} == set(pids)
        assert os.getpgid(grandchild) == pids[0]

        started = time.monotonic()
        process.send_signal(signum)
        assert process.wait(timeout=STOP_BUDGET_SECONDS) == 0, log.read_text()
        assert time.monotonic() - started < 3  # no grace period was needed
        assert not [pid for pid in everyone if _alive(pid)]
        assert f"{signal.Signals(signum).name}: stopping parent, sleeper" in log.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path):
    process, log = _supervise(tmp_path, [("deaf", _python(DEAF)), ("sleeper", _python(SLEEPER))], grace=2.0)
    try:
        deaf, sleeper = _started_pids(log, 2)
        time.sleep(0.5)  # the child has replaced its SIGTERM handler
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_BUDGET_SECONDS) == 0, log.read_text()
        took = time.monotonic() - started
        assert 2.0 <= took < 6, took
        assert not _alive(deaf) and not _alive(sleeper)
        assert "deaf did not stop within 2 s: killed" in log.read_text()
        assert "sleeper did not stop" not in log.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_when_one_child_dies_the_other_is_stopped_and_the_exit_names_it(tmp_path):
    process, log = _supervise(tmp_path, [("sleeper", _python(SLEEPER)), ("crasher", _python(CRASHER))])
    try:
        sleeper, _ = _started_pids(log, 2)
        assert process.wait(timeout=30) == 1, log.read_text()
        assert "problem: crasher exited with code 3; stopped sleeper" in log.read_text()
        assert not _alive(sleeper)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_a_child_that_cannot_start_stops_the_ones_already_started(tmp_path):
    missing = str(tmp_path / "no-such-program")
    process, log = _supervise(tmp_path, [("sleeper", _python(SLEEPER)), ("missing", [missing])])
    try:
        (sleeper,) = _started_pids(log, 1)
        assert process.wait(timeout=30) == 1, log.read_text()
        assert f"problem: cannot start missing ({missing}): No such file or directory" in log.read_text()
        assert not _alive(sleeper)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_the_ui_runs_the_webserver_and_the_daemon_not_dagster_dev(tmp_path):
    workspace = tmp_path / "workspace.yaml"
    webserver, daemon = dagster_ui_commands(workspace, host="127.0.0.1", port=3999)
    assert webserver == ChildCommand(
        "dagster-webserver",
        (str(Path(sys.executable).parent / "dagster-webserver"), "-h", "127.0.0.1", "-p", "3999", "-w", str(workspace)),
    )
    assert daemon == ChildCommand("dagster-daemon", (str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(workspace)))
    assert all(Path(command.argv[0]).is_file() for command in (webserver, daemon))


# --- the real `tt ui` ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.load(response)["data"]


def _server_info_status(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as response:
            return response.status
    except OSError:
        return None


def _queue_daemon_healthy(port: int) -> bool:
    statuses = _graphql(port, "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }")
    healthy = {s["daemonType"]: s["healthy"] for s in statuses["instance"]["daemonHealth"]["allDaemonStatuses"]}
    return bool(healthy.get("QUEUED_RUN_COORDINATOR"))


def _dagster_entries(folder: Path) -> set[str]:
    present = {name for name in DAGSTER_HOME_ENTRIES if (folder / name).exists()}
    return present | {path.name for path in folder.glob(".tmp_dagster_home_*")}


def _record_run_as_tt_does(tt_home: Path, db_url: str) -> str:
    """A run recorded on the instance ``tt`` opens for its own commands (DAGSTER_HOME = the
    repository root, variables from the settings)."""
    from tt_platform import orchestration
    from tt_platform.settings import get_settings

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TT_", "DAGSTER_"))}
    run_id = "0123456789abcdef0123456789abcdef"
    with mock.patch.dict(os.environ, clean | {"TT_HOME": str(tt_home), "TT_DB_URL": db_url}, clear=True):
        get_settings.cache_clear()
        try:
            with orchestration._instance(None, get_settings()) as instance:
                assert instance.root_directory.startswith(str(tt_home))
                instance.add_run(DagsterRun(job_name="recorded_by_tt", run_id=run_id))
        finally:
            get_settings.cache_clear()
    return run_id


@pytest.fixture
def ui_database_url(external_database_url, schema_registry) -> str:
    """An empty schema for this test's instance: no heartbeat of an earlier daemon is found there."""
    schema, url = schema_registry.create(external_database_url, prefix="tt_ui")
    yield url
    schema_registry.drop(external_database_url, schema)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_tt_ui_serves_the_instance_and_stops_cleanly(tmp_path, ui_database_url, signum):
    tt_home = tmp_path / "tt_home"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TT_", "DAGSTER_", "MLFLOW_"))}
    env |= {"TT_HOME": str(tt_home), "TT_DB_URL": ui_database_url}
    if "TT_PARTITION_START" in os.environ:  # the definitions read it
        env["TT_PARTITION_START"] = os.environ["TT_PARTITION_START"]
    in_checkout_before = _dagster_entries(REPO_ROOT)
    log = tmp_path / "tt-ui.log"
    processes: list[psutil.Process] = []
    with log.open("w") as out:
        ui = subprocess.Popen(
            [str(TT), "ui", "--port", str(port)], cwd=REPO_ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        assert _wait_until(lambda: ui.poll() is not None or _server_info_status(port) == 200, 120, 1), log.read_text()[-3000:]
        assert ui.poll() is None, log.read_text()[-3000:]
        assert f"Dagster UI on http://127.0.0.1:{port}" in log.read_text()

        processes += psutil.Process(ui.pid).children(recursive=True)
        commands = [" ".join(p.cmdline()) for p in processes]
        assert any("dagster-daemon run" in c for c in commands), commands
        assert any("dagster-webserver" in c for c in commands), commands
        assert not any(" dev " in c for c in commands), commands
        # the webserver sees the daemon's heartbeats, so both use one instance
        assert _wait_until(lambda: _queue_daemon_healthy(port), 60, 1), log.read_text()[-3000:]
        # ... and the run `tt` records there
        run_id = _record_run_as_tt_does(tt_home, ui_database_url)
        run = _graphql(port, f'{{ runOrError(runId: "{run_id}") {{ __typename ... on Run {{ jobName }} }} }}')["runOrError"]
        assert run == {"__typename": "Run", "jobName": "recorded_by_tt"}

        started = time.monotonic()
        ui.send_signal(signum)
        assert ui.wait(timeout=STOP_BUDGET_SECONDS + 5) == 0, log.read_text()[-3000:]
        assert _wait_until(lambda: not [p for p in processes if _alive(p.pid)], max(0.0, STOP_BUDGET_SECONDS - (time.monotonic() - started)))
        took = time.monotonic() - started
        assert took < STOP_BUDGET_SECONDS, f"stopping took {took:.1f} s"
        assert _server_info_status(port) is None
    finally:
        if ui.poll() is None:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait(timeout=10)
        for process in processes:
            if _alive(process.pid):
                process.kill()

    ui_home = tt_home / "dagster_home"
    assert (ui_home / "dagster.yaml").is_file()
    # Dagster's own files went to TT_HOME, none into the checkout
    assert {"logs", ".logs_queue"} <= _dagster_entries(ui_home)
    # Dagster's "seen" marker: no newsletter pop-up covers the UI of a new TT_HOME
    assert (ui_home / ".nux" / "nux.yaml").read_text().strip() == "seen: 1"
    assert _dagster_entries(REPO_ROOT) == in_checkout_before
