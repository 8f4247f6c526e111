"""Check a batch of corporate actions completely before one row of it is stored.

``validate_actions`` reads a whole batch (``symbol, ex_date, action_type, value, source``) and
either returns it in canonical form or refuses it whole with ``InvalidActionsError``: one
sentence naming the first bad row (its position, symbol, ex_date, action_type and value), what
is wrong with it and how many rows of the batch fail a check. The store's write path runs it
inside the transaction of its upsert, so a refused batch leaves the table exactly as it was.

Pure: pandas only, no SQL, no Dagster.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tt_platform.data.corporate_actions.actions import (
    ACTION_TYPES,
    CorporateActionError,
)

BATCH_COLUMNS = ["symbol", "ex_date", "action_type", "value", "source"]

# A split ratio is new shares per old share. Real ones sit far inside these bounds (AAPL's 7:1,
# AIG's 1:20 reverse split; the most extreme reverse splits are around 1:1000); a ratio outside
# is an entry mistake: a percentage, share counts instead of a ratio, a lost decimal point.
MIN_SPLIT_RATIO = 1 / 1000
MAX_SPLIT_RATIO = 1000.0
# Ex-dates are announced weeks, at most months, ahead: a future ex-date is legitimate, one more
# than a year ahead (2099) is a typo.
MAX_DAYS_AHEAD = 366

DEFAULT_ORIGIN = "corporate actions"


class InvalidActionsError(CorporateActionError):
    """A batch of corporate actions refused whole; the message names the first bad row."""


@dataclass(frozen=True)
class _Batch:
    """The raw batch (positional index) and its columns read into canonical types.

    Unreadable entries are None / NaT / NaN in the canonical columns; the raw ones are kept for
    the message, so a user sees what they wrote."""

    raw: pd.DataFrame
    symbol: pd.Series  # upper case, None where missing or blank
    ex_date: pd.Series  # UTC timestamps, NaT where missing or not a date
    ex_date_missing: np.ndarray
    action_type: pd.Series  # lower case, None where missing
    value: np.ndarray  # float64, NaN where not a number
    source: pd.Series  # None where missing or blank
    today: dt.date


@dataclass(frozen=True)
class _Check:
    fails: Callable[[_Batch], np.ndarray]
    # what is wrong with a failing row, read after "row N of M (...) has"
    problem: Callable[[_Batch, int], str]


def validate_actions(
    frame: pd.DataFrame, *, today: dt.date | None = None, origin: str = DEFAULT_ORIGIN
) -> pd.DataFrame:
    """The batch in canonical form (upper-case symbols, ex_date 00:00 UTC, lower-case
    action_type, float values), or ``InvalidActionsError`` if any row fails a check.

    ``today`` (default: the current UTC date) bounds future ex-dates; ``origin`` (a file, a
    vendor) starts the message. An empty batch is valid and returns an empty frame."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{origin}: expected a DataFrame of corporate actions, got {type(frame).__name__}")
    missing = [c for c in BATCH_COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidActionsError(
            f"{origin}: the batch lacks the columns {missing} (it needs {BATCH_COLUMNS}), so nothing of it is stored"
        )
    batch = _read_batch(frame, today or dt.datetime.now(dt.UTC).date())
    problem = _first_problem(batch)
    if problem is not None:
        raise InvalidActionsError(f"{origin}: {problem}")
    return _canonical(batch)


# ---- reading the batch ---------------------------------------------------------------------------


def _blank(raw: pd.Series) -> np.ndarray:
    """None, NaN, NaT or a string of only spaces."""
    empty_text = raw.map(lambda v: isinstance(v, str) and not v.strip())
    return (raw.isna() | empty_text.astype(bool)).to_numpy()


def _read_batch(frame: pd.DataFrame, today: dt.date) -> _Batch:
    raw = frame[BATCH_COLUMNS].reset_index(drop=True)
    symbol = _text(raw["symbol"], str.upper)
    action_type = _text(raw["action_type"], str.lower)
    source = _text(raw["source"], lambda text: text)
    ex_date, ex_date_missing = _read_ex_dates(raw["ex_date"])
    value = pd.to_numeric(raw["value"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return _Batch(raw, symbol, ex_date, ex_date_missing, action_type, value, source, today)


def _text(raw: pd.Series, case: Callable[[str], str]) -> pd.Series:
    """Stripped text in ``case``, None where the entry is missing or blank (object dtype, so a
    missing entry stays None rather than becoming NaN or the text "nan")."""
    blank = _blank(raw)
    texts = [None if empty else case(str(v).strip()) for v, empty in zip(raw, blank, strict=True)]
    return pd.Series(texts, index=raw.index, dtype=object)


def _read_ex_dates(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """UTC timestamps (naive ones are taken as UTC, like every read of the store) and the mask of
    missing entries; NaT also where an entry is not a date (a number, unparseable text)."""
    missing = _blank(raw)
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return _storable(raw.dt.tz_convert("UTC")), missing
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        return _storable(raw.dt.tz_localize("UTC")), missing
    # a number would parse as nanoseconds since 1970: refuse it instead of guessing
    readable = raw.map(lambda v: isinstance(v, (str, dt.date, np.datetime64))).to_numpy(dtype=bool) & ~missing
    stamps = [_parse_one_date(v) if ok else pd.NaT for v, ok in zip(raw, readable, strict=True)]
    return pd.Series(pd.DatetimeIndex(stamps, dtype="datetime64[ns, UTC]"), index=raw.index), missing


def _storable(stamps: pd.Series) -> pd.Series:
    """Nanosecond UTC stamps, NaT for those outside 1677..2262 (a column of another unit may hold them)."""
    inside = stamps.between(pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC"))
    return stamps.where(inside).astype("datetime64[ns, UTC]")


def _parse_one_date(value) -> pd.Timestamp:
    """The UTC timestamp of one entry; NaT when it is no date the store can hold."""
    try:
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.as_unit("ns")
    except (ValueError, TypeError, OverflowError):  # unparseable text, or outside 1677..2262
        return pd.NaT


def _canonical(batch: _Batch) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": batch.symbol.astype(object),
            "ex_date": batch.ex_date.astype("datetime64[ns, UTC]"),
            "action_type": batch.action_type.astype(object),
            "value": batch.value,
            "source": batch.source.astype(object),
        }
    )


# ---- the checks ----------------------------------------------------------------------------------


def _parsed_ex_date(batch: _Batch) -> np.ndarray:
    return batch.ex_date.notna().to_numpy()


def _has_time_of_day(batch: _Batch) -> np.ndarray:
    stamps = batch.ex_date
    return (_parsed_ex_date(batch) & (stamps != stamps.dt.normalize()).to_numpy()).astype(bool)


def _latest_ex_date(batch: _Batch) -> pd.Timestamp:
    return pd.Timestamp(batch.today, tz="UTC") + pd.Timedelta(days=MAX_DAYS_AHEAD)


def _too_far_ahead(batch: _Batch) -> np.ndarray:
    return (_parsed_ex_date(batch) & (batch.ex_date > _latest_ex_date(batch)).to_numpy()).astype(bool)


def _known_type(batch: _Batch) -> np.ndarray:
    return batch.action_type.isin(ACTION_TYPES).to_numpy()


def _finite(batch: _Batch) -> np.ndarray:
    return np.isfinite(batch.value)


def _of_type(batch: _Batch, action_type: str) -> np.ndarray:
    return (batch.action_type == action_type).to_numpy() & _finite(batch)


def _implausible_split(batch: _Batch) -> np.ndarray:
    inside = (batch.value >= MIN_SPLIT_RATIO) & (batch.value <= MAX_SPLIT_RATIO)
    return _of_type(batch, "split") & ~inside


def _negative_dividend(batch: _Batch) -> np.ndarray:
    return _of_type(batch, "cash_dividend") & (batch.value < 0)


def _key_frame(batch: _Batch) -> pd.DataFrame:
    return pd.DataFrame({"symbol": batch.symbol, "ex_date": batch.ex_date, "action_type": batch.action_type})


def _has_key(batch: _Batch) -> np.ndarray:
    return batch.symbol.notna().to_numpy() & _parsed_ex_date(batch) & _known_type(batch)


def _shares_its_key(batch: _Batch) -> np.ndarray:
    # the store keeps one event per key: upserting two would keep an arbitrary one
    keys = _key_frame(batch)[_has_key(batch)]
    shared = np.zeros(len(batch.raw), dtype=bool)
    shared[keys.index[keys.duplicated(keep=False)]] = True
    return shared


def _rows_sharing_key(batch: _Batch, position: int) -> np.ndarray:
    keys = _key_frame(batch)
    same = (keys == keys.iloc[position]).all(axis=1).to_numpy() & _has_key(batch)
    return np.flatnonzero(same)


def _describe_shared_key(batch: _Batch, position: int) -> str:
    rows = _rows_sharing_key(batch, position)
    values = list(dict.fromkeys(_show_value(batch.raw["value"].iloc[r]) for r in rows))
    combine = "sum same-day dividends or multiply same-day splits into one row"
    if len(values) > 1:
        return (
            f"a key (symbol, ex_date, action_type) that {len(rows)} rows of the batch share with different "
            f"values {_listing(values)}: the store keeps one event per key, so {combine} or keep the right one"
        )
    return (
        f"a key (symbol, ex_date, action_type) that {len(rows)} rows of the batch share: the store keeps one "
        f"event per key, so {combine}"
    )


def _listing(items: list[str], shown: int = 4) -> str:
    """"a, b and c"; past ``shown`` items, "a, b, c, d and 20 more" (a message stays one line)."""
    if len(items) > shown:
        return f"{', '.join(items[:shown])} and {len(items) - shown} more"
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def _fixed(text: str) -> Callable[[_Batch, int], str]:
    return lambda batch, position: text


CHECKS: tuple[_Check, ...] = (
    _Check(lambda b: b.symbol.isna().to_numpy(), _fixed("no symbol")),
    _Check(lambda b: b.ex_date_missing, _fixed("no ex_date")),
    _Check(
        lambda b: ~b.ex_date_missing & ~_parsed_ex_date(b),
        _fixed("an ex_date that is not a readable date between 1677 and 2262"),
    ),
    _Check(
        _has_time_of_day,
        _fixed("an ex_date with a time of day, but an ex_date is a date stamped 00:00 UTC like that day's daily bar"),
    ),
    _Check(
        _too_far_ahead,
        lambda b, _: (
            f"an ex_date more than {MAX_DAYS_AHEAD} days after today ({b.today:%Y-%m-%d}), later than any "
            f"announced one can be (the latest accepted is {_latest_ex_date(b):%Y-%m-%d})"
        ),
    ),
    _Check(lambda b: ~_known_type(b), _fixed(f"an action_type that is not one of {', '.join(ACTION_TYPES)}")),
    _Check(lambda b: ~_finite(b), _fixed("a value that is not a finite number")),
    _Check(
        _implausible_split,
        _fixed(f"a split ratio (new shares per old share) outside [{MIN_SPLIT_RATIO:g}, {MAX_SPLIT_RATIO:g}]"),
    ),
    _Check(_negative_dividend, _fixed("a negative dividend")),
    _Check(lambda b: b.source.isna().to_numpy(), _fixed("no source (it records where the event came from)")),
    _Check(_shares_its_key, _describe_shared_key),
)


def _first_problem(batch: _Batch) -> str | None:
    """One sentence about the first failing row (and its first failed check), or None."""
    n = len(batch.raw)
    if n == 0:
        return None
    failures = np.vstack([np.asarray(check.fails(batch), dtype=bool) for check in CHECKS])
    bad_rows = failures.any(axis=0)
    if not bad_rows.any():
        return None
    position = int(np.flatnonzero(bad_rows)[0])
    check = CHECKS[int(np.flatnonzero(failures[:, position])[0])]
    count = int(bad_rows.sum())
    fail = "fails" if count == 1 else "fail"
    return (
        f"{_describe_row(batch, position)} has {check.problem(batch, position)}; "
        f"{count} of the {n} rows {fail} a check, so nothing of the batch is stored"
    )


# ---- the message ---------------------------------------------------------------------------------


def _describe_row(batch: _Batch, position: int) -> str:
    raw = batch.raw.iloc[position]
    symbol = batch.symbol.iloc[position] or repr(raw["symbol"])
    action_type = batch.action_type.iloc[position] or repr(raw["action_type"])
    return (
        f"row {position + 1} of {len(batch.raw)} in the batch (symbol {symbol}, ex_date "
        f"{_show_ex_date(batch, position)}, action_type {action_type}, value {_show_value(raw['value'])})"
    )


def _show_ex_date(batch: _Batch, position: int) -> str:
    stamp = batch.ex_date.iloc[position]
    if pd.isna(stamp):
        return repr(batch.raw["ex_date"].iloc[position])
    return f"{stamp:%Y-%m-%d}" if stamp == stamp.normalize() else stamp.isoformat()


def _show_value(value) -> str:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return repr(value)
    return repr(float(value))
