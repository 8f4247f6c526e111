"""kill -9 of the platform's long-running processes, and what a restart makes of it.

* ``tt ingest`` killed while its bars transaction is open (its rows deleted and half inserted):
  the store holds what it held before, and the rerun stores exactly a clean run's rows.
* ``tt train`` killed after its first periodic checkpoint: ``tt train --resume-checkpoint``
  finishes the policy, which loads, acts finitely on real observations and has its lineage.
* The live job killed between an order's submit and its acknowledgement, restarted, then run
  through socket drops, gateway restarts and 1100/1102 and 1100/1101 sequences: the order is not
  sent again, it is found at IB and booked, no order is ever at IB twice, positions agree. The
  same kill of ``tt live`` (the live_session job, a Dagster run), restarted with ``tt live``.

A killed Dagster run stays STARTED (nothing is left to report its end); the next ``tt`` on this
machine marks it FAILURE saying its process is gone (``tt_platform.pipeline.recovery``), and the
MLflow run of a killed training FAILED. The tests check both.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator import GatewayEmulator, ReplayConfig, serve_in_thread
from tt_platform.ib.emulator.sources import SyntheticBarSource
from tt_platform.live.config import parse_live_config
from tt_platform.live.launch import build_session, prepare, run
from tt_platform.live.policy_source import MODEL_HASH_KEY, file_sha256
from tt_platform.live.session import SessionHooks
from tt_platform.settings import PlatformSettings, get_settings
from tt_platform.store import live as live_store
from tt_platform.store.engine import create_store_engine
from tt_platform.store.policies import list_policies
from tt_platform.store.schema import prices
from tt_platform.training.checkpoint import CHECKPOINTS_DIR, LATEST_FILE, latest_checkpoint, load_checkpoint
from tt_platform.training.tracking import MlflowTracker
from tt_platform_tests.cli.test_concurrent_runs import _forget_bars
from tt_platform_tests.cli.test_tt_runs import dagster_home  # noqa: F401 - fixture
from tt_platform_tests.faults.gateway_faults import connectivity_blip, drop_every_client
from tt_platform_tests.faults.pg_interrupts import HeldKey, price_row, wait_backend_gone
from tt_platform_tests.faults.store_invariants import (
    assert_clean_run_rows,
    clean_run,
    duplicate_keys,
    partial_months,
)
from tt_platform_tests.faults.tt_runs import (
    assert_no_run_left_open,
    failure_message,
    instance_runs,
    kill_9,
    run_status,
    run_yaml,
    start_tt,
    stored_bars,
    tt_here,
    wait_for_started_run,
)
from tt_platform_tests.live.policy_factory import REPLAY_START, synthetic_source, train_tiny_policy
from tt_platform_tests.live.test_live_session_recovery import KILLED_SESSION, REPO, SESSION, _broker_orders, _config

pytestmark = pytest.mark.timeout(300)  # a restart that hangs fails with its stacks

KILLED_INGEST = "kill -9 ingestion (mid-write)"
KILLED_TRAINING = "kill -9 training"
KILLED_LIVE = "kill -9 live job (submit..ack)"
LIVE_DROP = "IB socket drop (live session)"
LIVE_RESTART = "IB gateway restart (live session)"
LIVE_CONNECTIVITY = "IB 1100/1101/1102 (live session)"
DAGSTER_MARKED = "killed Dagster run marked FAILURE by the next tt"

SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]
SEED = 5


def _gone_message(run_id: str) -> None:
    message = failure_message(run_id)
    assert "is gone (killed or crashed)" in message and "marked failed" in message, message


@pytest.mark.parametrize("store_backend", ["embedded"], indirect=True)
def test_ingest_killed_mid_write_then_rerun_gives_the_clean_rows(dagster_home, tmp_path, monkeypatch,  # noqa: F811
                                                                 fault_ledger):
    url = os.environ["TT_DB_URL"]
    first_half = run_yaml(tmp_path, "first-half", SYMBOLS, "2019-01-02", "2021-06-30", source="ib", seed=SEED)
    whole = run_yaml(tmp_path, "whole", SYMBOLS, "2019-01-02", "2021-12-31", source="ib", seed=SEED)
    with serve_in_thread(GatewayEmulator(SyntheticBarSource(SYMBOLS, seed=SEED))) as gateway:
        monkeypatch.setenv("IB_HOST", "127.0.0.1")
        monkeypatch.setenv("IB_PORT", str(gateway.port))

        def produce() -> pd.DataFrame:
            code, output = tt_here("ingest", "--config", str(whole))
            assert code == 0, output[-3000:]
            return stored_bars(url, SYMBOLS)

        clean = clean_run(("ib-kill", tuple(SYMBOLS), SEED), produce)
        _forget_bars(url)
        code, output = tt_here("ingest", "--config", str(first_half))  # what the store holds before
        assert code == 0, output[-3000:]
        before = stored_bars(url, SYMBOLS)
        assert_clean_run_rows(before, clean[clean["ts"] <= "2021-06-30"].reset_index(drop=True))

        # the second half's bars transaction waits at its last bar: deletes done, rows half in
        with HeldKey(url, prices, row=price_row(clean.iloc[-1], "ib")) as held:
            process, log = start_tt(tmp_path, "killed-ingest", "ingest", "--config", str(whole))
            try:
                killed_run = wait_for_started_run(process, log)
                writer = held.writer_pid()
                kill_9(process)
            finally:
                if process.poll() is None:
                    process.kill()
        fault_ledger.injected(KILLED_INGEST, 1)
        wait_backend_gone(url, writer)  # its transaction ended without a commit
        assert_clean_run_rows(stored_bars(url, SYMBOLS), before)
        assert run_status(killed_run.run_id).value == "STARTED"  # nobody reported its end
        fault_ledger.checked(KILLED_INGEST, "store = its state before the killed run (nothing half-written)")

        code, output = tt_here("ingest", "--config", str(whole))
    assert code == 0, output[-3000:]
    assert f"Dagster run {killed_run.run_id}" in output and "is gone" in output  # said so
    assert run_status(killed_run.run_id).value == "FAILURE"
    _gone_message(killed_run.run_id)
    assert instance_runs()[-1].status.value == "SUCCESS"
    assert_no_run_left_open()
    stored = stored_bars(url, SYMBOLS)
    assert_clean_run_rows(stored, clean)
    assert partial_months(stored, clean) == [] and duplicate_keys(url, prices) == 0
    fault_ledger.checked(KILLED_INGEST, "rerun = clean run's rows", "no duplicate rows", DAGSTER_MARKED)


TRAINING = """env:
  window_size: 10
  episode_length: 60
training:
  total_timesteps: 2048
  n_envs: 2
  n_steps: 64
  batch_size: 64
  n_epochs: 2
  net_arch: [16]
  checkpoint_every: 256
"""


def _wait_for_checkpoint(policies: Path, process: subprocess.Popen, log: Path, timeout: float = 240.0) -> Path:
    """The checkpoints folder of the policy being trained, once it has a complete checkpoint."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"tt train ended before its first checkpoint:\n{log.read_text()[-3000:]}"
        done = list(policies.glob(f"*/{CHECKPOINTS_DIR}/{LATEST_FILE}"))
        if done:
            return done[0].parent
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.mark.parametrize("store_backend", ["embedded"], indirect=True)
def test_training_killed_then_resumed_gives_a_valid_policy(dagster_home, tmp_path, fault_ledger):  # noqa: F811
    from stable_baselines3 import PPO

    from tt_platform.config.run_config import load_run_config
    from tt_platform.pipeline.training import load_market
    from tt_platform.training.trainer import make_vec_env

    url = os.environ["TT_DB_URL"]
    config = run_yaml(tmp_path, "kill-training", SYMBOLS[:3], "2020-01-02", "2021-12-31", source="synthetic",
                      seed=SEED, extra=TRAINING)
    code, output = tt_here("ingest", "--config", str(config))
    assert code == 0, output[-3000:]
    settings = get_settings()
    policies = settings.artifacts_dir / "policies"

    process, log = start_tt(tmp_path, "killed-training", "train", "--config", str(config))
    try:
        checkpoints = _wait_for_checkpoint(policies, process, log)
        killed_run = [r for r in instance_runs() if r.status.value == "STARTED"][-1]
        kill_9(process)
    finally:
        if process.poll() is None:
            process.kill()
    fault_ledger.injected(KILLED_TRAINING, 1)
    killed_at = latest_checkpoint(checkpoints)
    assert 256 <= killed_at.num_timesteps < 2048  # killed half way
    tracker = MlflowTracker(settings.mlflow_uri, "tt-platform")
    experiment = tracker.client.get_experiment_by_name("tt-platform").experiment_id
    killed_mlflow = tracker.client.search_runs([experiment], filter_string="attributes.status = 'RUNNING'")
    assert len(killed_mlflow) == 1
    assert run_status(killed_run.run_id).value == "STARTED"

    code, output = tt_here("train", "--config", str(config), "--no-features", "--resume-checkpoint",
                           str(checkpoints.parent))
    assert code == 0, output[-3000:]
    # the killed run, in Dagster and in MLflow, is marked failed by the resuming tt
    assert run_status(killed_run.run_id).value == "FAILURE"
    _gone_message(killed_run.run_id)
    assert tracker.client.get_run(killed_mlflow[0].info.run_id).info.status == "FAILED"
    assert instance_runs()[-1].status.value == "SUCCESS"
    assert_no_run_left_open()

    # the resumed policy: registered with its lineage, continued from the killed checkpoint
    engine = create_store_engine(url)
    try:
        registered = list_policies(engine)
        assert len(registered) == 1, registered
        policy = registered.iloc[0]
        lineage = policy["config"]["lineage"]
        for key in ("feature_set_hash", "data_snapshot_hash", "config_hash", "code_version", "train_end"):
            assert lineage[key], key
        assert lineage[MODEL_HASH_KEY] == file_sha256(policy["model_uri"])
        final = load_checkpoint(latest_checkpoint(checkpoints).path)
        assert final.num_timesteps == 2048
        assert final.lineage["resumed_from"] == str(killed_at.path)
        # it loads, and acts finitely on the observations of its own market
        run_config = load_run_config(config)
        market = load_market(engine, run_config).market
    finally:
        engine.dispose()
    model = PPO.load(policy["model_uri"], device="cpu")
    observations = make_vec_env(market, run_config.env, run_config.training).reset()
    actions, _ = model.predict(observations, deterministic=True)
    assert actions.shape[0] == run_config.training.n_envs and np.isfinite(actions).all()
    fault_ledger.checked(KILLED_TRAINING, "resumed from the last checkpoint", "policy loads, finite actions",
                         "lineage recorded", DAGSTER_MARKED, "killed MLflow run marked FAILED")


def _live_faults(gateway, emulator: GatewayEmulator, fired: dict[str, list]) -> Callable[[dict], None]:
    """Faults at set decisions of the restarted session, each once the previous one is over."""
    schedule = [
        (6, LIVE_DROP, lambda: drop_every_client(emulator)),
        (12, LIVE_DROP, lambda: drop_every_client(emulator)),
        (18, LIVE_RESTART, lambda: emulator.restart(down_seconds=200.0)),
        (26, LIVE_RESTART, lambda: emulator.restart(down_seconds=200.0)),
        (32, LIVE_CONNECTIVITY, lambda: connectivity_blip(emulator, 150.0)),  # 1100, then 1102
        (38, LIVE_CONNECTIVITY, lambda: connectivity_blip(emulator, 150.0, data_lost=True)),  # 1100, then 1101
    ]

    def on_decision(info: dict) -> None:
        done = sum(len(futures) for futures in fired.values())
        if done == len(schedule) or info["step"] < schedule[done][0]:
            return
        if any(not f.done() for futures in fired.values() for f in futures):
            return  # the previous fault is still going on
        if not emulator.running or not emulator.sessions:
            return  # the session decides on bars it holds while it reconnects: wait until it is back
        _, kind, make = schedule[done]
        fired.setdefault(kind, []).append(gateway.submit(make()))

    return on_decision


@pytest.mark.parametrize("store_backend", ["embedded"], indirect=True)
def test_live_session_killed_between_submit_and_ack_then_drops_restarts_and_connectivity(
        store_engine, store_url, tmp_path, caplog, fault_ledger):
    caplog.set_level(logging.INFO, logger="tt_platform.live.session")
    policy = train_tiny_policy(store_engine, tmp_path / "policies")
    emulator = GatewayEmulator(synthetic_source(), clock=ScaledClock(200.0),
                               replay=ReplayConfig(start=REPLAY_START, interval="1min", step_seconds=5.0))
    gateway = serve_in_thread(emulator)
    fired: dict[str, list] = {}
    try:
        mark = tmp_path / "killed-ref"
        env = os.environ | {
            "KILL_AT": "4", "KILL_MARK": str(mark), "STORE_URL": store_url, "TT_HOME": str(tmp_path / "home"),
            "SESSION_ID": SESSION, "PYTHONPATH": str(REPO),
            "SESSION_CONFIG": json.dumps(_config(policy.policy_id, gateway.port, tmp_path, 500)),
        }
        with open(tmp_path / "killed.log", "w") as out:
            killed = subprocess.run([sys.executable, "-c", KILLED_SESSION], env=env, cwd=REPO, stdout=out,
                                    stderr=subprocess.STDOUT, timeout=240)
        assert killed.returncode == -9, (tmp_path / "killed.log").read_text()[-3000:]
        fault_ledger.injected(KILLED_LIVE, 1)
        killed_ref = mark.read_text()
        assert live_store.get_order(store_engine, killed_ref)["status"] == "pending_submit"  # fate unknown here
        assert [o.order_ref for o in _broker_orders(emulator)].count(killed_ref) == 1  # but it reached IB

        config = parse_live_config(_config(policy.policy_id, gateway.port, tmp_path, 50))
        prepared = prepare(config, settings=PlatformSettings(TT_HOME=str(tmp_path / "home")), store=store_engine,
                           tracker=None)
        deadline = time.monotonic() + 240.0  # a session that stops deciding ends here, not at CI's limit
        session = build_session(prepared, session_id=SESSION, run_id="restarted-run", poll_seconds=0.05,
                                hooks=SessionHooks(decision=_live_faults(gateway, emulator, fired), stop_reason=lambda: (
                                    "test deadline passed" if time.monotonic() > deadline else None)))
        result = run(session)
    finally:
        gateway.stop()
    # a fault counts as it fired: a drop by the sockets it cut, the others once each
    counts = {kind: sum(r if isinstance(r := f.result(timeout=30), int) else 1 for f in futures)
              for kind, futures in fired.items()}
    for kind, count in counts.items():
        fault_ledger.injected(kind, count)
    assert result.status == "stopped" and result.reason.startswith("reached max_decisions"), (result, counts)
    assert {kind: len(futures) for kind, futures in fired.items()} == {LIVE_DROP: 2, LIVE_RESTART: 2,
                                                                        LIVE_CONNECTIVITY: 2}, counts
    assert all(f.result() >= 1 for f in fired[LIVE_DROP]), counts  # each drop cut the session's sockets
    assert result.reconnects >= 4
    messages = [r.getMessage() for r in caplog.records if r.name == "tt_platform.live.session"]
    restored = [i for i, m in enumerate(messages) if m.startswith(("IB connectivity 1102", "IB connectivity 1101"))]
    assert len(restored) == 2, messages[-40:]
    for start, end in zip(restored, restored[1:] + [len(messages)]):  # nothing goes out before a reconciliation
        assert any(m.startswith("reconciled") for m in messages[start:end]), messages[start:end]

    session_row = live_store.get_session(store_engine, SESSION)
    orders = live_store.session_orders(store_engine, SESSION)
    fills = live_store.session_fills(store_engine, SESSION)
    broker = _broker_orders(emulator)
    at_broker = Counter(o.order_ref for o in broker)
    # the killed order: not sent again, found at IB and booked
    assert at_broker[killed_ref] == 1
    killed_order = live_store.get_order(store_engine, killed_ref)
    assert killed_order["status"] in ("filled", "cancelled"), killed_order
    ticket = next(o for o in broker if o.order_ref == killed_ref)
    booked = fills[fills["order_id"] == killed_ref]["quantity"].abs().sum()
    assert booked == pytest.approx(ticket.filled, abs=1e-9)
    assert session_row["restarts"] == 1
    fault_ledger.checked(KILLED_LIVE, "order not re-sent", "found at IB and booked", "session restarts = 1")
    # no order twice at IB, none at IB the records do not know, nothing left open
    assert max(at_broker.values()) == 1, [ref for ref, n in at_broker.items() if n > 1]
    assert set(at_broker) <= set(orders["order_ref"]) and orders["order_ref"].is_unique
    assert not orders["status"].isin(live_store.ORDER_OPEN_STATUSES).any()
    # every execution at IB is one recorded fill, and positions agree with IB's
    assert {e.exec_id for e in emulator.broker.executions} == set(fills["fill_id"]) and fills["fill_id"].is_unique
    booked_by_symbol = fills.groupby("instrument")["quantity"].sum()
    for symbol, holding in emulator.broker.holdings.items():
        assert booked_by_symbol.get(symbol, 0.0) == pytest.approx(holding.quantity, abs=1e-9), symbol
    for kind in (LIVE_DROP, LIVE_RESTART, LIVE_CONNECTIVITY):
        fault_ledger.checked(kind, "0 duplicate orders", "positions = IB's", "every IB execution booked once",
                             "reconciled before trading again" if kind == LIVE_CONNECTIVITY else "reconnected")


# ``tt live`` with the kill of KILLED_SESSION: SIGKILL right after the KILL_AT-th order was
# written to the socket, before its acknowledgement is read
KILLED_TT_LIVE = textwrap.dedent("""
    import sys
    from tt_platform_tests.live.order_kill import kill_after_orders

    kill_after_orders()
    from tt_platform.cli import app

    app(["live", "--config", sys.argv[1]])
""")
TT_LIVE_SESSION = "tt-live-recovery"


def _tt_live_config(folder: Path, policy_id: str, port: int, max_decisions: int) -> Path:
    session = _config(policy_id, port, folder, max_decisions) | {"session_id": TT_LIVE_SESSION}
    path = folder / f"live-{max_decisions}.yaml"
    path.write_text(yaml.safe_dump({"ops": {"trading_session": {"config": session}}}))
    return path


@pytest.mark.parametrize("store_backend", ["embedded"], indirect=True)
def test_tt_live_killed_between_submit_and_ack_then_restarted_with_tt_live(dagster_home, store_engine, tmp_path,  # noqa: F811
                                                                            fault_ledger):
    policy = train_tiny_policy(store_engine, tmp_path / "policies")
    emulator = GatewayEmulator(synthetic_source(), clock=ScaledClock(200.0),
                               replay=ReplayConfig(start=REPLAY_START, interval="1min", step_seconds=5.0))
    with serve_in_thread(emulator) as gateway:
        mark = tmp_path / "killed-ref"
        env = os.environ | {"KILL_AT": "3", "KILL_MARK": str(mark), "PYTHONPATH": str(REPO)}
        killed_config = _tt_live_config(tmp_path, policy.policy_id, gateway.port, 500)
        with open(tmp_path / "killed-live.log", "w") as out:
            killed = subprocess.run([sys.executable, "-c", KILLED_TT_LIVE, str(killed_config)], env=env, cwd=tmp_path,
                                    stdout=out, stderr=subprocess.STDOUT, timeout=300)
        assert killed.returncode == -9, (tmp_path / "killed-live.log").read_text()[-3000:]
        fault_ledger.injected(KILLED_LIVE, 1)
        killed_ref = mark.read_text()
        (killed_run,) = [r for r in instance_runs() if r.job_name == "live_session"]
        assert killed_run.status.value == "STARTED"  # nobody reported its end
        assert live_store.get_order(store_engine, killed_ref)["status"] == "pending_submit"
        assert live_store.get_session(store_engine, TT_LIVE_SESSION)["status"] == "running"

        code, output = tt_here("live", "--config", str(_tt_live_config(tmp_path, policy.policy_id, gateway.port, 12)))
        assert code == 0, output[-3000:]
    # the restart marked the killed run failed (else it would refuse to start a second session
    # on the account), then resumed the session and ran it to its end
    assert run_status(killed_run.run_id).value == "FAILURE"
    _gone_message(killed_run.run_id)
    assert instance_runs()[-1].status.value == "SUCCESS"
    assert_no_run_left_open()
    session = live_store.get_session(store_engine, TT_LIVE_SESSION)
    assert session["restarts"] == 1 and session["status"] == "stopped", session
    at_broker = Counter(o.order_ref for o in _broker_orders(emulator))
    orders = live_store.session_orders(store_engine, TT_LIVE_SESSION)
    fills = live_store.session_fills(store_engine, TT_LIVE_SESSION)
    assert at_broker[killed_ref] == 1 and max(at_broker.values()) == 1
    assert live_store.get_order(store_engine, killed_ref)["status"] in ("filled", "cancelled")
    ticket = next(o for o in _broker_orders(emulator) if o.order_ref == killed_ref)
    assert fills[fills["order_id"] == killed_ref]["quantity"].abs().sum() == pytest.approx(ticket.filled, abs=1e-9)
    assert set(at_broker) <= set(orders["order_ref"]) and orders["order_ref"].is_unique
    assert {e.exec_id for e in emulator.broker.executions} == set(fills["fill_id"])
    booked = fills.groupby("instrument")["quantity"].sum()
    for symbol, holding in emulator.broker.holdings.items():
        assert booked.get(symbol, 0.0) == pytest.approx(holding.quantity, abs=1e-9), symbol
    fault_ledger.checked(KILLED_LIVE, "order not re-sent", "found at IB and booked", "0 duplicate orders",
                         "positions = IB's", DAGSTER_MARKED)
