"""Legs of one long paper or live session against the emulator: each leg is a run of the job
(same session id, so a later leg resumes the book and the step numbering), stopped by
``max_decisions``."""

from __future__ import annotations

from pathlib import Path

from tt_platform.live.config import parse_live_config
from tt_platform.live.launch import build_session, prepare, run
from tt_platform.live.session import LiveSession, SessionHooks, SessionResult
from tt_platform.settings import PlatformSettings

CAPITAL = 100_000.0


def session_config(policy_id: str, port: int, folder: Path, *, mode: str, max_decisions: int) -> dict:
    return {
        "mode": mode, "policy": f"policy:{policy_id}", "clock": "feed", "capital": CAPITAL,
        "max_decisions": max_decisions, "ib": {"port": port, "request_timeout": 5.0},
        "report_dir": str(folder / "reports"), "heartbeat_seconds": 0.5,
        # a faulted gateway stays away for minutes of its clock; the account is not someone else's
        "stale_after_seconds": 600.0,
        # the breaker would hold the book for the rest of each day: the soak wants orders every bar
        "risk": {"max_session_drawdown": 0.5, "daily_loss_limit": None},
        "orders": {"min_order_value": 10.0},
    }


def build_leg(engine, folder: Path, policy_id: str, port: int, *, mode: str, session_id: str, run_id: str,
              max_decisions: int, hooks: SessionHooks) -> LiveSession:
    """The job's session as ``tt live`` and the Dagster op build it (``launch.prepare``)."""
    config = parse_live_config(session_config(policy_id, port, folder, mode=mode, max_decisions=max_decisions))
    prepared = prepare(config, settings=PlatformSettings(TT_HOME=str(folder / "home")), store=engine, tracker=None)
    return build_session(prepared, session_id=session_id, run_id=run_id, hooks=hooks, poll_seconds=0.05)


def run_leg(session: LiveSession) -> SessionResult:
    return run(session)
