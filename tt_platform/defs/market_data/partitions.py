"""Bars and features are partitioned by trading weekday and symbol; symbols follow the watchlist."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import dagster as dg

from tt_platform.settings import get_settings

SYMBOLS = dg.DynamicPartitionsDefinition(name="symbols")
# weekdays only: exchanges trade none of the weekend days, and every partition key costs the
# instance an event per asset, so skipping them makes a backfill ~30% cheaper
DAYS = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 * * 1-5", start=get_settings().partition_start, fmt="%Y-%m-%d", end_offset=1
)
BAR_PARTITIONS = dg.MultiPartitionsDefinition({"date": DAYS, "symbol": SYMBOLS})


def requested_windows(context: dg.AssetExecutionContext, universe: list[str] | None = None) -> dict[str, tuple[date, date]]:
    """Per symbol, the first and last day this run was asked to materialize.

    A range run covers every registered symbol between its two ends (Dagster takes the range as
    a box), so ``universe`` keeps only the symbols the run is about.
    """
    days_by_symbol: dict[str, list[date]] = defaultdict(list)
    for key in context.partition_keys:
        by_dimension = key.keys_by_dimension if isinstance(key, dg.MultiPartitionKey) else dict(
            zip(("date", "symbol"), str(key).split("|"))
        )
        days_by_symbol[by_dimension["symbol"]].append(date.fromisoformat(by_dimension["date"]))
    wanted = set(universe) if universe is not None else None
    return {
        symbol: (min(days), max(days))
        for symbol, days in sorted(days_by_symbol.items())
        if wanted is None or symbol in wanted
    }


def group_by_window(windows: dict[str, tuple[date, date]]) -> dict[tuple[date, date], list[str]]:
    """Symbols that share a window, so each window is fetched or computed once for all of them."""
    grouped: dict[tuple[date, date], list[str]] = {}
    for symbol, window in windows.items():
        grouped.setdefault(window, []).append(symbol)
    return grouped


def last_weekday_on_or_before(day: date) -> date:
    return day - timedelta(days=max(0, day.weekday() - 4))


def first_weekday_on_or_after(day: date) -> date:
    return day + timedelta(days=(7 - day.weekday()) % 7 if day.weekday() > 4 else 0)


def range_tags(registered_symbols: list[str], symbols: list[str], start: date, end: date) -> dict[str, str]:
    """Run tags that ask for every (day, symbol) partition in [start, end] in ONE run.

    Dagster orders a multi-partition range date-major and, within a day, by the order in which
    symbols were registered, so the range runs from the first to the last of ``symbols`` in
    ``registered_symbols`` order.
    """
    wanted = set(symbols)
    missing = wanted - set(registered_symbols)
    if missing:
        raise ValueError(f"symbols not registered as partitions: {sorted(missing)}")
    ordered = [s for s in registered_symbols if s in wanted]
    # partitions are weekdays: a weekend end would otherwise snap forward, past the range
    first, last = first_weekday_on_or_after(start), last_weekday_on_or_before(end)
    if last < first:
        raise ValueError(f"{start}..{end} holds no weekday partition")
    return {
        "dagster/asset_partition_range_start": f"{first.isoformat()}|{ordered[0]}",
        "dagster/asset_partition_range_end": f"{last.isoformat()}|{ordered[-1]}",
    }
