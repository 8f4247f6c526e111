"""Fetch bars from a ``BarSource`` and store them a month partition at a time, with coverage.

A month partition's content is the universe: for every symbol the month's sessions are stored,
or recorded absent with a reason (not listed yet, no data after a delisting, refused by the
source). ``tt_bar_coverage`` remembers which, so a later run fetches only what is missing: a
symbol added to the watchlist, the sessions of the month in progress that completed since, or a
request that failed last time. Nothing after the last completed session is ever asked for.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from functools import lru_cache
from datetime import date, timedelta

import pandas as pd
from sqlalchemy.engine import Engine

from tt_platform.config.run_config import DataConfig
from tt_platform.data.calendars import expected_timestamps, resolve_calendar
from tt_platform.data.corporate_actions import select_feed
from tt_platform.data.gaps import fill_missing
from tt_platform.data.sessions import sessions_between
from tt_platform.data.validation import answer_problem, fill_sessions
from tt_platform.data.sources.base import BarRequest, BarSource, FetchReport, SymbolBars
from tt_platform.pipeline.months import keys_between, month_days
from tt_platform.pipeline.windows import day_end, day_start
from tt_platform.store.corporate_actions import read_corporate_actions
from tt_platform.store.coverage import monthly_bar_counts, read_coverage, record_coverage
from tt_platform.store.prices import read_bars, replace_partition, replace_slices, write_bars
from tt_platform.store.registry import upsert_instruments

log = logging.getLogger(__name__)


@dataclass
class MonthStatus:
    """One month partition after a run: complete when every universe symbol is accounted for."""

    key: str
    complete: bool
    rows: int  # stored bars of the universe in this month
    stored: list[str]
    absent: dict[str, str]  # symbol -> why it has no bars this month
    missing: dict[str, str]  # symbol -> why it is not accounted for yet (the partition is incomplete)
    fetched: list[str]  # symbols fetched by this run
    first_ts: pd.Timestamp | None = None
    last_ts: pd.Timestamp | None = None

    def as_metadata(self) -> dict[str, object]:
        reasons = sorted({reason for reason in self.absent.values()})
        return {
            "rows": self.rows,
            "symbols_stored": len(self.stored),
            "symbols_absent": len(self.absent),
            "absent": _listed(self.absent),
            "absent_reasons": ", ".join(reasons)[:500],
            "fetched_this_run": len(self.fetched),
            "first_ts": str(self.first_ts) if self.first_ts is not None else "",
            "last_ts": str(self.last_ts) if self.last_ts is not None else "",
        }


def _listed(reasons: dict[str, str], most: int = 20) -> str:
    shown = "; ".join(f"{s}: {r}" for s, r in sorted(reasons.items())[:most])
    return shown + (f"; and {len(reasons) - most} more" if len(reasons) > most else "")


@dataclass
class MonthlyIngest:
    months: dict[str, MonthStatus]
    report: FetchReport
    requests: list[BarRequest]
    rows_written: int
    last_session: date
    life: dict[str, tuple[date | None, date | None]] = field(default_factory=dict)  # symbol -> listed from/until

    @property
    def complete(self) -> bool:
        return all(m.complete for m in self.months.values())

    def incomplete_reasons(self) -> list[str]:
        out = []
        for key, month in sorted(self.months.items()):
            for symbol, reason in sorted(month.missing.items()):
                out.append(f"{symbol} {key}: {reason}")
        return out


def month_window(key: str, last_session: date) -> tuple[date, date] | None:
    """The days of month ``key`` that may hold completed sessions; None for a month in the future."""
    first, last = month_days(key)
    last = min(last, last_session)
    return (first, last) if first <= last else None


def _needed_windows(
    coverage: pd.DataFrame, symbols: list[str], keys: list[str], last_session: date, refetch: bool
) -> dict[str, list[tuple[date, date]]]:
    """Per symbol, the day windows to fetch: months without coverage (or not yet fetched through
    their end), contiguous months merged so a source answers years in one request."""
    known: dict[str, dict[str, date]] = defaultdict(dict)
    if not refetch:
        for symbol, key, through in zip(coverage["instrument"], coverage["partition_key"], coverage["fetched_through"]):
            known[symbol][key] = through
    month_windows = [(key, window) for key in keys if (window := month_window(key, last_session)) is not None]
    uncovered = _merge_months([window for _, window in month_windows])
    windows: dict[str, list[tuple[date, date]]] = defaultdict(list)
    for symbol in symbols:
        mine = known.get(symbol)
        if not mine:
            if uncovered:
                windows[symbol] = list(uncovered)
            continue
        current: list[date] | None = None
        for key, (first, last) in month_windows:
            through = mine.get(key)
            if through is not None and through >= last:
                if current is not None:
                    windows[symbol].append((current[0], current[1]))
                    current = None
                continue
            # the month in progress: only the days after what was fetched before
            start = first if through is None or through < first else through + timedelta(days=1)
            if current is not None and start == current[1] + timedelta(days=1):
                current[1] = last
            else:
                if current is not None:
                    windows[symbol].append((current[0], current[1]))
                current = [start, last]
        if current is not None:
            windows[symbol].append((current[0], current[1]))
    return windows


def _merge_months(windows: list[tuple[date, date]]) -> list[tuple[date, date]]:
    """Consecutive month windows joined into spans of days."""
    spans: list[tuple[date, date]] = []
    for first, last in windows:
        if spans and first == spans[-1][1] + timedelta(days=1):
            spans[-1] = (spans[-1][0], last)
        else:
            spans.append((first, last))
    return spans


def _covers(spans: list[tuple[date, date]], first: date, last: date) -> bool:
    """True when the union of answered day spans covers every day of [first, last]."""
    day = first
    for start, end in sorted(spans):
        if start > day:
            return False
        if end >= day:
            day = end + timedelta(days=1)
        if day > last:
            return True
    return day > last


@lru_cache(maxsize=4096)
def _session_count(first: date, last: date, calendar: str) -> int:
    return len(sessions_between(first, last, calendar))


def _absent_reason(symbol: str, first: date, last: date, life: tuple[date | None, date | None], refused: str | None) -> str:
    listed_from, listed_until = life
    if refused:
        return f"refused: {refused}"
    if listed_from is not None and last < listed_from:
        return f"not listed yet (first data {listed_from})"
    if listed_until is not None and first > listed_until:
        return f"no data after {listed_until} (delisted)"
    if _session_count(first, last, resolve_calendar(symbol)) == 0:
        return "no session"
    return "source returned no bars"


def ingest_months(
    engine: Engine,
    source: BarSource,
    data: DataConfig,
    universe: list[str],
    keys: list[str],
    *,
    last_session: date,
    refetch: bool = False,
    fetch: list[str] | None = None,
) -> MonthlyIngest:
    """Bring the month partitions ``keys`` up to date for ``universe`` and say which are complete.

    ``fetch`` (a subset run) limits what is requested to those symbols; completeness is still
    judged for the whole universe, so the months stay missing until the rest is there too."""
    keys = sorted(set(keys))
    wanted = list(dict.fromkeys(fetch)) if fetch else list(universe)
    known = list(dict.fromkeys([*universe, *wanted]))
    coverage = read_coverage(engine, interval=data.interval, adjusted=data.adjusted, symbols=known, partition_keys=keys)
    windows = _needed_windows(coverage, wanted, keys, last_session, refetch)
    requests = [BarRequest(symbol, start, end) for symbol, spans in windows.items() for start, end in spans]
    fetch_adjusted = data.adjusted and source.serves_adjusted
    answered: dict[str, list[tuple[date, date]]] = defaultdict(list)
    life: dict[str, tuple[date | None, date | None]] = {}
    refused: dict[str, str] = {}

    batch = _SliceBatch(engine, source.name, data.interval, fetch_adjusted)
    actions = read_corporate_actions(engine, wanted)
    rejected: dict[str, str] = {}

    def store(answer: SymbolBars) -> None:
        before = life.get(answer.symbol, (None, None))
        life[answer.symbol] = (answer.listed_from or before[0], answer.listed_until or before[1])
        if answer.refused:
            refused[answer.symbol] = answer.refused
        # validate, then commit: an answer that fails a blocking check is never written
        if data.missing_bars == "ffill":
            answer = replace(answer, bars=fill_sessions(answer.bars, answer.symbol, data.interval))
        own_actions = actions[actions["symbol"] == answer.symbol] if len(actions) else actions
        problem = None if answer.refused else answer_problem(
            answer.bars, symbol=answer.symbol, start=answer.start, end=answer.end, interval=data.interval,
            listed_from=life[answer.symbol][0], listed_until=life[answer.symbol][1], actions=own_actions,
        )
        if problem:
            rejected.setdefault(answer.symbol, problem)
            return
        batch.add(answer)
        answered[answer.symbol].append((answer.start, answer.end))

    report = source.fetch(requests, interval=data.interval, adjusted=fetch_adjusted, on_bars=store) if requests else FetchReport()
    report.failed.update({s: why for s, why in rejected.items() if s not in report.failed})
    batch.flush()
    rows_written = batch.written
    fetched = sorted(answered)
    if data.adjusted and not source.serves_adjusted:
        for symbol in fetched:
            rebuild_adjusted(engine, data, symbol, source.name)
    _record_life(engine, life, refused)
    recorded = _record_fetched_coverage(engine, data, source.name, keys, windows, answered, life, refused, last_session)
    # what was known before this run, updated by what it recorded (no second read of the table)
    current = pd.concat([coverage, recorded], ignore_index=True) if len(recorded) else coverage
    current = current.drop_duplicates(["instrument", "partition_key"], keep="last")
    months = month_statuses(
        engine, data, universe, keys, last_session, fetched=fetched, failed=report.failed, coverage=current
    )
    # a rejected answer fails its months even where older bars still cover them: the source now
    # says something the checks refuse, and the run must say so
    for symbol, reason in rejected.items():
        for start, end in windows.get(symbol, []):
            for key in keys_between(start, end):
                if key in months:
                    months[key].complete = False
                    months[key].missing[symbol] = reason
    return MonthlyIngest(months, report, requests, rows_written, last_session, life)


class _SliceBatch:
    """Answers buffered and written together (one transaction per ~250k bars): a backfill of
    hundreds of symbols costs a few round trips, and each batch still commits whole or not at all.
    Coverage is recorded only after every batch is written, so a crash leaves nothing marked."""

    MAX_ROWS = 250_000

    def __init__(self, engine: Engine, source: str, interval: str, adjusted: bool) -> None:
        self.engine, self.source, self.interval, self.adjusted = engine, source, interval, adjusted
        self.frames: list[pd.DataFrame] = []
        self.slices: list[tuple[str, pd.Timestamp, pd.Timestamp]] = []
        self.rows = 0
        self.written = 0

    def add(self, answer: SymbolBars) -> None:
        if len(answer.bars):
            self.frames.append(answer.bars)
            self.rows += len(answer.bars)
        self.slices.append((answer.symbol, day_start(answer.start), day_end(answer.end)))
        if self.rows >= self.MAX_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.slices:
            return
        bars = pd.concat(self.frames, ignore_index=True) if self.frames else pd.DataFrame()
        self.written += replace_slices(
            self.engine, bars, self.slices, source=self.source, interval=self.interval, adjusted=self.adjusted
        )
        self.frames, self.slices, self.rows = [], [], 0


def _record_life(engine: Engine, life: dict, refused: dict[str, str]) -> None:
    rows = [
        {
            "symbol": symbol,
            "listed_at": pd.Timestamp(start, tz="UTC") if start else None,
            "delisted_at": pd.Timestamp(end, tz="UTC") if end else None,
            "unresolved_reason": refused.get(symbol),
        }
        for symbol, (start, end) in life.items()
        if start or end or symbol in refused
    ]
    if rows:
        frame = pd.DataFrame(rows)
        upsert_instruments(engine, frame)


def _record_fetched_coverage(
    engine: Engine,
    data: DataConfig,
    source_name: str,
    keys: list[str],
    windows: dict[str, list[tuple[date, date]]],
    answered: dict[str, list[tuple[date, date]]],
    life: dict,
    refused: dict[str, str],
    last_session: date,
) -> pd.DataFrame:
    """Record the coverage of what this run answered; returns the rows recorded."""
    symbols = sorted(answered)
    if not symbols:
        return pd.DataFrame()
    # whole months: a month in progress counts what earlier runs stored too
    first_day = month_days(min(k for k in keys))[0]
    counts = monthly_bar_counts(
        engine, symbols, day_start(first_day), day_end(last_session), interval=data.interval, adjusted=data.adjusted
    )
    by_key = {(r.instrument, r.partition_key): r for r in counts.itertuples()}
    month_windows = {key: month_window(key, last_session) for key in keys}
    wanted_keys = set(keys)
    rows = []
    for symbol in symbols:
        asked = windows.get(symbol, [])
        # the usual case: every request was answered whole, so no month needs a day-by-day look
        whole = sorted(answered[symbol]) == sorted(asked)
        for start, end in asked:
            for key in keys_between(start, end):
                window = month_windows.get(key) if key in wanted_keys else None
                if window is None:
                    continue
                first, last = window
                if not whole and not _covers(answered[symbol], max(first, start), last):
                    continue  # part of this month was not answered: leave it missing
                stored = by_key.get((symbol, key))
                n = int(stored.rows) if stored is not None else 0
                rows.append((
                    symbol, key, "stored" if n else "absent",
                    None if n else _absent_reason(symbol, first, last, life.get(symbol, (None, None)), refused.get(symbol)),
                    n, stored.first_ts if stored is not None else None, stored.last_ts if stored is not None else None, last,
                ))
    frame = pd.DataFrame(rows, columns=["instrument", "partition_key", "status", "reason", "rows", "first_ts", "last_ts", "fetched_through"])
    frame = frame.assign(interval=data.interval, adjusted=data.adjusted, source=source_name)
    record_coverage(engine, frame)
    return frame


def month_statuses(
    engine: Engine,
    data: DataConfig,
    universe: list[str],
    keys: list[str],
    last_session: date,
    *,
    fetched: list[str] = (),
    failed: dict[str, str] | None = None,
    coverage: pd.DataFrame | None = None,
) -> dict[str, MonthStatus]:
    """Which of ``keys`` are complete for ``universe``, from tt_bar_coverage (or ``coverage``,
    its rows for these symbols and months when the caller has them already)."""
    if coverage is None:
        coverage = read_coverage(engine, interval=data.interval, adjusted=data.adjusted, symbols=universe, partition_keys=keys)
    members, wanted = set(universe), set(keys)
    if len(coverage):
        coverage = coverage[coverage["instrument"].isin(members) & coverage["partition_key"].isin(wanted)]
    windows = {key: month_window(key, last_session) for key in keys}
    ends = {key: window[1] for key, window in windows.items() if window is not None}
    if len(coverage):
        coverage = coverage.assign(fetched_through=pd.to_datetime(coverage["fetched_through"]).dt.date)
        # a row counts once it reaches the month's end (or the last completed session)
        reaches = coverage["fetched_through"] >= coverage["partition_key"].map(ends)
        coverage = coverage[reaches.fillna(False).astype(bool)]
    groups = {key: group for key, group in coverage.groupby("partition_key", sort=False)} if len(coverage) else {}
    failed = failed or {}
    fetched_set = set(fetched)
    months = {}
    for key in keys:
        if windows[key] is None:
            months[key] = MonthStatus(key, True, 0, [], {s: "no completed session yet" for s in universe}, {}, [])
            continue
        group = groups.get(key)
        if group is None:
            group = coverage.iloc[0:0]
        is_stored = (group["status"] == "stored").to_numpy()
        covered = set(group["instrument"])
        missing = {s: failed.get(s, "not fetched yet") for s in universe if s not in covered}
        first_ts, last_ts = group["first_ts"].dropna(), group["last_ts"].dropna()
        months[key] = MonthStatus(
            key=key,
            complete=not missing,
            rows=int(group["rows"].sum()) if len(group) else 0,
            stored=group["instrument"][is_stored].tolist(),
            absent=dict(zip(group["instrument"][~is_stored], group["reason"][~is_stored])),
            missing=missing,
            fetched=sorted(s for s in fetched_set if s in covered or s in missing),
            first_ts=first_ts.min() if len(first_ts) else None,
            last_ts=last_ts.max() if len(last_ts) else None,
        )
    return months


def fill_stored_gaps(engine: Engine, data: DataConfig, symbol: str, start: date, end: date) -> str:
    """Forward-fill a stored slice: a flat bar with volume 0 at each missing session between the
    first and last real bar, never beyond them. Says what was found and done."""
    stored = read_bars(engine, [symbol], day_start(start), day_end(end), interval=data.interval, adjusted=data.adjusted)
    if stored.empty:
        return f"{symbol}: no bars stored in {start}..{end}"
    sessions = expected_timestamps(resolve_calendar(symbol), stored["ts"].min(), stored["ts"].max(), data.interval)
    filled, report = fill_missing(stored, sessions, policy="ffill")
    new_rows = filled[filled["filled"]]
    if len(new_rows):
        write_bars(engine, new_rows.drop(columns="filled"), source=f"{data.source}+ffill", interval=data.interval, adjusted=data.adjusted)
    return report.summary()


def rebuild_adjusted(engine: Engine, data: DataConfig, symbol: str, source_name: str | None = None) -> int:
    """Recompute a symbol's whole adjusted series from its stored raw bars and actions.

    Backward adjustment rescales all history before each event, so adjusting one window at a time
    would leave jumps at window edges; rebuilding the whole series keeps one basis throughout.
    """
    raw = read_bars(engine, [symbol], interval=data.interval, adjusted=False)
    if raw.empty:
        return 0
    adjusted = select_feed(raw, read_corporate_actions(engine, [symbol]), adjustment=True)
    return replace_partition(
        engine, adjusted, symbols=symbol, start=raw["ts"].min(), end=raw["ts"].max(),
        source=source_name or data.source, interval=data.interval, adjusted=True,
    )


def ingest_window(engine: Engine, source: BarSource, data: DataConfig, symbols: list[str], start: date, end: date) -> int:
    """Fetch and store ``symbols`` on the days [start, end] without partition bookkeeping (for
    importing a slice by hand); each answer replaces its slice in one transaction. Returns bars written."""
    fetch_adjusted = data.adjusted and source.serves_adjusted
    written = 0

    def store(answer: SymbolBars) -> None:
        nonlocal written
        written += replace_partition(
            engine, answer.bars, symbols=answer.symbol, start=day_start(answer.start), end=day_end(answer.end),
            source=source.name, interval=data.interval, adjusted=fetch_adjusted,
        )

    report = source.fetch([BarRequest(s, start, end) for s in symbols], interval=data.interval, adjusted=fetch_adjusted, on_bars=store)
    if report.failed:
        symbol, reason = sorted(report.failed.items())[0]
        raise RuntimeError(f"{len(report.failed)} symbols not fetched; {symbol}: {reason}")
    if data.adjusted and not source.serves_adjusted:
        for symbol in symbols:
            rebuild_adjusted(engine, data, symbol, source.name)
    if data.missing_bars == "ffill":
        for symbol in symbols:
            log.info("missing bars: %s", fill_stored_gaps(engine, data, symbol, start, end))
    return written
