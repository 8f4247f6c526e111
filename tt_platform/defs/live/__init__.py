"""The paper/live trading session as a long-running Dagster job (``live_session``)."""

from tt_platform.defs.live.jobs import TRADING_BOOK, live_session_job

__all__ = ["TRADING_BOOK", "live_session_job"]
