"""``live_session``: one op (``trading_session``) that runs a paper or live trading session until it is stopped.

Start it with ``dagster job launch -w workspace.yaml -j live_session -c paper.yaml`` (or from
the Launchpad, or ``tt live --config paper.yaml``); stop it with Terminate in the UI. Termination
marks the run CANCELING, then interrupts the step process; while the session runs that interrupt
is only recorded, and the session checks for it at every tick and for the run's status every
second, then cancels open orders, optionally flattens, persists and disconnects; the run ends
CANCELED. (An interrupt raised where it lands could cut that cleanup short: the session would
stay "running" in the store and hold the account until it went stale.) The job's tags let the
instance's queue hold a second session on the same IB account (``tt/ib_account``, one per
value), and the op refuses to start beside a running one anyway.
Never retried: a trading session is restarted by a person, who reads why it stopped first.
"""


import time

import dagster as dg
from dagster._utils.interrupts import capture_interrupts, check_captured_interrupt

from tt_platform.config.dagster import config_values, dagster_config_class
from tt_platform.defs.platform.resources import PlatformResource
from tt_platform.defs.training.resources import MlflowResource
from tt_platform.live.config import LIVE_JOB, LIVE_OP, LiveConfigError, LiveSessionConfig, parse_live_config
from tt_platform.live.launch import account_tag, build_session, prepare, run
from tt_platform.live.policy_source import PolicyResolutionError, PolicyVerificationError
from tt_platform.live.session import SessionHooks
from tt_platform.pipeline.recovery import mark_abandoned_dagster_runs, tag_run_host

KIND_TAG = "tt/kind"
ACCOUNT_TAG = "tt/ib_account"
# the asset the sessions' heartbeats are observations of (equity, cash, positions)
TRADING_BOOK = dg.AssetSpec(
    "trading_book",
    group_name="trading",
    description="The book of the running paper or live session: equity, cash and positions, observed by "
    "live_session at every heartbeat (tt_portfolio and tt_holdings hold every mark).",
    kinds={"ib", "postgres"},
    owners=["team:trading"],
    # a session trades the policy the walk-forward gate promoted (or one trained_policy made)
    deps=["trained_policy", "walk_forward_report"],
)
STATUS_POLL_SECONDS = 1.0

_LiveSessionFields = dagster_config_class(LiveSessionConfig, name="LiveSessionFields")


class LiveSessionOpConfig(_LiveSessionFields):  # type: ignore[misc, valid-type]
    """The session: mode, policy (MLflow alias, version or policy:<id>), risk limits, capital, orders,
    the IB connection; validated into a ``LiveSessionConfig``."""


def _account_tag() -> str:
    from tt_platform.settings import get_settings

    account = get_settings().ib_account
    return account_tag(account.get_secret_value() if account else None)


def _other_sessions(instance: dg.DagsterInstance, run_id: str, account_tag: str) -> list[str]:
    runs = instance.get_runs(filters=dg.RunsFilter(
        job_name=LIVE_JOB, statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
        tags={ACCOUNT_TAG: account_tag}))
    return [r.run_id for r in runs if r.run_id != run_id]


def _hooks(context: dg.OpExecutionContext) -> SessionHooks:
    instance, run_id = context.instance, context.run_id
    last = {"checked": 0.0, "reason": None}

    def stop_reason() -> str | None:
        now = time.monotonic()
        if last["reason"] is None and check_captured_interrupt():
            last["reason"] = "terminated (interrupted)"
        if last["reason"] is None and now - last["checked"] >= STATUS_POLL_SECONDS:
            last["checked"] = now
            run = instance.get_run_by_id(run_id)
            if run is not None and run.status in (dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.CANCELED):
                last["reason"] = "terminated from the Dagster UI"
        return last["reason"]

    def heartbeat(info: dict) -> None:
        positions = info.get("positions") or {}
        context.log.info(
            f"heartbeat: {info['status']}, {'connected' if info['connected'] else 'DISCONNECTED'}, equity "
            f"{info['equity']:,.2f}, cash {info['cash']:,.2f}, {len(positions)} position(s), "
            f"{info['decisions']} decision(s), {info['orders_sent']} order(s), {info['fills']} fill(s)"
            + (", breaker TRIPPED" if info.get("breaker_tripped") else ""))
        context.log_event(dg.AssetObservation(
            asset_key=TRADING_BOOK.key,
            metadata={
                "session_id": info["session_id"], "mode": info["mode"],
                "equity": dg.MetadataValue.float(round(float(info["equity"]), 2)),
                "cash": dg.MetadataValue.float(round(float(info["cash"]), 2)),
                "positions": dg.MetadataValue.json({s: round(float(q), 6) for s, q in positions.items()}),
                "open_orders": info["open_orders"], "decisions": info["decisions"],
                "connected": info["connected"], "breaker_tripped": info["breaker_tripped"],
                "last_bar_time": info["last_bar_time"] or "none yet",
            }))

    def alert(message: str) -> None:
        context.log.warning(message)

    def decision(info: dict) -> None:
        if info["orders"] or info["verdict"] != "pass":
            context.log.info(
                f"bar {info['bar_time']}: {info['verdict']}, {info['orders']} order(s), {info['sent']} sent, "
                f"{info['latency_ms']:.1f} ms" + (f" ({info['breaches']})" if info["breaches"] else ""))

    return SessionHooks(stop_reason=stop_reason, heartbeat=heartbeat, alert=alert, decision=decision)


@dg.op(
    name=LIVE_OP,
    description="Trades a verified policy on paper or live until terminated: real-time bars from IB, features, "
    "policy, risk gate and circuit breaker, orders; every decision audited in tt_live_audit, orders and fills in "
    "tt_order and tt_fill, the book in tt_portfolio and tt_holdings, a daily HTML report.",
    tags={"kind": "ib"},
)
def trading_session(context: dg.OpExecutionContext, config: LiveSessionOpConfig, platform: PlatformResource,
                 mlflow: MlflowResource) -> None:
    source = f"ops.{LIVE_OP}.config"
    try:
        session_config = parse_live_config({"ops": {LIVE_OP: {"config": config_values(config, LiveSessionConfig)}}},
                                           source="run config")
        account = context.run.tags.get(ACCOUNT_TAG, _account_tag())
        # a session whose worker was killed never ends its run: mark such runs of this machine
        # failed first, or they would hold the account for ever
        tag_run_host(context.instance, context.run_id)
        mark_abandoned_dagster_runs(context.instance)
        others = _other_sessions(context.instance, context.run_id, account)
        if others:
            raise dg.Failure(description=f"{LIVE_JOB}: another session is running on IB account {account} "
                             f"(run {others[0]}); stop it first")
        store = platform.engine()
        prepared = prepare(session_config, settings=platform.settings, store=store, tracker=mlflow.tracker())
    except (LiveConfigError, PolicyResolutionError, PolicyVerificationError) as exc:
        raise dg.Failure(description=f"{LIVE_OP}: {exc}") from None
    session_id = session_config.session_id or context.run_id
    context.log.info(
        f"session {session_id}: {session_config.mode} trading {prepared.policy.policy_id} "
        f"({prepared.policy.version_label}, model {prepared.policy.model_sha256[:12]}, features "
        f"{prepared.policy.feature_set_hash}) on {prepared.policy.interval} bars of {', '.join(prepared.policy.symbols)}; "
        f"IB {prepared.ib_host}:{prepared.ib_port}, account {account} ({source})")
    session = build_session(prepared, session_id=session_id, run_id=context.run_id, hooks=_hooks(context))
    # termination's interrupt is recorded, not raised, until the session has stopped: the hooks
    # see it at the next tick (during start-up: once the loop starts; every start-up step has a
    # timeout), and nothing cuts the cancel-persist-disconnect of the stop short
    with capture_interrupts():
        result = run(session)
        interrupted = check_captured_interrupt()
    context.log.info(
        f"session {session_id} {result.status}: {result.reason}; {result.decisions} decision(s), "
        f"{result.orders_sent} order(s), {result.fills} fill(s), equity {result.equity:,.2f}"
        + (f", report {result.report_path}" if result.report_path else ""))
    if result.status == "canceled" or interrupted:
        # the run ends CANCELED, as termination from the UI intends
        raise dg.DagsterExecutionInterruptedError(f"session {session_id} stopped: {result.reason}")


def _live_job_tags() -> dict[str, str]:
    return {KIND_TAG: "live", ACCOUNT_TAG: _account_tag(), "dagster/max_retries": "0"}


@dg.job(
    name=LIVE_JOB,
    description="A paper or live trading session, running until terminated. Start: `dagster job launch -w "
    "workspace.yaml -j live_session -c paper.yaml` (or tt live --config paper.yaml [--dry-run]); stop: Terminate. "
    "One session per IB account; never retried.",
    tags=_live_job_tags(),
)
def live_session_job() -> None:
    trading_session()
