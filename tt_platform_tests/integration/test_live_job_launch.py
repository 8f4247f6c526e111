"""A live trading session started with the real ``dagster job launch`` and stopped as the UI's
Terminate does, against the IB Gateway emulator.

The job runs as deployed: the CLI spawns a code server, the run worker trades a small real policy
(trained and registered by ``policy_factory``) in live mode with orders that reach the emulator,
which replays synthetic minute bars from ``REPLAY_START`` at about one bar every 0.6 s. Terminating through the instance's run coordinator (the UI's terminate mutation: run
launcher -> CANCELING -> gRPC CancelExecution -> SIGINT in the run) must end the run CANCELED,
not FAILURE, with the session closed as canceled, nothing left open at the broker or in the
records, the heartbeats recorded as observations of ``trading_book`` and the day's report written.

Two cases. Market orders (they fill on arrival), terminated as the UI does it, where the
interrupt usually reaches the session first. Passive limit orders that rest at the gateway, whose
termination's interrupt is held back until the session, having seen the run CANCELING, is
already stopping (a slow path from the webserver to the run): the stop must cancel the resting
orders at the broker, and the interrupt lands in the middle of the stop's persisting.

Environment: a temporary DAGSTER_HOME (SQLite storage in that folder, ``DefaultRunCoordinator``
so the launch starts the run at once), a temporary TT_HOME, the platform store in a fresh schema
of TT_TEST_DATABASE_URL (dropped afterwards). Every process the launch starts shares the CLI's
process group, which is killed at the end: the code server outlives the CLI by design.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._core.events import DagsterEventType
from sqlalchemy.engine import Engine

from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator import GatewayEmulator, GatewayThread, ReplayConfig, serve_in_thread
from tt_platform.live.config import LIVE_JOB, LIVE_OP
from tt_platform.live.reconcile import OPEN_STATUSES
from tt_platform.pipeline.local_policy import LocalPolicy
from tt_platform.runtime import REPO_ROOT
from tt_platform.store.engine import create_store_engine, ensure_schema
from tt_platform_tests.fixtures.db import SchemaRegistry
from tt_platform_tests.live.policy_factory import REPLAY_START, synthetic_source, train_tiny_policy

# a real code server, run worker and trading session: a minute or two; run by make test-slow
pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DAGSTER = Path(sys.executable).with_name("dagster")
# one replayed minute bar per 5 s of the emulator's clock, which runs 8 times faster than real
# time: a decision about every 0.6 s
EMULATOR_SCALE = 8.0
STEP_SECONDS = 5.0
LAUNCH_SECONDS = 180  # the CLI: a code server loading the definitions (torch included)
TRADING_SECONDS = 300  # launched -> the session has decided and ordered, on a shared machine
CANCEL_SECONDS = 120  # terminate -> CANCELED: cancel, reconcile, report, close
STOPPING_SECONDS = 30  # CANCELING -> the session's last heartbeat (it polls the run every second)
MIN_DECISIONS = 3
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
# what dagster.yaml of the temporary DAGSTER_HOME holds: storage in that folder, runs started at
# launch (no daemon), the default run launcher (a run process under the code server)
INSTANCE_YAML = """\
storage:
  sqlite:
    base_dir: {home}/storage
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
local_artifact_storage:
  module: dagster._core.storage.root
  class: LocalArtifactStorage
  config:
    base_dir: {home}/artifacts
compute_logs:
  module: dagster._core.storage.local_compute_log_manager
  class: LocalComputeLogManager
  config:
    base_dir: {home}/compute_logs
telemetry:
  enabled: false
"""


@pytest.fixture
def store_url(external_database_url: str, schema_registry: SchemaRegistry) -> Iterator[str]:
    """A fresh, migrated schema of the external server, dropped after the test."""
    schema, url = schema_registry.create(external_database_url, prefix="tt_live_launch")
    engine = create_store_engine(url, poolclass=sa.pool.NullPool)
    try:
        ensure_schema(engine)
    finally:
        engine.dispose()
    yield url
    schema_registry.drop(external_database_url, schema)


@pytest.fixture
def store(store_url: str) -> Iterator[Engine]:
    engine = create_store_engine(store_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def policy(store: Engine, tmp_path: Path) -> LocalPolicy:
    return train_tiny_policy(store, tmp_path / "policies")


@pytest.fixture
def gateway(policy: LocalPolicy) -> Iterator[GatewayThread]:
    """The emulator replaying the policy's synthetic minute bars, started once the policy exists
    (its replay clock starts with it)."""
    emulator = GatewayEmulator(
        synthetic_source(), clock=ScaledClock(EMULATOR_SCALE),
        replay=ReplayConfig(start=REPLAY_START, interval="1min", step_seconds=STEP_SECONDS))
    thread = serve_in_thread(emulator)
    yield thread
    thread.stop()


MARKET_ORDERS = {"order_type": "market", "min_order_value": 100.0}
# 1 % below the last close for buys (above for sells): they rest at the gateway for the few
# minutes of bars the session sees, and nothing cancels them before the stop
RESTING_LIMIT_ORDERS = {"order_type": "limit", "limit_offset_bps": 100.0, "limit_timeout_seconds": 3600.0,
                        "min_order_value": 100.0}
# the broker's last word on an order -> the status the records must end with
FINAL_STATUS = {"Filled": "filled", "Cancelled": "cancelled"}


def session_config(policy: LocalPolicy, port: int, orders: dict) -> dict:
    """The run config of a live session on the emulator, on the feed's clock."""
    return {"ops": {LIVE_OP: {"config": {
        "mode": "live",
        "policy": f"policy:{policy.policy_id}",
        "clock": "feed",
        "capital": 100_000.0,
        "orders": orders,
        "ib": {"host": "127.0.0.1", "port": port},
        "heartbeat_seconds": 2.0,
        "cancel_on_stop": True,
        "flatten_on_stop": False,
    }}}}


def launch_environment(dagster_home: Path, tt_home: Path, store_url: str, port: int) -> dict[str, str]:
    """This process's environment without the platform's, Dagster's, MLflow's and IB's variables,
    plus the deployment's for this test."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("TT_", "DAGSTER_", "MLFLOW_", "IB_"))}
    return kept | {
        "DAGSTER_HOME": str(dagster_home),
        "TT_HOME": str(tt_home),
        "TT_DB_URL": store_url,
        "IB_HOST": "127.0.0.1",
        "IB_PORT": str(port),
        "MLFLOW_TRACKING_URI": (tt_home / "mlruns").as_uri(),
    }


def tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.is_file() else "(no log)"


def run_events(instance: dg.DagsterInstance, run_id: str | None, count: int = 40) -> str:
    """The run's last event messages, errors included: what went wrong inside the run."""
    if run_id is None:
        return "(no run)"
    lines = []
    for entry in instance.all_logs(run_id)[-count:]:
        event = entry.dagster_event
        error = None
        if event is not None and event.is_step_failure:
            error = event.step_failure_data.error
        elif event is not None and event.event_type == DagsterEventType.RUN_FAILURE and event.event_specific_data:
            error = getattr(event.event_specific_data, "error", None)
        lines.append(f"{entry.level}: {entry.user_message or (event.message if event else '')}"
                     + (f"\n{error.to_string()}" if error is not None else ""))
    return "\n".join(lines)


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def session_progress(store: Engine, session_id: str) -> dict:
    with store.connect() as conn:
        status = conn.execute(sa.text("select status from tt_live_session where session_id = :s"),
                              {"s": session_id}).scalar()
        decisions = conn.execute(sa.text("select count(*) from tt_live_audit where session_id = :s"),
                                 {"s": session_id}).scalar()
        orders = conn.execute(sa.text("select count(*) from tt_order where episode_id = :s"),
                              {"s": session_id}).scalar()
    return {"status": status, "decisions": decisions, "orders": orders}


def terminate_as_the_ui_does(instance: dg.DagsterInstance, run_id: str) -> bool:
    """The UI's terminate mutation: the run coordinator's cancel_run, which for a launched run is
    the run launcher's terminate (CANCELING, then CancelExecution to the code server)."""
    return instance.run_coordinator.cancel_run(run_id)


def terminate_while_stopping(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Termination whose interrupt arrives late: the run is marked CANCELING (the launcher's
    first step), the session sees it and stops; the interrupt is sent once the session has
    written its last heartbeat, while it writes its report and closes its row."""
    instance.report_run_canceling(instance.get_run_by_id(run_id))

    def stopping() -> bool:
        return any(entry.user_message.startswith("heartbeat: stopping") for entry in instance.all_logs(run_id))

    assert wait_for(stopping, STOPPING_SECONDS, interval=0.05), "the session did not stop on CANCELING"
    return instance.run_launcher.terminate(run_id)


def broker_orders(gateway: GatewayThread) -> tuple[list[dict], list[dict]]:
    """Every order the emulator's broker received and the ones still working, read on its loop."""

    async def read() -> tuple[list[dict], list[dict]]:
        broker = gateway.emulator.broker
        fields = ("order_ref", "symbol", "action", "quantity", "order_type", "status", "filled")
        as_dict = lambda ticket: {name: getattr(ticket, name) for name in fields}  # noqa: E731
        return [as_dict(t) for t in broker.orders.values()], [as_dict(t) for t in broker.working()]

    return gateway.call(read())


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("orders_config", "terminate"), [
    pytest.param(MARKET_ORDERS, terminate_as_the_ui_does, id="market-orders-terminated-as-the-ui-does"),
    pytest.param(RESTING_LIMIT_ORDERS, terminate_while_stopping, id="resting-limits-interrupt-while-stopping"),
])
def test_a_launched_live_session_terminated_from_the_instance_ends_canceled_with_nothing_open(
    store: Engine, store_url: str, policy: LocalPolicy, gateway: GatewayThread, tmp_path: Path,
    orders_config: dict, terminate: Callable[[dg.DagsterInstance, str], bool],
):
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(INSTANCE_YAML.format(home=dagster_home))
    tt_home = tmp_path / "tt_home"
    config_file = tmp_path / "live.yaml"
    config_file.write_text(yaml.safe_dump(session_config(policy, gateway.port, orders_config), sort_keys=False))
    env = launch_environment(dagster_home, tt_home, store_url, gateway.port)
    log = tmp_path / "launch.log"

    instance = dg.DagsterInstance.from_config(str(dagster_home))
    launch: subprocess.Popen | None = None
    run_id: str | None = None
    started = time.monotonic()

    def diagnostics() -> str:
        progress = session_progress(store, run_id) if run_id else "(no run)"
        return (f"session: {progress}\nrun events:\n{run_events(instance, run_id)}\n"
                f"dagster job launch's log ends with:\n{tail(log)}")

    try:
        with log.open("w") as out:
            # its own process group: the code server and the run worker it spawns stay in it
            launch = subprocess.Popen(
                [str(DAGSTER), "job", "launch", "-w", "workspace.yaml", "-j", LIVE_JOB, "-c", str(config_file)],
                cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        assert launch.wait(timeout=LAUNCH_SECONDS) == 0, tail(log)
        runs = instance.get_runs(filters=dg.RunsFilter(job_name=LIVE_JOB))
        assert len(runs) == 1, f"expected one {LIVE_JOB} run, found {len(runs)}:\n{tail(log)}"
        run_id = runs[0].run_id
        session_id = run_id  # the config names no session: the run's id names it

        def trading() -> bool:
            run = instance.get_run_by_id(run_id)
            if run.status in FINISHED:
                return True  # reported below
            progress = session_progress(store, session_id)
            return (run.status == dg.DagsterRunStatus.STARTED and progress["status"] == "running"
                    and progress["decisions"] >= MIN_DECISIONS and progress["orders"] > 0)

        assert wait_for(trading, TRADING_SECONDS), f"the session did not start trading:\n{diagnostics()}"
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED, diagnostics()
        trading_at = time.monotonic()

        assert terminate(instance, run_id), diagnostics()
        assert wait_for(lambda: instance.get_run_by_id(run_id).status in FINISHED, CANCEL_SECONDS), (
            f"run {run_id} is still {instance.get_run_by_id(run_id).status.value} {CANCEL_SECONDS} s after "
            f"Terminate:\n{diagnostics()}")
        canceled_in = time.monotonic() - trading_at
        run = instance.get_run_by_id(run_id)
        assert run.status == dg.DagsterRunStatus.CANCELED, diagnostics()
        print(f"launch -> trading {trading_at - started:.1f} s, terminate -> CANCELED {canceled_in:.1f} s")

        # the session closed as canceled, by the termination
        with store.connect() as conn:
            session = conn.execute(sa.text(
                "select status, run_id, reason, ended_at, mode from tt_live_session where session_id = :s"),
                {"s": session_id}).mappings().one()
            orders = conn.execute(sa.text(
                "select order_ref, status, filled_quantity, quantity from tt_order where episode_id = :s"),
                {"s": session_id}).mappings().all()
            decisions = conn.execute(sa.text("select count(*) from tt_live_audit where session_id = :s"),
                                     {"s": session_id}).scalar()
        assert session["status"] == "canceled", dict(session)
        assert session["run_id"] == run_id and session["mode"] == "live" and session["ended_at"] is not None
        assert "terminated" in session["reason"], session["reason"]
        assert decisions >= MIN_DECISIONS

        # nothing open, in the records or at the broker, and every order known once to both
        assert orders
        still_open = [(o["order_ref"], o["status"]) for o in orders if o["status"] in OPEN_STATUSES]
        assert not still_open, f"orders left open after the stop: {still_open}"
        refs = [o["order_ref"] for o in orders]
        assert None not in refs and len(set(refs)) == len(refs), refs
        at_broker, working = broker_orders(gateway)
        assert not working, f"orders still working at the gateway: {working}"
        broker_refs = [o["order_ref"] for o in at_broker]
        assert len(set(broker_refs)) == len(broker_refs), f"an order reached the gateway twice: {broker_refs}"
        assert set(broker_refs) <= set(refs), f"orders at the gateway the records lack: {set(broker_refs) - set(refs)}"
        recorded = {o["order_ref"]: o for o in orders}
        mismatched = [(o["order_ref"], o["status"], o["filled"], recorded[o["order_ref"]]["status"],
                       recorded[o["order_ref"]]["filled_quantity"]) for o in at_broker
                      if FINAL_STATUS.get(o["status"]) != recorded[o["order_ref"]]["status"]
                      or abs(o["filled"] - recorded[o["order_ref"]]["filled_quantity"]) > 1e-9]
        assert not mismatched, f"records differ from the broker (ref, broker's, records'): {mismatched}"
        if orders_config["order_type"] == "market":
            assert any(o["status"] == "Filled" for o in at_broker), at_broker
        else:
            # the stop cancelled orders that were working at the broker
            assert any(o["status"] == "Cancelled" for o in at_broker), at_broker

        # the heartbeats are observations of trading_book in the run's event log
        observations = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_OBSERVATION)
        assert observations, diagnostics()
        for entry in observations:
            observation = entry.dagster_event.asset_observation_data.asset_observation
            assert observation.asset_key == dg.AssetKey("trading_book")
            assert observation.metadata["session_id"].value == session_id
            assert observation.metadata["mode"].value == "live"
        assert any(entry.user_message.startswith("heartbeat:") for entry in instance.all_logs(run_id)), diagnostics()

        # the day's report, under TT_HOME
        reports = list((tt_home / "reports" / "live" / session_id).glob("*.html"))
        assert reports, f"no report under {tt_home / 'reports' / 'live'}"
        assert session_id in reports[0].read_text()
    finally:
        if launch is not None:
            if launch.poll() is None:
                launch.kill()
            # the orphaned code server (and a run worker still alive after a failure)
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.killpg(launch.pid, signal.SIGKILL)
            launch.wait(timeout=10)
        instance.dispose()
