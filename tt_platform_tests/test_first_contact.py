"""First contact: in a fresh clone, with nothing but the README's setup, plain Dagster commands
run from the repository root work on the embedded store (or say in one line what is wrong).

The clone gets the committed files plus the working tree's changes, and its own code comes first
on PYTHONPATH. No TT_HOME, TT_DB_URL or TT_DAGSTER_* variable is set: TT_HOME defaults to
``<clone>/.tt_home``. Output goes to files (the code servers Dagster spawns keep pipes open).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tt_platform.runtime import REPO_ROOT
from tt_platform.store.embedded import EmbeddedPostgres

# fresh clones, the embedded server and real dagster commands: over a minute; .ci/run runs it with make test-slow
pytestmark = pytest.mark.slow

DAGSTER = Path(sys.executable).with_name("dagster")
DAGSTER_DAEMON = Path(sys.executable).with_name("dagster-daemon")
TT = Path(sys.executable).with_name("tt")
RUN_YAML = """
name: first-contact
universe:
  symbols: [AAA, BBB]
data:
  source: synthetic
  start: 2021-01-04
  end: 2021-02-26
  seed: 11
"""


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("first-contact") / "tt-platform"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(root)], check=True, capture_output=True)
    changed = _git("diff", "--name-only", "HEAD").split() + _git("ls-files", "--others", "--exclude-standard").split()
    for name in changed:
        source = REPO_ROOT / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
        elif not source.exists():
            (root / name).unlink(missing_ok=True)
    yield root
    EmbeddedPostgres(root / ".tt_home" / "pg").stop()


def _env(clone: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not (k.startswith(("TT_", "DAGSTER_")) or k.startswith("MLFLOW_"))}
    env["PYTHONPATH"] = str(clone)
    # deployment settings the definitions read stay as the session has them
    if "TT_PARTITION_START" in os.environ:
        env["TT_PARTITION_START"] = os.environ["TT_PARTITION_START"]
    return env | extra


def _run(clone: Path, log: Path, *command: str, env: dict[str, str], timeout: float = 300) -> tuple[int, str]:
    with log.open("w") as out:
        done = subprocess.run(
            list(command), cwd=clone, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            timeout=timeout,
        )
    return done.returncode, log.read_text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_dagster_definitions_validate_works_from_a_fresh_clone(clone, tmp_path):
    code, output = _run(
        clone, tmp_path / "validate.log", str(DAGSTER), "definitions", "validate", "-w", "workspace.yaml", env=_env(clone)
    )
    assert code == 0, output[-3000:]
    assert "TT_DAGSTER_PG_URL" not in output
    assert "All code locations passed validation" in output
    assert (clone / ".tt_home" / "pg").is_dir()  # the embedded store, under the default TT_HOME


def test_dagster_job_launch_runs_on_the_embedded_store_from_a_fresh_clone(clone, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(RUN_YAML)
    launch = tmp_path / "launch.yaml"
    code, output = _run(clone, tmp_path / "config.log", str(TT), "launch-config", "-c", str(config), "-o", str(launch), env=_env(clone))
    assert code == 0, output
    # `dagster job launch` needs DAGSTER_HOME (Dagster's own rule): the repository root
    env = _env(clone, DAGSTER_HOME=str(clone))
    # launched runs wait in the instance's queue until a daemon starts them
    with (tmp_path / "daemon.log").open("w") as out:
        daemon = subprocess.Popen([str(DAGSTER_DAEMON), "run", "-w", "workspace.yaml"], cwd=clone, env=env,
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        code, output = _run(
            clone, tmp_path / "launch.log", str(DAGSTER), "job", "launch", "-w", "workspace.yaml", "-j", "universe_job",
            "-c", str(launch), env=env,
        )
        assert code == 0, output[-3000:]
        assert "TT_DAGSTER_PG_URL" not in output

        probe = (
            "import time, dagster as dg\n"
            "with dg.DagsterInstance.get() as instance:\n"
            "    for _ in range(240):\n"
            "        runs = instance.get_runs(limit=1)\n"
            "        if runs and runs[0].is_finished:\n"
            "            queued = instance.get_records_for_run(runs[0].run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED).records\n"
            "            print(runs[0].job_name, runs[0].status.value, 'queued' if queued else 'not queued'); break\n"
            "        time.sleep(0.5)\n"
        )
        code, output = _run(clone, tmp_path / "probe.log", sys.executable, "-c", probe, env=env, timeout=180)
        assert code == 0, output[-3000:]
        assert output.strip().splitlines()[-1] == "universe_job SUCCESS queued", output[-3000:]
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=10)


def test_dagster_dev_serves_the_ui_from_a_fresh_clone(clone, tmp_path):
    port = _free_port()
    log = tmp_path / "dev.log"
    with log.open("w") as out:
        dev = subprocess.Popen(
            [str(DAGSTER), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=clone, env=_env(clone), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        status = None
        while time.monotonic() < deadline and dev.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as response:
                    status = response.status
                    break
            except OSError:
                time.sleep(1)
        assert status == 200, log.read_text()[-3000:]
        assert "TT_DAGSTER_PG_URL" not in log.read_text()
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGINT)
            try:
                dev.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(dev.pid, signal.SIGKILL)
                dev.wait(timeout=10)


def test_dagster_commands_say_in_one_line_when_the_database_is_unreachable(clone, tmp_path):
    port = _free_port()
    env = _env(clone, TT_DB_URL=f"postgresql+psycopg2://trader:s3cret@127.0.0.1:{port}/tt")
    code, output = _run(
        clone, tmp_path / "validate.log", str(DAGSTER), "definitions", "validate", "-w", "workspace.yaml", env=env, timeout=120
    )
    assert code != 0
    assert "Traceback" not in output and "s3cret" not in output
    last = output.strip().splitlines()[-1]
    assert last.startswith(f"tt-platform's Dagster instance: cannot connect to PostgreSQL at 127.0.0.1:{port}, database 'tt'"), last
