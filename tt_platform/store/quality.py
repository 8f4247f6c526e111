"""Data-quality check results in ``tt_quality_results``, one row per check, instrument and partition."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tt_platform.store.query import read_frame
from tt_platform.store.schema import quality_results
from tt_platform.store.upsert import upsert_frame

QUALITY_KEY = ["check_name", "instrument", "partition_key"]
# instrument value for checks over a whole partition rather than one instrument
ALL_INSTRUMENTS = "*"


def record_quality_results(conn_or_engine: Connection | Engine, frame: pd.DataFrame) -> int:
    """Upsert results (check_name, instrument, partition_key, passed, severity[, value, details]).

    A re-run of a check overwrites its previous result; ``checked_at`` is refreshed when the
    outcome changes. Returns rows inserted or changed.
    """
    return upsert_frame(conn_or_engine, quality_results, frame, QUALITY_KEY)


def read_quality_results(
    conn_or_engine: Connection | Engine,
    *,
    partition_key: str | None = None,
    check_name: str | None = None,
    failed_only: bool = False,
) -> pd.DataFrame:
    """Results sorted by partition, check and instrument, optionally filtered."""
    statement = sa.select(*quality_results.columns).order_by(
        quality_results.c.partition_key, quality_results.c.check_name, quality_results.c.instrument
    )
    if partition_key is not None:
        statement = statement.where(quality_results.c.partition_key == partition_key)
    if check_name is not None:
        statement = statement.where(quality_results.c.check_name == check_name)
    if failed_only:
        statement = statement.where(quality_results.c.passed.is_(False))
    return read_frame(conn_or_engine, statement)
