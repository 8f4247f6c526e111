"""Everything a session needs before its loop starts, and the loop's event loop: used by the
``live_session`` Dagster op and by ``tt live``.

``prepare`` resolves and verifies the policy (model and feature-set hashes against its lineage)
and checks the config against it, before any connection is made; ``run`` drives the session on
an asyncio loop and turns an interrupt (Dagster's termination, Ctrl-C) into a clean stop: the
session cancels, persists and disconnects before the interrupt goes on.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tt_platform.live.config import LiveConfigError, LiveSessionConfig
from tt_platform.live.policy_source import VerifiedPolicy, resolve_policy_row, verify_policy
from tt_platform.live.session import LiveSession, SessionHooks, SessionResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedSession:
    config: LiveSessionConfig
    policy: VerifiedPolicy
    model: Any
    store: Any
    ib_host: str
    ib_port: int
    account: str | None
    report_dir: Path


def account_tag(account: str | None) -> str:
    """The account as run tags and logs may show it (masked); "unknown" when not configured."""
    from tt_platform.ib.trading import mask_account

    return mask_account(account) if account else "unknown"


def prepare(config: LiveSessionConfig, *, settings: Any, store: Any, tracker: Any | None) -> PreparedSession:
    """Resolve and verify the policy and check the config against it; raises with one line
    naming the problem (no connection is opened before this passes)."""
    row, label = resolve_policy_row(store, config.policy_selector(), tracker)
    policy = verify_policy(row, label)
    expected = config.expected_symbols()
    if expected and sorted(expected) != sorted(policy.symbols):
        extra = sorted(set(expected) - set(policy.symbols))
        missing = sorted(set(policy.symbols) - set(expected))
        key = f"watchlist {config.watchlist}" if config.watchlist else "symbols"
        raise LiveConfigError(
            f"{key}: policy {policy.policy_id} trades {list(policy.symbols)}; the config lists "
            f"{'extra ' + str(extra) if extra else ''}{' and ' if extra and missing else ''}"
            f"{'lacks ' + str(missing) if missing else ''} (leave symbols empty to take the policy's)")
    if config.interval and config.interval != policy.interval:
        raise LiveConfigError(f"interval: policy {policy.policy_id} was trained on {policy.interval} bars, "
                              f"the config asks for {config.interval}")
    needed = policy.feature_set.warmup_bars + policy.env_config.window_size
    if config.warm_start_bars is not None and config.warm_start_bars < needed:
        raise LiveConfigError(
            f"warm_start_bars: {config.warm_start_bars} bars leave the policy's observations partly empty; its feature "
            f"set needs {policy.feature_set.warmup_bars} bars of warm-up and its window {policy.env_config.window_size} "
            f"more: give at least {needed}, or leave it empty")
    model = policy.load_model()
    report_dir = Path(config.report_dir) if config.report_dir else settings.tt_home / "reports" / "live"
    account = settings.ib_account.get_secret_value() if settings.ib_account else None
    return PreparedSession(config, policy, model, store, config.ib.host or settings.ib_host,
                           config.ib.port or settings.ib_port, account, report_dir)


def build_session(prepared: PreparedSession, *, session_id: str, run_id: str | None,
                  hooks: SessionHooks | None = None, poll_seconds: float | None = None) -> LiveSession:
    from tt_platform.ib.client import IBMarketData
    from tt_platform.ib.trading import IBTrading

    config = prepared.config
    trading = IBTrading(prepared.ib_host, prepared.ib_port, config.ib.client_id, account=prepared.account,
                        request_timeout=config.ib.request_timeout)
    history_client = IBMarketData(prepared.ib_host, prepared.ib_port, config.ib.history_client_id,
                                  request_timeout=max(config.ib.request_timeout, 30.0))

    async def fetch_history(symbol: str, start: pd.Timestamp, end: pd.Timestamp, interval: str) -> pd.DataFrame:
        if not history_client.is_connected():
            await history_client.connect_async()
        result = await history_client.historical_bars_async(symbol, start, end, interval, prepared.policy.adjusted)
        return result.bars

    kwargs = {} if poll_seconds is None else {"poll_seconds": poll_seconds}
    session = LiveSession(config, prepared.policy, prepared.model, trading=trading, store=prepared.store,
                          session_id=session_id, run_id=run_id, history=fetch_history, hooks=hooks,
                          report_dir=prepared.report_dir, **kwargs)
    session.history_client = history_client  # type: ignore[attr-defined]
    return session


def preview(session: LiveSession) -> tuple[Any, Any]:
    """``preview_decision`` on a fresh event loop (``tt live --dry-run``): the decision and the
    policy's output on the last completed bar; nothing is sent or stored."""
    from tt_platform.live.session import preview_decision

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(preview_decision(session))
    finally:
        _disconnect_history(session)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _disconnect_history(session: LiveSession) -> None:
    history = getattr(session, "history_client", None)
    if history is not None:
        try:
            history.disconnect()
        except Exception:  # noqa: BLE001
            log.debug("history client disconnect failed", exc_info=True)


def run(session: LiveSession) -> SessionResult:
    """Run the session to its end on a fresh event loop. An interrupt (a BaseException raised by a
    signal handler) stops the session cleanly first, then is raised again."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    task = loop.create_task(session.run())
    interrupted: BaseException | None = None
    try:
        while True:
            try:
                result = loop.run_until_complete(task)
                break
            except BaseException as exc:
                if task.done():
                    raise
                # the signal handler's exception landed in the event loop, not in the session:
                # ask the session to stop and let it finish its cleanup
                interrupted = interrupted or exc
                session.stop_reason = "terminated (interrupted)"
        if interrupted is not None:
            raise interrupted
        return result
    finally:
        _disconnect_history(session)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
