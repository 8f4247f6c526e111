"""Bars and features are partitioned by calendar month; the universe is each partition's content.

Why months, and not (day x symbol): Dagster spends ~10 ms and one event per partition key per
asset, its UI slows from ~33,000 keys per asset and its documented ceiling is 100,000. Months keep
500 symbols x 20 years of daily bars at 240 keys, and 50 symbols x 5 years of minute bars at 60,
whatever the universe size; the symbols of a month live in the store (tt_bar_coverage), where a
partition counts as materialized only once every active symbol's sessions of that month are
stored or recorded absent with a reason. Months hold no holiday partitions, and the last
partition is the month of the last completed session, whose content ends at that session.
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from tt_platform.pipeline.months import PARTITION_FORMAT, keys_between, month_days, month_key, requested_days
from tt_platform.settings import get_settings

__all__ = ["BAR_PARTITIONS", "build_month_partitions", "keys_between", "month_days", "month_key", "range_tags", "requested_days"]


def build_month_partitions(start: str) -> dg.MonthlyPartitionsDefinition:
    """Monthly partitions from the month of ``start`` (YYYY-MM or YYYY-MM-DD) to the current month."""
    first = date.fromisoformat(start if len(start) > 7 else f"{start}-01").replace(day=1)
    # end_offset=1 keeps the month in progress, whose window ends at the last completed session
    return dg.MonthlyPartitionsDefinition(start_date=first.strftime(PARTITION_FORMAT), fmt=PARTITION_FORMAT, end_offset=1)


# the first month is a deployment setting (TT_PARTITION_START), read once when the code location loads
BAR_PARTITIONS = build_month_partitions(get_settings().partition_start)


def range_tags(start: date, end: date) -> dict[str, str]:
    """Run tags that ask for every month touching [start, end] in ONE run (single-run backfill)."""
    keys = keys_between(start, end)
    if not keys:
        raise ValueError(f"{start}..{end} holds no partition")
    return {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
