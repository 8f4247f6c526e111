"""QuantConnect Lean factor files and map files.

Factor file rows ``yyyymmdd,price_factor,split_factor,reference_price``: a bar on date ``d`` takes
the first row whose date is >= ``d``; adjusted price = raw × price_factor × split_factor (volume
÷ split_factor). The last row (2050-12-31) is a sentinel. Between rows ``i`` and ``i+1`` an event
takes effect on the next trading day after row ``i``'s date: a split of ratio
``split_factor[i+1] / split_factor[i]`` and/or a cash dividend of
``reference_price[i] × (1 − price_factor[i] / price_factor[i+1])``.

Map file rows ``yyyymmdd,ticker,exchange``: the ticker in effect *through* that date for the
security that holds the file's ticker today; the first row is the security's first date. Tickers
get reused (``fb`` before 2012 was another company, ``wm`` 1998–2009 was Washington Mutual), so
a raw file must be cut to the rows of today's security: ``resolve_lean_history``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tt_platform.data.bars import BAR_COLUMNS, PRICE_COLUMNS, empty_bars, normalize_bars
from tt_platform.data.calendars import get_exchange_calendar
from tt_platform.data.corporate_actions.actions import CorporateActionError, normalize_actions
from tt_platform.data.importers._table import RawTable, parse_timestamps, read_table
from tt_platform.data.importers.lean import read_lean_daily

EXCHANGE_TZ = "America/New_York"


# ---- factor files ------------------------------------------------------------------------------


def read_lean_factor_file(path: str | Path) -> pd.DataFrame:
    """``date`` (naive, exchange date), ``price_factor``, ``split_factor``, ``reference_price``."""
    table = read_table(
        path, ["date", "price_factor", "split_factor", "reference_price"],
        floats=["price_factor", "split_factor", "reference_price"],
    )
    dates = parse_timestamps(table, "date", "%Y%m%d", what="date 'yyyymmdd'", shape=r"\d{8}")
    frame = table.frame
    for column in ("price_factor", "split_factor"):
        values = frame[column].to_numpy()
        table.fail_first(~np.isfinite(values) | (values <= 0), f"{column} must be > 0")
    table.fail_first(frame["reference_price"].to_numpy() < 0, "reference_price < 0")
    _strictly_increasing(table, dates)
    return pd.DataFrame(
        {
            "date": dates.to_numpy(),
            "price_factor": frame["price_factor"].to_numpy(),
            "split_factor": frame["split_factor"].to_numpy(),
            "reference_price": frame["reference_price"].to_numpy(),
        }
    )


def _strictly_increasing(table: RawTable, dates: pd.Series) -> None:
    step = dates.diff().to_numpy()[1:]
    bad = np.concatenate([[False], step <= np.timedelta64(0)])
    table.fail_first(bad, "dates must increase strictly")


def _factor_table(factor_file: str | Path | pd.DataFrame) -> pd.DataFrame:
    return factor_file if isinstance(factor_file, pd.DataFrame) else read_lean_factor_file(factor_file)


def _bar_dates(bars: pd.DataFrame, tz: str) -> np.ndarray:
    """Exchange-local calendar date of each bar (daily bars: their 00:00 UTC session date)."""
    ts = bars["ts"]
    if (ts == ts.dt.normalize()).all():
        return ts.dt.tz_localize(None).to_numpy()
    return ts.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize().to_numpy()


def lean_factor_price(
    raw: pd.DataFrame, factor_file: str | Path | pd.DataFrame, *, tz: str = EXCHANGE_TZ
) -> pd.DataFrame:
    """Lean-adjusted bars: raw × price_factor × split_factor, volume ÷ split_factor.

    Works for daily and intraday bars (intraday bars use their New York date). One symbol per call.
    """
    bars = normalize_bars(raw, origin="raw bars")
    if bars["symbol"].nunique() > 1:
        raise CorporateActionError("lean_factor_price takes one symbol per call (one factor file per symbol)")
    factors = _factor_table(factor_file)
    if bars.empty:
        return bars
    dates = _bar_dates(bars, tz)
    row = np.searchsorted(factors["date"].to_numpy(), dates, side="left")  # first row with date >= d
    if (row >= len(factors)).any():
        late = pd.Timestamp(dates[row >= len(factors)][0])
        raise CorporateActionError(f"bar on {late:%Y-%m-%d} is after the factor file's last row")
    scale = factors["price_factor"].to_numpy()[row] * factors["split_factor"].to_numpy()[row]
    out = bars.copy()
    for column in PRICE_COLUMNS:
        out[column] = bars[column].to_numpy() * scale
    out["volume"] = bars["volume"].to_numpy() / factors["split_factor"].to_numpy()[row]
    return out[BAR_COLUMNS]


def actions_from_lean_factor_file(
    factor_file: str | Path | pd.DataFrame, symbol: str, *, calendar: str = "XNYS"
) -> pd.DataFrame:
    """Split and cash-dividend events implied by consecutive factor rows (see module docstring)."""
    factors = _factor_table(factor_file)
    origin = f"lean factor file for {symbol}" if isinstance(factor_file, pd.DataFrame) else f"{factor_file} ({symbol})"
    cal = get_exchange_calendar(calendar)
    rows = []
    for i in range(len(factors) - 1):
        this, following = factors.iloc[i], factors.iloc[i + 1]
        split_changed = not np.isclose(following["split_factor"], this["split_factor"], rtol=1e-9, atol=0)
        price_changed = not np.isclose(following["price_factor"], this["price_factor"], rtol=1e-9, atol=0)
        if not (split_changed or price_changed):
            continue
        try:
            ex_date = cal.date_to_session(pd.Timestamp(this["date"]) + pd.Timedelta(days=1), direction="next")
        except ValueError as exc:  # before or after the sessions the calendar knows
            raise CorporateActionError(
                f"{origin}: factor row {pd.Timestamp(this['date']):%Y-%m-%d} has no next {calendar} session ({exc})"
            ) from None
        if split_changed:
            rows.append((symbol, ex_date, "split", following["split_factor"] / this["split_factor"]))
        if price_changed:
            dividend = this["reference_price"] * (1.0 - this["price_factor"] / following["price_factor"])
            if dividend <= 0:
                raise CorporateActionError(
                    f"{origin}: factor row {pd.Timestamp(this['date']):%Y-%m-%d} implies a non-positive dividend ({dividend:.6g})"
                )
            rows.append((symbol, ex_date, "cash_dividend", dividend))
    frame = pd.DataFrame(rows, columns=["symbol", "ex_date", "action_type", "value"])
    return normalize_actions(frame, origin)


# ---- map files -----------------------------------------------------------------------------------


def read_lean_map_file(path: str | Path) -> pd.DataFrame:
    """``date`` (naive), ``ticker`` (upper case), ``exchange``; dates strictly increasing."""
    table = read_table(path, ["date", "ticker", "exchange"], optional=["exchange"])
    dates = parse_timestamps(table, "date", "%Y%m%d", what="date 'yyyymmdd'", shape=r"\d{8}")
    _strictly_increasing(table, dates)
    tickers = table.frame["ticker"].str.strip().str.upper()
    return pd.DataFrame({"date": dates.to_numpy(), "ticker": tickers.to_numpy(), "exchange": table.frame["exchange"].to_numpy()})


def ticker_in_effect(map_table: pd.DataFrame, dates) -> np.ndarray:
    """Ticker of the mapped security on each date; ``None`` before its first date or after the last row."""
    dates = pd.DatetimeIndex(dates).tz_localize(None) if getattr(dates, "tz", None) else pd.DatetimeIndex(dates)
    map_dates = map_table["date"].to_numpy()
    row = np.searchsorted(map_dates, dates.to_numpy(), side="left")  # first row with date >= d
    out = np.full(len(dates), None, dtype=object)
    valid = (row < len(map_table)) & (dates.to_numpy() >= map_dates[0])
    out[valid] = map_table["ticker"].to_numpy()[row[valid]]
    return out


@dataclass(frozen=True)
class LeanHistory:
    """Daily raw bars of the security holding ``symbol`` today, and what was left out."""

    symbol: str
    bars: pd.DataFrame
    dropped: pd.DataFrame  # start, end, rows, file, ticker_in_effect, reason
    segments: pd.DataFrame  # from the map file: start, end, ticker
    notes: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        parts = [f"{self.symbol}: {len(self.bars)} bars kept"]
        for row in self.dropped.itertuples(index=False):
            parts.append(f"dropped {row.rows} row(s) {row.start:%Y-%m-%d}..{row.end:%Y-%m-%d} of {row.file}: {row.reason}")
        parts.extend(self.notes)
        return "; ".join(parts)


def _layout(data_dir: Path, bars_dir: Path | None, map_dir: Path | None) -> tuple[Path, Path]:
    if bars_dir is not None and map_dir is not None:
        return bars_dir, map_dir
    candidates = [
        (data_dir / "daily" / "lean_raw_vendor_format", data_dir / "corporate_actions" / "lean_map_files"),  # shared data
        (data_dir / "equity" / "usa" / "daily", data_dir / "equity" / "usa" / "map_files"),  # Lean's Data folder
        (data_dir / "daily", data_dir / "map_files"),
    ]
    for daily, maps in candidates:
        if daily.is_dir() and maps.is_dir():
            return bars_dir or daily, map_dir or maps
    raise FileNotFoundError(f"{data_dir}: no Lean daily and map_files folders found (pass bars_dir= and map_dir=)")


def _bars_file(folder: Path, ticker: str) -> Path | None:
    for name in (f"{ticker.lower()}.csv", f"{ticker.lower()}.zip", f"{ticker.upper()}.csv"):
        if (folder / name).is_file():
            return folder / name
    return None


def map_segments(map_table: pd.DataFrame) -> pd.DataFrame:
    """Date ranges per ticker, ``start, end, ticker`` (inclusive): a ticker covers the days after
    the previous row's date through its own row's date; the first row starts the history."""
    dates = map_table["date"].to_numpy()
    tickers = map_table["ticker"].to_numpy()
    rows = []
    start = dates[0]
    for k in range(len(dates)):
        if k == len(dates) - 1 or tickers[k + 1] != tickers[k]:
            rows.append((pd.Timestamp(start), pd.Timestamp(dates[k]), tickers[k]))
            start = dates[k] + np.timedelta64(1, "D")
    return pd.DataFrame(rows, columns=["start", "end", "ticker"])


def resolve_lean_history(
    symbol: str,
    data_dir: str | Path | None = None,
    *,
    include_previous_tickers: bool = False,
    bars_dir: str | Path | None = None,
    map_dir: str | Path | None = None,
) -> LeanHistory:
    """Raw daily bars of the security that holds ``symbol`` today (per its map file).

    Rows of ``<symbol>.csv`` dated before the security's first date, or on dates when the map file
    says the security traded under another ticker, belong to other securities and are dropped
    (and listed in ``dropped``). With ``include_previous_tickers`` the security's earlier
    history is taken from the files of its earlier tickers (``wmi.csv`` for today's WM); a missing
    file is noted, not invented. ``data_dir`` defaults to the ``TT_SHARED_DATA`` setting; both the
    shared-data layout and Lean's own ``equity/usa/{daily,map_files}`` are recognised.
    """
    if data_dir is None:
        from tt_platform.settings import get_settings

        data_dir = get_settings().shared_data
        if data_dir is None:
            raise FileNotFoundError("no data_dir given and TT_SHARED_DATA is not set")
    data_dir = Path(data_dir)
    daily, maps = _layout(data_dir, Path(bars_dir) if bars_dir else None, Path(map_dir) if map_dir else None)
    ticker = symbol.strip().upper()
    map_path = _bars_file(maps, ticker)
    if map_path is None:
        raise FileNotFoundError(f"no map file for {ticker} in {maps}")
    map_table = read_lean_map_file(map_path)
    segments = map_segments(map_table)
    notes: list[str] = []
    kept: list[pd.DataFrame] = []
    dropped: list[dict] = []

    files = [ticker] + ([t for t in dict.fromkeys(segments["ticker"]) if t != ticker] if include_previous_tickers else [])
    for file_ticker in files:
        path = _bars_file(daily, file_ticker)
        if path is None:
            if file_ticker == ticker:
                raise FileNotFoundError(f"no daily file for {ticker} in {daily}")
            spans = segments[segments["ticker"] == file_ticker]
            span_text = ", ".join(f"{r.start:%Y-%m-%d}..{r.end:%Y-%m-%d}" for r in spans.itertuples())
            notes.append(f"no file for earlier ticker {file_ticker} ({span_text}); that history is missing")
            continue
        raw = read_lean_daily(path, symbol=ticker)
        dates = raw["ts"].dt.tz_localize(None)
        in_effect = ticker_in_effect(map_table, dates)
        keep = in_effect == file_ticker
        kept.append(raw.loc[keep])
        dropped.extend(_dropped_runs(raw, keep, in_effect, map_table, path.name, file_ticker))
    bars = normalize_bars(pd.concat(kept, ignore_index=True), origin=f"lean history {ticker}") if kept else empty_bars()
    dropped_frame = pd.DataFrame(dropped, columns=["start", "end", "rows", "file", "ticker_in_effect", "reason"])
    return LeanHistory(ticker, bars, dropped_frame, segments, tuple(notes))


def _dropped_runs(raw, keep, in_effect, map_table, file_name, file_ticker) -> list[dict]:
    """Contiguous runs of dropped rows with the same reason."""
    if keep.all():
        return []
    first_date = pd.Timestamp(map_table["date"].iloc[0])
    labels = pd.Series(["" if k else str(t) for k, t in zip(keep, in_effect)])
    run_id = (labels != labels.shift()).cumsum()
    runs = []
    for _, positions in labels.groupby(run_id).groups.items():
        first, last = positions[0], positions[-1]
        if keep[first]:
            continue
        effect = in_effect[first]
        if effect is None:
            before = raw["ts"].iloc[first].tz_localize(None) < first_date
            reason = (
                f"before the security's first date {first_date:%Y-%m-%d}: another security used the ticker"
                if before else "after the map file's last row"
            )
        else:
            reason = f"the security traded as {effect} then; these {file_ticker} rows belong to another security"
        runs.append(
            {
                "start": raw["ts"].iloc[first], "end": raw["ts"].iloc[last], "rows": last - first + 1,
                "file": file_name, "ticker_in_effect": effect, "reason": reason,
            }
        )
    return runs
