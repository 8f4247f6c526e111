"""Unrecorded splits: one-day moves in raw bars that look like a split no corporate action explains.

A split changes the price between the previous close and the next open by the split ratio, and the
share volume by the same ratio (the value traded stays about the same). A real crash or rally
moves the price by an arbitrary amount and comes with a volume surge far beyond its price change.
So a day is called a suspected split only when all of these hold:

- the open gaps from the previous close by at least ``log_return_threshold`` (log return) and that
  gap is within ``tolerance`` (log) of a common split ratio (``SPLIT_FACTORS``);
- the close confirms it: same direction, and within ``close_tolerance`` (log) of the same ratio
  (a single bad opening print does not look like a split);
- the share volume matches the ratio: the day's volume over the median of the previous
  ``volume_window`` days, divided by the ratio, lies in [``min_volume_ratio``, ``volume_jump``].
  Without volume to compare the move is listed as unconfirmed but not failed.

A recorded split (``split`` rows of a corporate-actions frame such as
``store.corporate_actions.read_corporate_actions`` returns) on that date explains the move when
the gap is within ``close_tolerance`` of the recorded ratio; a recorded split whose ratio is far
from the move fails as a mismatch. Adjusted bars have no split moves and always pass.

Intraday bars are checked on their daily aggregate (first open, last close, summed volume per
exchange-local date).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from tt_platform.data.calendars import get_exchange_calendar, resolve_calendar
from tt_platform.data.quality import CheckResult, Severity

# new shares per old share: forward splits, then reverse splits
SPLIT_FACTORS: tuple[float, ...] = (
    1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 15.0, 20.0,
    1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 6, 1 / 8, 1 / 10, 1 / 15, 1 / 20, 1 / 25, 1 / 30, 1 / 50,
)
SAMPLE = 10  # days listed per category in details


def split_ratio_label(factor: float) -> str:
    """``7.0`` -> ``"7:1"``, ``1.5`` -> ``"3:2"``, ``0.05`` -> ``"1:20"`` (new shares : old shares)."""
    fraction = Fraction(float(factor)).limit_denominator(100)
    return f"{fraction.numerator}:{fraction.denominator}"


def _daily(bars: pd.DataFrame, symbol: str, calendar: str | None) -> pd.DataFrame:
    """``symbol``'s bars as one row per date (intraday bars aggregated by exchange-local date)."""
    mine = bars.loc[(bars["symbol"].astype(str) == symbol).to_numpy()] if len(bars) else bars
    mine = mine.sort_values("ts", kind="stable")
    if mine.empty:
        return pd.DataFrame({"date": pd.Series(dtype="object"), **{c: pd.Series(dtype="float64") for c in ("open", "close", "volume")}})
    ts = pd.DatetimeIndex(mine["ts"]).tz_convert("UTC")
    frame = pd.DataFrame(
        {"open": mine["open"].to_numpy(float), "close": mine["close"].to_numpy(float), "volume": mine["volume"].to_numpy(float)}
    )
    if (ts == ts.normalize()).all():
        frame["date"] = ts.date
        return frame.groupby("date", sort=True).agg(open=("open", "first"), close=("close", "last"), volume=("volume", "sum")).reset_index()
    name = calendar if calendar is not None else resolve_calendar(symbol)
    frame["date"] = ts.tz_convert(get_exchange_calendar(name).tz).date
    # prices from regular hours where a date has any: a pre-market print can still carry the
    # pre-split price after the split took effect
    regular = _in_regular_hours(ts, name)
    has_regular = pd.Series(regular).groupby(frame["date"].to_numpy()).transform("any").to_numpy()
    priced = frame[regular | ~has_regular]
    prices = priced.groupby("date", sort=True).agg(open=("open", "first"), close=("close", "last"))
    volume = frame.groupby("date", sort=True)["volume"].sum()
    return prices.join(volume).reset_index()


def _in_regular_hours(ts: pd.DatetimeIndex, calendar: str) -> np.ndarray:
    cal = get_exchange_calendar(calendar)
    first = max(ts.min().tz_localize(None).normalize() - pd.Timedelta(days=1), cal.first_session)
    last = min(ts.max().tz_localize(None).normalize() + pd.Timedelta(days=1), cal.last_session)
    if first > last:
        return np.zeros(len(ts), dtype=bool)
    sessions = cal.sessions_in_range(first, last)
    opens = pd.DatetimeIndex(cal.opens.reindex(sessions)).as_unit("ns").asi8
    closes = pd.DatetimeIndex(cal.closes.reindex(sessions)).as_unit("ns").asi8
    stamps = ts.as_unit("ns").asi8
    latest = np.searchsorted(opens, stamps, "right") - 1
    return (latest >= 0) & (stamps < closes[latest.clip(min=0)]) if len(opens) else np.zeros(len(ts), dtype=bool)


def _recorded_splits(actions: pd.DataFrame | None, symbol: str) -> dict[Any, float]:
    """Recorded split ratio per ex-date (several on one date multiply)."""
    if actions is None or len(actions) == 0:
        return {}
    kind = "action_type" if "action_type" in actions.columns else "type"
    missing = [c for c in ("symbol", "ex_date", kind, "value") if c not in actions.columns]
    if missing:
        raise ValueError(f"corporate actions: missing columns {missing}; expected symbol, ex_date, action_type, value")
    mine = actions[
        (actions["symbol"].astype(str).str.strip().str.upper() == symbol.upper())
        & (actions[kind].astype(str).str.strip().str.lower() == "split")
    ]
    out: dict[Any, float] = {}
    for stamp, value in zip(pd.to_datetime(mine["ex_date"], utc=True), mine["value"].astype(float)):
        out[stamp.date()] = out.get(stamp.date(), 1.0) * float(value)
    return out


def _nearest(log_ratio: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per value: the nearest factor (in log terms) and the log distance to it."""
    distance = np.abs(log_ratio[:, None] - np.log(factors)[None, :])
    best = distance.argmin(axis=1)
    return factors[best], distance[np.arange(len(log_ratio)), best]


def _round(value: float, digits: int = 4) -> float | None:
    return None if not np.isfinite(value) else round(float(value), digits)


def check_unrecorded_splits(
    bars: pd.DataFrame,
    actions: pd.DataFrame | None,
    *,
    symbol: str,
    log_return_threshold: float = 0.3,
    volume_jump: float = 2.0,
    tolerance: float = 0.06,
    close_tolerance: float = 0.25,
    min_volume_ratio: float = 0.25,
    volume_window: int = 20,
    factors: tuple[float, ...] = SPLIT_FACTORS,
    calendar: str | None = None,
    severity: Severity = "error",
) -> CheckResult:
    """Days of ``symbol``'s bars that look like a split ``actions`` does not record (see the module).

    ``value`` is the number of suspected unrecorded splits plus recorded splits whose ratio does
    not match the move. ``details``: ``suspected`` (symbol, date, ratio such as ``"7:1"``, factor,
    observed open and close ratios, prices, volume_ratio (day / median before) and
    volume_vs_split (that over the ratio), recorded_near: a recorded split within 5 days),
    ``mismatched`` (the same plus the recorded ratio), ``explained`` (moves a recorded split
    accounts for), ``unconfirmed`` (split-like prices without volume to confirm), ``large_moves``
    (other moves beyond the threshold, judged real), the thresholds and a ``message`` saying how
    to load the action and switch to adjusted bars.
    """
    symbol = str(symbol)
    days = _daily(bars, symbol, calendar)
    recorded = _recorded_splits(actions, symbol)
    grid = np.asarray(factors, dtype=float)
    settings = {
        "log_return_threshold": log_return_threshold,
        "tolerance": tolerance,
        "close_tolerance": close_tolerance,
        "volume_jump": volume_jump,
        "min_volume_ratio": min_volume_ratio,
        "volume_window": volume_window,
    }
    suspected: list[dict[str, Any]] = []
    mismatched: list[dict[str, Any]] = []
    explained: list[dict[str, Any]] = []
    unconfirmed: list[dict[str, Any]] = []
    large: list[dict[str, Any]] = []
    if len(days) >= 2:
        opens, closes, volumes = (days[c].to_numpy(float) for c in ("open", "close", "volume"))
        previous = closes[:-1]
        volume = pd.Series(volumes).where(lambda v: v > 0)
        baseline = volume.shift(1).rolling(volume_window, min_periods=1).median().to_numpy()[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            # positive for a forward split (the price falls), negative for a reverse split
            gap = np.log(previous / opens[1:])
            move = np.log(previous / closes[1:])
            volume_ratio = volumes[1:] / baseline
        factor, distance = _nearest(gap, grid)
        for i in np.flatnonzero((np.abs(gap) >= log_return_threshold) | (np.abs(move) >= log_return_threshold)):
            day = days["date"].iloc[i + 1]
            entry: dict[str, Any] = {
                "symbol": symbol,
                "date": day.isoformat(),
                "open_ratio": _round(previous[i] / opens[i + 1]),
                "close_ratio": _round(previous[i] / closes[i + 1]),
                "prev_close": _round(previous[i]),
                "open": _round(opens[i + 1]),
                "close": _round(closes[i + 1]),
                "volume_ratio": _round(volume_ratio[i], 3),
            }
            if day in recorded:
                value = recorded[day]
                entry.update(recorded=value, recorded_ratio=split_ratio_label(value))
                if abs(gap[i] - np.log(value)) <= close_tolerance:
                    explained.append(entry)
                else:
                    entry.update(ratio=split_ratio_label(factor[i]), factor=float(factor[i]))
                    mismatched.append(entry)
                continue
            f = float(factor[i])
            entry.update(ratio=split_ratio_label(f), factor=f)
            price_like = (
                abs(gap[i]) >= log_return_threshold
                and distance[i] <= tolerance
                and np.sign(move[i]) == np.sign(gap[i])
                and abs(move[i] - np.log(f)) <= close_tolerance
            )
            implied = volume_ratio[i] / f
            entry["volume_vs_split"] = _round(implied, 3)
            if not price_like:
                large.append(entry)
            elif not np.isfinite(implied):
                unconfirmed.append(entry)
            elif min_volume_ratio <= implied <= volume_jump:
                near = [d for d in recorded if abs((d - day).days) <= 5 and abs(np.log(recorded[d]) - np.log(f)) <= close_tolerance]
                entry["recorded_near"] = (
                    {"date": near[0].isoformat(), "ratio": split_ratio_label(recorded[near[0]])} if near else None
                )
                suspected.append(entry)
            else:
                large.append(entry)
    failures = len(suspected) + len(mismatched)
    return CheckResult(
        "unrecorded_splits",
        passed=failures == 0,
        severity=severity,
        value=failures,
        details={
            "symbol": symbol,
            "days": int(len(days)),
            "recorded_splits": len(recorded),
            "suspected": suspected[:SAMPLE],
            "mismatched": mismatched[:SAMPLE],
            "explained": explained[:SAMPLE],
            "unconfirmed": unconfirmed[:SAMPLE],
            "large_moves": large[:SAMPLE],
            "counts": {
                "suspected": len(suspected), "mismatched": len(mismatched), "explained": len(explained),
                "unconfirmed": len(unconfirmed), "large_moves": len(large),
            },
            **settings,
            "message": _message(symbol, suspected, mismatched),
        },
    )


def _message(symbol: str, suspected: list[dict[str, Any]], mismatched: list[dict[str, Any]]) -> str:
    if not suspected and not mismatched:
        return f"{symbol}: no unrecorded split"
    parts = []
    if suspected:
        first = suspected[0]
        parts.append(
            f"{symbol}: {first['date']} looks like an unrecorded {first['ratio']} split "
            f"(close {first['prev_close']} -> open {first['open']}, volume x{first['volume_ratio']})"
        )
        if first.get("recorded_near"):
            near = first["recorded_near"]
            parts.append(f"a {near['ratio']} split is recorded on {near['date']}: check its ex-date")
        if len(suspected) > 1:
            parts.append(f"{len(suspected) - 1} more: {', '.join(s['date'] + ' ' + s['ratio'] for s in suspected[1:4])}")
    if mismatched:
        first = mismatched[0]
        parts.append(
            f"{symbol}: {first['date']} moved like a {first['ratio']} split but the recorded split is "
            f"{first['recorded_ratio']}: check the corporate action"
        )
    example = suspected[0] if suspected else mismatched[0]
    parts.append(
        f"load the split (tt corporate-actions <factor file> --format lean --symbol {symbol}, or "
        f"tt corporate-actions <file.csv> --format csv with the row "
        f"symbol,ex_date,action_type,value = {symbol},{example['date']},split,{example['factor']:g}) "
        "and use adjusted bars (data.adjusted: true in the run config)"
    )
    return "; ".join(parts)
