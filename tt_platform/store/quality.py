"""Data-quality check results in ``tt_quality_results``: one row per check, instrument, partition
and series (raw or adjusted bars), so the results on one series never overwrite the other's."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tt_platform.store.query import read_frame
from tt_platform.store.schema import quality_results
from tt_platform.store.upsert import upsert_frame

QUALITY_KEY = ["check_name", "instrument", "partition_key", "adjusted"]
# instrument value for checks over a whole partition rather than one instrument
ALL_INSTRUMENTS = "*"


def record_quality_results(
    conn_or_engine: Connection | Engine, frame: pd.DataFrame, *, adjusted: bool | None = None
) -> int:
    """Upsert results (check_name, instrument, partition_key, passed, severity[, adjusted, value, details]).

    ``adjusted`` names the series the checks ran on: a frame without an ``adjusted`` column takes
    it from the argument (default: raw bars, false); a frame with one must agree with the argument
    when both are given. A re-run of a check on the same series overwrites its previous result;
    ``checked_at`` is refreshed when the outcome changes. Returns rows inserted or changed.
    """
    if "adjusted" in frame.columns:
        values = frame["adjusted"]
        if values.isna().any():
            raise ValueError("record_quality_results: the adjusted column holds missing values")
        if adjusted is not None and (values.astype(bool) != bool(adjusted)).any():
            raise ValueError(
                f"record_quality_results: adjusted={adjusted} but the frame's adjusted column holds "
                f"{sorted(set(values.astype(bool)))}"
            )
        frame = frame.assign(adjusted=values.astype(bool))
    else:
        frame = frame.assign(adjusted=bool(adjusted) if adjusted is not None else False)
    return upsert_frame(conn_or_engine, quality_results, frame, QUALITY_KEY)


def read_quality_results(
    conn_or_engine: Connection | Engine,
    *,
    partition_key: str | None = None,
    check_name: str | None = None,
    failed_only: bool = False,
    adjusted: bool | None = None,
    instrument: str | None = None,
) -> pd.DataFrame:
    """Results sorted by partition, check, instrument and series (raw first), optionally filtered;
    ``adjusted=None`` returns both series."""
    statement = sa.select(*quality_results.columns).order_by(
        quality_results.c.partition_key,
        quality_results.c.check_name,
        quality_results.c.instrument,
        quality_results.c.adjusted,
    )
    if partition_key is not None:
        statement = statement.where(quality_results.c.partition_key == partition_key)
    if check_name is not None:
        statement = statement.where(quality_results.c.check_name == check_name)
    if instrument is not None:
        statement = statement.where(quality_results.c.instrument == instrument)
    if adjusted is not None:
        statement = statement.where(quality_results.c.adjusted.is_(bool(adjusted)))
    if failed_only:
        statement = statement.where(quality_results.c.passed.is_(False))
    return read_frame(conn_or_engine, statement)
