"""Runs started at the same time do not fight: over the store, the universe or IB client ids.

Each test starts real ``tt ingest`` processes at once on one Dagster instance and one store
schema (the ``dagster_home`` fixture), then checks what a user would: every run ended well, the
universe is still the watchlist's, and the stored bars are exactly those one run alone stores.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import pandas as pd
import sqlalchemy as sa

from tt_platform.store.engine import create_store_engine
from tt_platform.store.prices import read_bars
from tt_platform.store.registry import read_instruments
from tt_platform_tests.cli.test_tt_runs import dagster_home  # noqa: F401 - fixture

# several tt processes at once: over a minute; .ci/run runs it with make test-slow
pytestmark = pytest.mark.slow

TT = Path(sys.executable).with_name("tt")
UNIVERSE = ["AAA", "BBB", "CCC", "DDD"]


def _run_yaml(tmp_path: Path, source: str) -> Path:
    path = tmp_path / f"{source}.yaml"
    path.write_text(
        "name: concurrent\n"
        f"universe:\n  symbols: [{', '.join(UNIVERSE)}]\n"
        f"data:\n  source: {source}\n  start: 2021-01-04\n  end: 2021-03-31\n  seed: 5\n"
    )
    return path


def _instance_ready() -> None:
    """Create the test instance's SQLite tables once, as a first ``tt`` command would."""
    with dg.DagsterInstance.get() as instance:
        instance.get_runs(limit=1)


def _start(tmp_path: Path, name: str, *args: str, env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{name}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(TT), "ingest", *args], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )
    return process, log


def _wait_all(started: list[tuple[subprocess.Popen, Path]], timeout: float = 420) -> list[str]:
    deadline = time.monotonic() + timeout
    outputs = []
    for process, log in started:
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if process.poll() is None:
                process.kill()
        outputs.append(log.read_text())
        assert process.returncode == 0, f"{log.name} ended with {process.returncode}:\n{outputs[-1][-3000:]}"
    return outputs


def _stored(url: str) -> pd.DataFrame:
    engine = create_store_engine(url)
    try:
        bars = read_bars(engine, UNIVERSE, interval="1d")
        instruments = read_instruments(engine)
    finally:
        engine.dispose()
    active = set(instruments[instruments["active"]]["symbol"])
    assert active == set(UNIVERSE), f"the universe changed: active {sorted(active)}"
    return bars.sort_values(["symbol", "ts"]).reset_index(drop=True)


def _forget_bars(url: str) -> None:
    engine = create_store_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM tt_prices"))
            conn.execute(sa.text("DELETE FROM tt_bar_coverage"))
    finally:
        engine.dispose()


def test_a_full_run_and_two_overlapping_subset_runs_at_once_all_end_well_and_store_what_one_run_stores(
    tmp_path, dagster_home  # noqa: F811
):
    config = str(_run_yaml(tmp_path, "synthetic"))
    env = dict(os.environ)
    _instance_ready()
    runs = [
        _start(tmp_path, "full", "--config", config, env=env),
        _start(tmp_path, "abc", "--config", config, "--symbols", "AAA,BBB,CCC", env=env),
        _start(tmp_path, "bcd", "--config", config, "--symbols", "BBB,CCC,DDD", env=env),
    ]
    _wait_all(runs)
    together = _stored(os.environ["TT_DB_URL"])
    assert sorted(together["symbol"].unique()) == UNIVERSE
    assert not together.duplicated(["symbol", "ts"]).any()

    _forget_bars(os.environ["TT_DB_URL"])
    _wait_all([_start(tmp_path, "alone", "--config", config, env=env)])
    alone = _stored(os.environ["TT_DB_URL"])
    pd.testing.assert_frame_equal(together, alone)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, gateway: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert gateway.poll() is None, "the gateway emulator ended before it listened"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the gateway emulator did not listen on {port} within {timeout} s")


def test_two_ib_runs_at_once_use_distinct_client_ids_and_say_so(tmp_path, dagster_home):  # noqa: F811
    from tt_platform.ib.client_ids import ClientIdLease
    from tt_platform.settings import get_settings

    port = _free_port()
    gateway = subprocess.Popen(
        [str(TT), "gateway-sim", "--port", str(port), "--synthetic", "*", "--seed", "5", "--no-pacing"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    # a third client (a live session, say) holds id 17 for the whole test, so both runs must move
    holder = ClientIdLease(get_settings().home / "locks", "127.0.0.1", port, 17)
    assert holder.acquire() == 17
    try:
        _wait_for_port(port, gateway)
        _instance_ready()
        config = str(_run_yaml(tmp_path, "ib"))
        env = dict(os.environ, IB_HOST="127.0.0.1", IB_PORT=str(port), IB_CLIENT_ID="17")
        outputs = _wait_all([
            _start(tmp_path, "first", "--config", config, "--symbols", "AAA,BBB,CCC", env=env),
            _start(tmp_path, "second", "--config", config, "--symbols", "BBB,CCC,DDD", env=env),
        ])
    finally:
        holder.release()
        gateway.terminate()
        gateway.wait(timeout=30)
    notice = f"IB client id 17 at 127.0.0.1:{port} is used by another run on this machine; this run uses "
    assert all(notice in output for output in outputs), [o[-2000:] for o in outputs]
    assert all("error 326" not in output.lower() for output in outputs)
    stored = _stored(os.environ["TT_DB_URL"])
    assert sorted(stored["symbol"].unique()) == UNIVERSE
