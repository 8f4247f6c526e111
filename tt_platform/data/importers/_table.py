"""Reading delimited vendor files with errors that name the file, line and problem.

Every reader goes through ``read_table``: a fast typed pandas parse first, and only when that
fails (or leaves a hole) a string parse that finds the exact offending line. Rows therefore keep
their physical line numbers (``RawTable.lines``) so later checks (price <= 0, duplicate stamps,
bad dates) can point at the line too.
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd
from pandas.errors import EmptyDataError, ParserError

from tt_platform.data.importers.errors import ImportFormatError, check_text_file, not_text_error

ENCODING = "utf-8-sig"  # tolerate a byte-order mark on the first line
# pandas parses year 1 or 9999, but bars are stamped in nanoseconds (1677-09-21 .. 2262-04-11);
# a day's margin inside that keeps time zones and milliseconds of the day from crossing it
EARLIEST, LATEST = pd.Timestamp("1678-01-01"), pd.Timestamp("2261-12-31")
_FIELD_COUNT = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


@dataclass
class RawTable:
    """Parsed rows of one file plus the physical line number of each row."""

    path: Path
    frame: pd.DataFrame
    lines: np.ndarray

    def fail(self, position: int, problem: str) -> NoReturn:
        raise ImportFormatError(self.path, int(self.lines[position]), problem)

    def fail_first(self, mask: np.ndarray | pd.Series, problem: str) -> None:
        """Raise for the first row where ``mask`` is true."""
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.fail(int(np.flatnonzero(mask)[0]), problem)

    def take(self, mask: np.ndarray | pd.Series) -> RawTable:
        mask = np.asarray(mask, dtype=bool)
        return RawTable(self.path, self.frame.loc[mask].reset_index(drop=True), self.lines[mask])


def open_text(path: Path) -> io.TextIOBase:
    """Open a plain, .gz or single-member .zip file as text."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=ENCODING, newline="")
    if suffix == ".zip":
        archive = zipfile.ZipFile(path)
        members = [m for m in archive.namelist() if not m.endswith("/")]
        if len(members) != 1:
            raise ImportFormatError(path, None, f"zip must hold exactly one file, found {len(members)}: {members[:5]}")
        return io.TextIOWrapper(archive.open(members[0]), encoding=ENCODING, newline="")
    return open(path, encoding=ENCODING, newline="")


def zip_member_name(path: Path) -> str | None:
    """Name of the single member of a zip file (Lean names carry symbol and resolution)."""
    if path.suffix.lower() != ".zip":
        return None
    members = _zip_members(path)
    return members[0] if len(members) == 1 else None


def _zip_members(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return [m for m in archive.namelist() if not m.endswith("/")]
    except zipfile.BadZipFile as exc:
        raise ImportFormatError(path, None, f"not a valid zip file: {exc}") from exc


def _require_single_member(path: Path) -> None:
    if path.suffix.lower() == ".zip":
        members = _zip_members(path)
        if len(members) != 1:
            raise ImportFormatError(path, None, f"zip must hold exactly one file, found {len(members)}: {members[:5]}")


def head_lines(path: str | Path, count: int) -> list[str]:
    """The first ``count`` lines (without line ends); fewer when the file is shorter."""
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(path, None, "file not found")
    check_text_file(path)
    try:
        with open_text(path) as handle:
            lines = []
            for _ in range(count):
                line = handle.readline()
                if not line:
                    break
                lines.append(line.rstrip("\r\n"))
            return lines
    except UnicodeDecodeError:
        raise not_text_error(path) from None
    except (OSError, zipfile.BadZipFile, gzip.BadGzipFile) as exc:
        raise ImportFormatError(path, None, f"cannot read file: {exc}") from exc


def split_header(line: str, sep: str = ",") -> list[str]:
    return [field.strip().strip('"') for field in line.split(sep)]


def read_table(
    path: str | Path,
    columns: Sequence[str],
    *,
    floats: Collection[str] = (),
    ints: Collection[str] = (),
    optional: Collection[str] = (),
    sep: str = ",",
    skip_lines: int = 0,
) -> RawTable:
    """Read a header-less block of ``len(columns)`` fields per row, starting after ``skip_lines``.

    ``floats``/``ints`` are parsed as numbers, every other column stays text. Empty fields are an
    error unless the column is in ``optional`` (then NaN for numbers, "" for text). Fully blank
    lines are ignored. Line numbers are physical lines of the (decompressed) file.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(path, None, "file not found")
    _require_single_member(path)
    columns = list(columns)
    skip_lines += _blank_lines_after(path, skip_lines)
    first_line = skip_lines + 1
    fast = _read_fast(path, columns, floats, ints, sep, skip_lines)
    if fast is not None and not _has_holes(fast, columns, floats, ints, optional):
        lines = np.arange(first_line, first_line + len(fast), dtype=np.int64)
        return RawTable(path, fast, lines)
    return _read_slow(path, columns, floats, ints, optional, sep, skip_lines)


def _blank_lines_after(path: Path, skip_lines: int) -> int:
    """Blank lines right after the first ``skip_lines``: pandas counts the columns of the first
    row it reads, so they are skipped with those lines (their numbers still count)."""
    blank = 0
    try:
        with open_text(path) as handle:
            for number, line in enumerate(handle):
                if number < skip_lines:
                    continue
                if line.strip():
                    break
                blank += 1
    except (UnicodeDecodeError, OSError, zipfile.BadZipFile, gzip.BadGzipFile, EOFError):
        return 0  # reading the table says what is wrong with the file
    return blank


def _read_fast(path, columns, floats, ints, sep, skip_lines) -> pd.DataFrame | None:
    dtypes = {i: ("float64" if c in floats else "int64" if c in ints else str) for i, c in enumerate(columns)}
    try:
        frame = pd.read_csv(
            path, sep=sep, header=None, skiprows=skip_lines, dtype=dtypes, encoding=ENCODING,
            keep_default_na=False, na_values=[], skip_blank_lines=False, engine="c",
        )
    except (ValueError, ParserError, EmptyDataError, OverflowError, UnicodeDecodeError):
        return None
    if frame.shape[1] != len(columns):
        return None
    frame.columns = columns
    return frame


def _has_holes(frame, columns, floats, ints, optional) -> bool:
    if frame.empty:
        return True  # let the slow path say what is wrong (empty file)
    required_floats = [c for c in columns if c in floats and c not in optional]
    if required_floats and np.isnan(frame[required_floats].to_numpy(dtype="float64")).any():
        return True
    for column in columns:
        if column in optional or column in floats or column in ints:
            continue
        values = frame[column]
        if values.hasnans or bool((values.str.len() == 0).any()):
            return True
    return False


def _read_slow(path, columns, floats, ints, optional, sep, skip_lines) -> RawTable:
    try:
        text = pd.read_csv(
            path, sep=sep, header=None, skiprows=skip_lines, dtype=str, encoding=ENCODING,
            keep_default_na=False, na_values=[], skip_blank_lines=False, engine="c",
        )
    except EmptyDataError as exc:
        raise ImportFormatError(path, None, "no data rows") from exc
    except ParserError as exc:
        match = _FIELD_COUNT.search(str(exc))
        if match:
            expected, line, seen = (int(g) for g in match.groups())
            if expected != len(columns):  # pandas counted the first row's fields: that row is off
                line, seen = skip_lines + 1, expected
            raise ImportFormatError(path, line, f"expected {len(columns)} fields, found {seen}") from exc
        raise ImportFormatError(path, None, f"cannot parse: {exc}") from exc
    except UnicodeDecodeError:
        raise not_text_error(path) from None
    text = text.fillna("")
    lines = np.arange(skip_lines + 1, skip_lines + 1 + len(text), dtype=np.int64)
    blank = (text.apply(lambda col: col.str.strip()) == "").all(axis=1).to_numpy()
    text, lines = text.loc[~blank].reset_index(drop=True), lines[~blank]
    if text.empty:
        raise ImportFormatError(path, None, "no data rows")
    if text.shape[1] != len(columns):
        raise ImportFormatError(
            path, int(lines[0]), f"expected {len(columns)} fields ({','.join(columns)}), found {text.shape[1]}"
        )
    text.columns = columns
    table = RawTable(path, text, lines)
    out = {}
    for column in columns:
        raw = text[column].str.strip()
        empty = (raw == "").to_numpy()
        if column not in optional:
            table.fail_first(empty, f"missing value for '{column}' (expected {len(columns)} fields: {','.join(columns)})")
        if column in floats or column in ints:
            numbers = pd.to_numeric(raw.where(~empty, None), errors="coerce")
            bad = (numbers.isna().to_numpy() & ~empty)
            if bad.any():
                position = int(np.flatnonzero(bad)[0])
                table.fail(position, f"'{column}' is not a number: {raw.iloc[position]!r}")
            if column in ints:
                fractional = (~empty) & (numbers.fillna(0) % 1 != 0).to_numpy()
                if fractional.any():
                    position = int(np.flatnonzero(fractional)[0])
                    table.fail(position, f"'{column}' must be a whole number: {raw.iloc[position]!r}")
                out[column] = numbers.astype("Int64") if empty.any() else numbers.astype("int64")
            else:
                out[column] = numbers.astype("float64")
        else:
            out[column] = raw
    return RawTable(path, pd.DataFrame(out), lines)


def parse_timestamps(
    table: RawTable, column: str, fmt: str, *, what: str | None = None, shape: str | None = None
) -> pd.Series:
    """Parse a text column with an explicit strptime format; the first failure names its line.

    ``shape`` is an optional full-match regex checked first, because the format parser accepts
    short fields (``0902`` for ``%H%M%S``).
    """
    values = table.frame[column]
    parsed = pd.to_datetime(values, format=fmt, errors="coerce")
    bad = parsed.isna().to_numpy().copy()
    if shape is not None:
        bad |= ~values.str.fullmatch(shape).fillna(False).to_numpy(dtype=bool)
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        table.fail(position, f"'{column}' is not a {what or 'date/time'} in format {fmt!r}: {values.iloc[position]!r}")
    reject_out_of_range(table, column, parsed)
    return parsed


def out_of_range(stamps: pd.Series) -> np.ndarray:
    """True where a parsed date/time lies outside ``EARLIEST`` .. ``LATEST``."""
    naive = stamps.dt.tz_convert("UTC").dt.tz_localize(None) if stamps.dt.tz is not None else stamps
    return (naive.notna() & ((naive < EARLIEST) | (naive > LATEST))).to_numpy()


def reject_out_of_range(table: RawTable, column: str, stamps: pd.Series) -> None:
    beyond = out_of_range(stamps)
    if beyond.any():
        position = int(np.flatnonzero(beyond)[0])
        table.fail(position, f"'{column}' is outside {EARLIEST:%Y-%m-%d} .. {LATEST:%Y-%m-%d}: "
                             f"{table.frame[column].iloc[position]!r}")


def parse_iso_timestamps(table: RawTable, column: str) -> pd.Series:
    """ISO-8601 dates or date-times; offsets are converted to UTC, naive values stay naive.

    Mixed aware and naive values in one file are refused: they cannot be put on one clock.
    """
    values = table.frame[column]
    dates = pd.to_datetime(values, format="%Y-%m-%d", errors="coerce")
    if not dates.isna().any():  # the common case: plain dates, no regex needed
        reject_out_of_range(table, column, dates)
        return dates
    has_offset = values.str.contains(r"(?:[+-]\d{2}:?\d{2}|Z)$", regex=True).to_numpy()
    if has_offset.any() and not has_offset.all():
        position = int(np.flatnonzero(~has_offset)[0] if has_offset[0] else np.flatnonzero(has_offset)[0])
        table.fail(position, f"'{column}' mixes values with and without a UTC offset: {values.iloc[position]!r}")
    parsed = pd.to_datetime(values, format="ISO8601", errors="coerce", utc=bool(has_offset.all()))
    bad = parsed.isna().to_numpy()
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        table.fail(position, f"'{column}' is not an ISO-8601 date/time: {values.iloc[position]!r}")
    reject_out_of_range(table, column, parsed)
    return parsed
