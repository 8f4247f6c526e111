"""Per-instrument scores of a scoring run in ``tt_signal_scores``."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tt_platform.store.filters import TimeLike, time_range
from tt_platform.store.query import read_frame
from tt_platform.store.schema import signal_scores
from tt_platform.store.upsert import upsert_frame

SIGNAL_KEY = ["run_id", "ts", "instrument"]


def write_signal_scores(conn_or_engine: Connection | Engine, frame: pd.DataFrame) -> int:
    """Upsert (run_id, ts, instrument, score) rows; returns rows inserted or changed."""
    return upsert_frame(conn_or_engine, signal_scores, frame, SIGNAL_KEY)


def read_signal_scores(
    conn_or_engine: Connection | Engine, run_id: str, start: TimeLike | None = None, end: TimeLike | None = None
) -> pd.DataFrame:
    """Scores of one run with ``start <= ts <= end``, sorted by ts and instrument."""
    statement = (
        sa.select(*signal_scores.columns)
        .where(signal_scores.c.run_id == run_id, *time_range(signal_scores.c.ts, start, end))
        .order_by(signal_scores.c.ts, signal_scores.c.instrument)
    )
    return read_frame(conn_or_engine, statement)
