"""PostgreSQL faults in the middle of a store write, during real runs (``tt ingest``, and the
features asset run the way ``tt`` runs assets).

Each write is caught inside its transaction (``pg_interrupts.HeldKey``: a second connection holds
one key the write needs, so the write waits there with part of its work done), then faulted:

* its backend terminated with ``pg_terminate_backend`` from another connection (on the machine's
  shared server: only that backend, never the server);
* the embedded (pgserver) server stopped and started again, or crashed (immediate shutdown,
  recovery from the WAL at the next start).

After each fault the write landed not at all: the store holds exactly what it held before (no
half-written month, no duplicate key), the run ended FAILURE in the Dagster instance with a line
naming the server, and a rerun stores exactly a clean run's rows.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from tt_platform.orchestration import run_selection
from tt_platform.settings import get_settings
from tt_platform.store.coverage import read_coverage
from tt_platform.store.embedded import EmbeddedPostgres
from tt_platform.store.engine import create_store_engine, ensure_schema, server_location
from tt_platform.store.schema import bar_coverage, feature_values, prices
from tt_platform_tests.cli.test_concurrent_runs import _forget_bars
from tt_platform_tests.cli.test_failure_lines import _assert_run_failure_line
from tt_platform_tests.cli.test_tt_runs import dagster_home  # noqa: F401 - fixture
from tt_platform_tests.faults.pg_interrupts import FaultInjector, HeldKey, coverage_row, price_row, terminate_backend
from tt_platform_tests.faults.store_invariants import (
    assert_clean_run_rows,
    clean_run,
    duplicate_keys,
    partial_months,
    stored_features,
)
from tt_platform_tests.faults.tt_runs import assert_no_run_left_open, instance_runs, run_yaml, stored_bars, tt_here

pytestmark = pytest.mark.timeout(240)  # a run that hangs after a fault fails with its stacks

SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]
FIRST, LAST = "2019-01-02", "2021-12-31"
SEED = 5
TERMINATED = "PostgreSQL backend terminated mid-write"
RESTARTED = "PostgreSQL server restart mid-write"
CRASHED = "PostgreSQL server crash mid-write"


def _config(folder: Path) -> Path:
    return run_yaml(folder, "store-faults", SYMBOLS, FIRST, LAST, source="synthetic", seed=SEED)


def _clean_bars(config: Path, url: str) -> pd.DataFrame:
    """A clean ingest's bars (computed once per test run), the store emptied afterwards."""
    def produce() -> pd.DataFrame:
        code, output = tt_here("ingest", "--config", str(config))
        assert code == 0, output[-3000:]
        return stored_bars(url, SYMBOLS)

    rows = clean_run(("synthetic", tuple(SYMBOLS), FIRST, LAST, SEED), produce)
    _forget_bars(url)
    return rows


def _coverage(url: str) -> pd.DataFrame:
    engine = create_store_engine(url, poolclass=sa.pool.NullPool)
    try:
        return read_coverage(engine, interval="1d", adjusted=False, symbols=SYMBOLS)
    finally:
        engine.dispose()


def _ingest_with_fault(config: Path, held: HeldKey, fault) -> tuple[int, str]:
    """``tt ingest`` while ``fault(writer_pid)`` hits its write caught at ``held``."""
    injector = FaultInjector(held, fault)
    injector.start()
    try:
        return tt_here("ingest", "--config", str(config))
    finally:
        injector.join_and_check()


def _last_line(output: str) -> str:
    return [line for line in output.splitlines() if line.strip()][-1]


def _assert_failed_naming_the_server(code: int, output: str, url: str) -> None:
    assert code == 1, output[-3000:]
    last = _last_line(output)
    _assert_run_failure_line(last, f"lost the connection to PostgreSQL at {server_location(url)} (")
    assert "nothing of the interrupted write is stored" in last
    assert "INSERT" not in last and "DELETE" not in last and "COPY" not in last
    assert instance_runs()[-1].status.value == "FAILURE"
    assert_no_run_left_open()


def _assert_rerun_gives_the_clean_rows(config: Path, url: str, clean: pd.DataFrame) -> None:
    code, output = tt_here("ingest", "--config", str(config))
    assert code == 0, output[-3000:]
    assert instance_runs()[-1].status.value == "SUCCESS"
    assert_no_run_left_open()
    stored = stored_bars(url, SYMBOLS)
    assert_clean_run_rows(stored, clean)
    assert partial_months(stored, clean) == []
    assert duplicate_keys(url, prices) == 0 and duplicate_keys(url, bar_coverage) == 0
    coverage = _coverage(url)
    months = {key for key in pd.period_range(FIRST, LAST, freq="M").strftime("%Y-%m")}
    assert set(zip(coverage["instrument"], coverage["partition_key"])) == {(s, m) for s in SYMBOLS for m in months}


# the embedded server, and the machine's shared one (only the writer's backend is terminated there)
@pytest.mark.parametrize("store_backend", ["embedded", "external"], indirect=True)
def test_backend_terminated_mid_bars_write_and_mid_coverage_write(dagster_home, tmp_path, fault_ledger):  # noqa: F811
    url = os.environ["TT_DB_URL"]
    config = _config(tmp_path)
    clean = _clean_bars(config, url)
    last = clean.iloc[-1]

    # the bars transaction, caught with its delete done and its insert half way
    with HeldKey(url, prices, row=price_row(last, "synthetic")) as held:
        code, output = _ingest_with_fault(config, held, lambda pid: terminate_backend(url, pid))
    fault_ledger.injected(TERMINATED, 1)
    _assert_failed_naming_the_server(code, output, url)
    assert stored_bars(url, SYMBOLS).empty and _coverage(url).empty  # not at all
    fault_ledger.checked(TERMINATED, "bars write landed not at all", "Dagster run FAILURE naming the server")

    # the bars commit in their own transaction; the coverage written after them is caught
    with HeldKey(url, bar_coverage, row=coverage_row(last, "synthetic")) as held:
        code, output = _ingest_with_fault(config, held, lambda pid: terminate_backend(url, pid))
    fault_ledger.injected(TERMINATED, 1)
    _assert_failed_naming_the_server(code, output, url)
    assert_clean_run_rows(stored_bars(url, SYMBOLS), clean)  # the bars landed whole
    assert _coverage(url).empty  # the months are not marked fetched, so the rerun fetches them again
    fault_ledger.checked(TERMINATED, "coverage write landed not at all", "Dagster run FAILURE naming the server")

    _assert_rerun_gives_the_clean_rows(config, url, clean)
    fault_ledger.checked(TERMINATED, "rerun = clean run's rows", "no duplicate rows", "no half-written month")


def _features_run(config: Path) -> dict:
    """The features asset over every month of the range, run the way ``tt`` runs assets."""
    get_settings.cache_clear()
    return run_selection(["features"], config_path=config, overrides={}, with_partitions=True, notice=lambda line: None)


def _feature_row(url: str, key: dict) -> dict:
    engine = create_store_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            stored = conn.execute(sa.select(feature_values).where(
                *[feature_values.c[name] == value for name, value in key.items()])).mappings().one()
    finally:
        engine.dispose()
    return dict(stored)


@pytest.mark.parametrize("store_backend", ["embedded", "external"], indirect=True)
def test_backend_terminated_mid_feature_write(dagster_home, tmp_path, fault_ledger):  # noqa: F811
    url = os.environ["TT_DB_URL"]
    config = _config(tmp_path)
    code, output = tt_here("ingest", "--config", str(config))
    assert code == 0, output[-3000:]
    outcome = _features_run(config)
    assert outcome["success"], outcome
    clean = stored_features(url)
    assert len(clean) > 0
    last = clean.iloc[-1]
    key = {"feature_set_hash": last["feature_set_hash"], "instrument": last["symbol"], "ts": last["ts"].to_pydatetime()}
    row = _feature_row(url, key)

    def terminated_features_run(held: HeldKey) -> dict:
        injector = FaultInjector(held, lambda pid: terminate_backend(url, pid))
        injector.start()
        try:
            return _features_run(config)
        finally:
            injector.join_and_check()

    # a rewrite over stored features, caught in its delete: the old rows must all stay
    with HeldKey(url, feature_values, where=key) as held:
        outcome = terminated_features_run(held)
    fault_ledger.injected(TERMINATED, 1)
    assert not outcome["success"] and "lost the connection to PostgreSQL" in outcome["error"], outcome
    pd.testing.assert_frame_equal(stored_features(url), clean)
    fault_ledger.checked(TERMINATED, "feature rewrite landed not at all (old rows intact)")

    # a first write, caught half way through its COPY: nothing of it may stay
    engine = create_store_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.delete(feature_values))
    engine.dispose()
    with HeldKey(url, feature_values, row=row) as held:
        outcome = terminated_features_run(held)
    fault_ledger.injected(TERMINATED, 1)
    assert not outcome["success"] and "lost the connection to PostgreSQL" in outcome["error"], outcome
    assert stored_features(url).empty
    fault_ledger.checked(TERMINATED, "feature write landed not at all")
    statuses = [run.status.value for run in instance_runs()]
    assert statuses[-2:] == ["FAILURE", "FAILURE"], statuses

    outcome = _features_run(config)
    assert outcome["success"], outcome
    assert duplicate_keys(url, feature_values) == 0
    pd.testing.assert_frame_equal(stored_features(url), clean)
    assert_no_run_left_open()
    fault_ledger.checked(TERMINATED, "feature rerun = clean run's rows", "no duplicate rows")


def _crash(server: EmbeddedPostgres) -> None:
    """Immediate shutdown (SIGQUIT to the postmaster): every process exits at once, no
    checkpoint, as in a crash; the next start recovers from the WAL."""
    pid = int((server.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + 60
    while (server.data_dir / "postmaster.pid").exists():
        assert time.monotonic() < deadline, "the embedded PostgreSQL did not go down"
        time.sleep(0.05)


@pytest.mark.parametrize("store_backend", ["embedded"], indirect=True)
def test_embedded_server_restarted_and_crashed_mid_write(dagster_home, tmp_path, server_tmp_path, monkeypatch,  # noqa: F811
                                                         fault_ledger):
    # a server of its own: the shared embedded server holds the schemas of the other tests
    server = EmbeddedPostgres(server_tmp_path / "pg").start()
    try:
        url = server.url()
        monkeypatch.setenv("TT_DB_URL", url)
        engine = create_store_engine(url, poolclass=sa.pool.NullPool)
        ensure_schema(engine)
        engine.dispose()
        config = _config(tmp_path)
        clean = _clean_bars(config, url)
        last = clean.iloc[-1]

        def restart(pid: int) -> None:
            server.stop()  # fast shutdown: sessions ended, transactions rolled back
            server.start()

        with HeldKey(url, prices, row=price_row(last, "synthetic")) as held:
            code, output = _ingest_with_fault(config, held, restart)
        fault_ledger.injected(RESTARTED, 1)
        _assert_failed_naming_the_server(code, output, url)
        assert stored_bars(url, SYMBOLS).empty and _coverage(url).empty
        fault_ledger.checked(RESTARTED, "bars write landed not at all", "Dagster run FAILURE naming the server")

        def crash_and_start(pid: int) -> None:
            _crash(server)
            server.start()

        with HeldKey(url, bar_coverage, row=coverage_row(last, "synthetic")) as held:
            code, output = _ingest_with_fault(config, held, crash_and_start)
        fault_ledger.injected(CRASHED, 1)
        _assert_failed_naming_the_server(code, output, url)
        assert_clean_run_rows(stored_bars(url, SYMBOLS), clean)  # committed before the crash: kept whole
        assert _coverage(url).empty
        fault_ledger.checked(CRASHED, "committed bars survive whole", "coverage write landed not at all",
                             "Dagster run FAILURE naming the server")

        _assert_rerun_gives_the_clean_rows(config, url, clean)
        for kind in (RESTARTED, CRASHED):
            fault_ledger.checked(kind, "rerun = clean run's rows", "no duplicate rows", "no half-written month")
    finally:
        server.stop()
