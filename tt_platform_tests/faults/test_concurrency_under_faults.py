"""Everything at once on one store, under faults: an IB backfill (``tt ingest --source ib``), a
training (``tt train``), a walk-forward evaluation (``tt walk-forward``) and a paper session
(``tt live``), each a ``tt`` process of its own, while the gateway drops every socket and
restarts, and the ingest's and the session's database connections are terminated in the middle
of their writes (pg_terminate_backend; the server itself is never touched).

Nothing may hang (every process ends within the deadline), no month of the backfill may hold part
of its bars and none twice (after a rerun where the faulted run failed, exactly a clean run's
rows), the others end well, and the database still opens and answers afterwards."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from tt_platform.ib.emulator import serve_in_thread
from tt_platform.store import live as live_store
from tt_platform.store.embedded import EmbeddedPostgres
from tt_platform.store.engine import create_store_engine, ensure_schema
from tt_platform.store.schema import bar_coverage, prices
from tt_platform_tests.cli.test_tt_runs import dagster_home  # noqa: F401 - fixture
from tt_platform_tests.faults.concurrency_market import BACKFILL_RANGE, BACKFILL_SYMBOLS, concurrency_emulator
from tt_platform_tests.faults.concurrency_pg import BackendTerminator, sanity_counts, tagged_url
from tt_platform_tests.faults.pg_interrupts import FaultInjector, HeldKey, terminate_backend
from tt_platform_tests.faults.soak_faults import restart_gateway
from tt_platform_tests.faults.store_invariants import assert_clean_run_rows, duplicate_keys, partial_months
from tt_platform_tests.faults.tt_runs import TT, assert_no_run_left_open, run_yaml, stored_bars, tt_here
from tt_platform_tests.live.policy_factory import train_tiny_policy

SCALE = 50.0  # emulator clock: a replayed minute per 0.1 s
DEADLINE_SECONDS = 300.0  # all four processes, started together
LIVE_DECISIONS = 200
# emulator seconds before each symbol's history is answered (10, 20 and 30 s): the backfill is
# still fetching when the session trades and the gateway faults come, and it writes its last
# symbol (the one whose write is caught and terminated) after them
ANSWER_DELAYS = {symbol: 500.0 * (i + 1) for i, symbol in enumerate(BACKFILL_SYMBOLS)}
WALK_FORWARD_YAML = """
env:
  window_size: 5
  episode_length: 40
training:
  total_timesteps: 128
  n_steps: 64
  batch_size: 32
  n_envs: 1
  eval_episode: false
evaluation:
  walk_forward:
    scheme: rolling
    train_bars: 100
    min_train_bars: 80
    test_bars: 40
    purge_bars: 2
    max_folds: 2
"""
SANITY_TABLES = ["tt_prices", "tt_bar_coverage", "tt_policy", "tt_live_session", "tt_order", "tt_live_audit"]


def _start(folder: Path, name: str, url: str, *args: str) -> tuple[subprocess.Popen, Path, str]:
    """``tt ARGS`` in its own process, its store connections named ``tt-<name>-<random>``."""
    application = f"tt-{name}-{uuid.uuid4().hex[:8]}"
    log = folder / f"{name}.log"
    env = dict(os.environ) | {"TT_DB_URL": tagged_url(url, application)}
    with log.open("w") as out:
        process = subprocess.Popen([str(TT), *args], cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT)
    return process, log, application


def _backfilled(url: str) -> pd.DataFrame:
    """The stored daily bars of the backfill's symbols in its range."""
    bars = stored_bars(url, BACKFILL_SYMBOLS)
    first, last = (pd.Timestamp(day, tz="UTC") for day in BACKFILL_RANGE)
    return bars[(bars["ts"] >= first) & (bars["ts"] < last + pd.Timedelta(days=1))].reset_index(drop=True)


def _forget_backfill(url: str) -> None:
    """The backfill's bars and month coverage deleted, as if it never ran."""
    first, last = (pd.Timestamp(day, tz="UTC") for day in BACKFILL_RANGE)
    months = [m.strftime("%Y-%m") for m in pd.period_range(first.tz_localize(None), last.tz_localize(None), freq="M")]
    engine = create_store_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(prices.delete().where(prices.c.instrument.in_(BACKFILL_SYMBOLS), prices.c.interval == "1d",
                                               prices.c.ts >= first, prices.c.ts < last + pd.Timedelta(days=1)))
            conn.execute(bar_coverage.delete().where(bar_coverage.c.instrument.in_(BACKFILL_SYMBOLS),
                                                     bar_coverage.c.partition_key.in_(months)))
    finally:
        engine.dispose()


def _paper_yaml(folder: Path, policy_id: str, port: int) -> Path:
    path = folder / "paper.yaml"
    path.write_text(yaml.safe_dump({
        "mode": "paper", "policy": f"policy:{policy_id}", "clock": "feed", "session_id": "concurrent-paper",
        "max_decisions": LIVE_DECISIONS, "ib": {"port": port, "client_id": 71, "history_client_id": 72},
        "report_dir": str(folder / "reports"), "heartbeat_seconds": 0.5, "stale_after_seconds": 600.0,
        "risk": {"max_session_drawdown": 0.5, "daily_loss_limit": None}, "orders": {"min_order_value": 10.0},
    }))
    return path


@pytest.fixture
def store(store_backend, store_url, dagster_home, server_tmp_path, monkeypatch):  # noqa: F811
    """The store every process shares: a private embedded server (stopped and opened again after
    the test's runs), or the external server's test schema."""
    if store_backend == "external":
        yield store_url, None
        return
    server = EmbeddedPostgres(server_tmp_path / "pg", durable=True).start()
    try:
        engine = create_store_engine(server.url(), poolclass=sa.pool.NullPool)
        ensure_schema(engine)
        engine.dispose()
        monkeypatch.setenv("TT_DB_URL", server.url())
        yield server.url(), server
    finally:
        server.stop()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("store_backend", ["embedded", "external"], indirect=True)
def test_ingest_training_walk_forward_and_paper_session_at_once_under_faults(
        store, dagster_home, tmp_path, monkeypatch, fault_ledger):  # noqa: F811
    url, server = store
    backend = "embedded" if server is not None else "external"
    emulator = concurrency_emulator(SCALE)
    gateway = serve_in_thread(emulator)
    monkeypatch.setenv("IB_PORT", str(gateway.port))
    try:
        ib_config = run_yaml(tmp_path, "backfill", BACKFILL_SYMBOLS, *BACKFILL_RANGE, source="ib")
        wf_config = run_yaml(tmp_path, "train", BACKFILL_SYMBOLS, "2020-01-02", "2020-12-31", source="synthetic",
                             seed=11, extra=WALK_FORWARD_YAML)
        # a clean backfill first: the rows every month must end up with
        code, out = tt_here("ingest", "--config", str(ib_config))
        assert code == 0, out[-3000:]
        clean = _backfilled(url)
        _forget_backfill(url)
        assert _backfilled(url).empty
        code, out = tt_here("ingest", "--config", str(wf_config))
        assert code == 0, out[-3000:]
        engine = create_store_engine(url)
        policy = train_tiny_policy(engine, tmp_path / "policies")
        paper = _paper_yaml(tmp_path, policy.policy_id, gateway.port)
        # slow answers keep the backfill's requests in flight while the faults come
        emulator.faults = replace(emulator.faults, historical_delay_by_symbol=ANSWER_DELAYS)

        started = time.monotonic()
        runs = {
            "ingest": _start(tmp_path, "ingest", url, "ingest", "--config", str(ib_config)),
            "train": _start(tmp_path, "train", url, "train", "--config", str(wf_config)),
            "walk-forward": _start(tmp_path, "walk-forward", url, "walk-forward", "--config", str(wf_config)),
            "live": _start(tmp_path, "live", url, "live", "--config", str(paper)),
        }
        # the backfill is caught inside its transaction on a month (its delete done, its insert
        # waiting on a key held from another connection) and its backend terminated there
        held = HeldKey(url, prices, row=_held_row(clean)).__enter__()
        backfill_cut = FaultInjector(held, lambda pid: _terminate(url, pid, runs["ingest"][2]), DEADLINE_SECONDS)
        backfill_cut.start()
        # the session recording a decision, once it trades (a fault at its start fails the run
        # before anything is written, by design: the job is started again)
        session_cut = BackendTerminator(url, runs["live"][2], r"^\s*(insert|update).*tt_",
                                        ready=lambda: _decisions(engine, "concurrent-paper") >= 20).start()
        try:
            faults = _gateway_faults(gateway, emulator, engine, started)
            ended = _wait(runs, started)
        finally:
            session_cut.stop()
            held.__exit__(None, None, None)
        wall = time.monotonic() - started

        logs = {name: log.read_text() for name, (_, log, _) in runs.items()}
        hung = [name for name, code in ended.items() if code is None]
        assert not hung, f"still running after {DEADLINE_SECONDS:g} s (killed): {hung}\n" + \
            "\n".join(f"--- {name}\n{logs[name][-2000:]}" for name in hung)
        for name in ("train", "walk-forward", "live"):
            assert ended[name] == 0, f"tt {name} ended with {ended[name]}:\n{logs[name][-3000:]}"
        backfill_cut.join_and_check()  # caught and terminated mid-write
        assert not session_cut.errors, session_cut.errors
        ingest_writes_cut, session_writes_cut = 1, len(session_cut.terminated)
        assert faults["drop"] == 1 and faults["restart"] == 1, faults
        assert 71 in faults["dropped_clients"], f"the drop missed the session: {faults}"
        assert ended["ingest"] != 0 and "lost the connection to PostgreSQL" in logs["ingest"], logs["ingest"][-3000:]

        # the backfill: no month half-written, no bar twice, whatever became of the run
        stored = _backfilled(url)
        assert duplicate_keys(url, prices) == 0
        assert partial_months(stored, clean) == []
        if ended["ingest"] != 0:  # a terminated write may fail the run: the rerun completes it
            emulator.faults = replace(emulator.faults, historical_delay_by_symbol={})
            code, out = tt_here("ingest", "--config", str(ib_config))
            assert code == 0, out[-3000:]
            stored = _backfilled(url)
        assert_clean_run_rows(stored, clean)
    finally:
        gateway.stop()
    session = live_store.get_session(engine, "concurrent-paper")
    assert session["status"] == "stopped", session
    assert len(live_store.read_audit(engine, "concurrent-paper")) >= LIVE_DECISIONS
    engine.dispose()
    assert_no_run_left_open()

    # the database opens again (the embedded server stopped and started) and answers
    if server is not None:
        server.stop()
        server.start()
    counts = sanity_counts(url, SANITY_TABLES)
    assert counts["tt_prices"] >= len(clean) and counts["tt_policy"] >= 1 and counts["tt_live_session"] == 1

    label = f"concurrent runs, {backend}"
    invariants = ("every process ended within the deadline", "no half-written month", "no bar twice",
                  "rows = clean run", "training, walk-forward and paper session succeeded", "database reopens")
    for kind, count in ((f"IB socket drop ({label})", faults["drop"]), (f"IB gateway restart ({label})", faults["restart"]),
                        (f"pg_terminate_backend, backfill writer ({label})", ingest_writes_cut),
                        (f"pg_terminate_backend, paper session ({label})", session_writes_cut)):
        fault_ledger.injected(kind, count)
        fault_ledger.checked(kind, *invariants)
    fault_ledger.measured(f"concurrent runs ({backend})", "wall seconds", round(wall, 1))
    fault_ledger.measured(f"concurrent runs ({backend})", "backfill connected at the drop", int(17 in faults["dropped_clients"]))


def _held_row(clean: pd.DataFrame) -> dict:
    """A key the backfill writes (its last symbol's third month), with made-up values."""
    bar = clean[(clean["symbol"] == BACKFILL_SYMBOLS[-1]) & (clean["ts"].dt.month == 3)].iloc[0]
    return {"instrument": bar["symbol"], "interval": "1d", "adjusted": False, "ts": bar["ts"].to_pydatetime(),
            "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0, "source": "held"}


def _terminate(url: str, pid: int, application_name: str) -> None:
    """Terminate the waiting writer, having checked that it is the backfill's connection."""
    engine = create_store_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            name = conn.execute(sa.text("SELECT application_name FROM pg_stat_activity WHERE pid = :pid"),
                                {"pid": pid}).scalar_one()
    finally:
        engine.dispose()
    assert name == application_name, f"the writer waiting on the held key is {name!r}, not the backfill"
    terminate_backend(url, pid)


def _decisions(engine, session_id: str) -> int:
    return int(live_store.next_step(engine, session_id))


def _gateway_faults(gateway, emulator, engine, started: float) -> dict[str, object]:
    """Once the paper session trades: every socket dropped (after 10 decisions), then a gateway
    restart (after 40); how many of each fired, and which client ids the drop cut."""
    fired: dict[str, object] = {"drop": 0, "restart": 0, "dropped_clients": []}

    async def drop() -> list[int]:
        clients = list(emulator.sessions.values())
        for client in clients:
            client.close()
        return sorted(client.client_id for client in clients)

    while time.monotonic() - started < DEADLINE_SECONDS and not fired["restart"]:
        decisions = _decisions(engine, "concurrent-paper")
        if not fired["drop"] and decisions >= 10:
            fired["dropped_clients"] = gateway.call(drop())
            fired["drop"] = 1
        elif fired["drop"] and decisions >= 40:
            fired["restart"] = gateway.call(restart_gateway(emulator, down_seconds=60.0), timeout=60)
        time.sleep(0.1)
    return fired


def _wait(runs, started: float) -> dict[str, int | None]:
    """Each process's exit code, None for one still running at the deadline (then killed)."""
    ended: dict[str, int | None] = {}
    for name, (process, _, _) in runs.items():
        try:
            ended[name] = process.wait(timeout=max(1.0, DEADLINE_SECONDS - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            ended[name] = None
            process.kill()
            process.wait(30)
    return ended
