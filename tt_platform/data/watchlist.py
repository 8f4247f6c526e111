"""Watchlist CSV loading: dedupe, uppercase, validate, and a snapshot hash.

A universe holds at most ``TT_MAX_UNIVERSE`` symbols (a platform setting, default 2,000); a
bigger watchlist is refused with its count and the setting named.

The snapshot hash identifies the exact universe a run used; it is stored in tt_watchlist_version
and carried by every downstream artifact so a policy can be traced to its universe.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

SYMBOL_PATTERN = re.compile(r"^[A-Z][A-Z0-9.\-]{0,14}$")
SYMBOL_HEADERS = ("symbol", "ticker")


class WatchlistError(ValueError):
    """A watchlist file that cannot be used; the message names the file, line and problem."""


@dataclass(frozen=True)
class WatchlistEntry:
    symbol: str
    exchange: str = "SMART"
    currency: str = "USD"
    primary_exchange: str = ""


@dataclass(frozen=True)
class Watchlist:
    entries: tuple[WatchlistEntry, ...]
    source: str = "inline"
    duplicates_dropped: tuple[str, ...] = field(default=())

    @property
    def symbols(self) -> list[str]:
        return [e.symbol for e in self.entries]

    @property
    def snapshot_hash(self) -> str:
        """Order-independent hash of the universe (symbol, exchange, currency, primary exchange)."""
        canonical = "\n".join(
            sorted(f"{e.symbol},{e.exchange},{e.currency},{e.primary_exchange}" for e in self.entries)
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _validate_symbol(raw: str, where: str) -> str:
    symbol = raw.strip().upper()
    if not symbol:
        raise WatchlistError(f"{where}: empty symbol")
    if not SYMBOL_PATTERN.match(symbol):
        raise WatchlistError(f"{where}: invalid symbol {raw.strip()!r} (letters, digits, '.' or '-', at most 15)")
    return symbol


def universe_size_problem(count: int, limit: int | None = None) -> str | None:
    """Why a universe of ``count`` symbols is too big (None: it is not); ``limit`` defaults to
    the TT_MAX_UNIVERSE setting."""
    if limit is None:
        from tt_platform.settings import max_universe

        limit = max_universe()
    if count <= limit:
        return None
    return f"{count:,} symbols exceed the universe limit of {limit:,} (set TT_MAX_UNIVERSE to change it)"


def parse_watchlist(text: str, source: str = "inline", *, max_symbols: int | None = None) -> Watchlist:
    """Parse CSV text with a ``symbol`` (or ``ticker``) column, or one symbol per line.

    More distinct symbols than ``max_symbols`` (default: the TT_MAX_UNIVERSE setting) is an error.
    """
    # comments and blank lines may come before the header, so drop them before looking for it
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.reader(io.StringIO("\n".join(line for _, line in lines)))
    rows: list[tuple[int, list[str]]] = []  # (line the row starts on, cells): a quoted cell may span lines
    consumed = 0
    try:
        for row in reader:
            rows.append((lines[consumed][0], row))
            consumed = reader.line_num
    except csv.Error as exc:  # e.g. a field longer than the csv module's limit
        line_no = lines[min(reader.line_num, len(lines)) - 1][0]
        raise WatchlistError(f"{source}: line {line_no}: not a CSV row ({exc})") from None
    if not rows:
        raise WatchlistError(f"{source}: watchlist is empty")
    first_line, first = rows[0]
    header = [cell.strip().lower() for cell in first]
    has_header = any(h in SYMBOL_HEADERS + ("symbols", "tickers") for h in header)
    if has_header:
        symbol_col = next(i for i, h in enumerate(header) if h in SYMBOL_HEADERS + ("symbols", "tickers"))
        columns = {name: header.index(name) for name in ("exchange", "currency", "primary_exchange") if name in header}
        body = rows[1:]
    else:
        if len(first) > 1:
            raise WatchlistError(f"{source}: line {first_line}: no 'symbol' column in header {first}")
        symbol_col, columns, body = 0, {}, rows
    seen: dict[str, WatchlistEntry] = {}
    dropped: list[str] = []
    for line_no, row in body:
        if not any(cell.strip() for cell in row):
            continue
        where = f"{source}: line {line_no}"
        if symbol_col >= len(row):
            raise WatchlistError(f"{where}: missing symbol column")
        symbol = _validate_symbol(row[symbol_col], where)
        extras = {k: (row[i].strip().upper() if i < len(row) else "") for k, i in columns.items()}
        entry = WatchlistEntry(
            symbol=symbol,
            exchange=extras.get("exchange") or "SMART",
            currency=extras.get("currency") or "USD",
            primary_exchange=extras.get("primary_exchange", ""),
        )
        if len(entry.currency) != 3:
            raise WatchlistError(f"{where}: currency {entry.currency!r} is not a 3-letter code")
        if symbol in seen:
            dropped.append(symbol)
            continue
        seen[symbol] = entry
    if not seen:
        raise WatchlistError(f"{source}: watchlist has no symbols")
    too_big = universe_size_problem(len(seen), max_symbols)
    if too_big:
        raise WatchlistError(f"{source}: {too_big}")
    return Watchlist(entries=tuple(seen.values()), source=source, duplicates_dropped=tuple(dropped))


def load_watchlist(path: str | Path, *, max_symbols: int | None = None) -> Watchlist:
    """Load a watchlist CSV; a missing, unreadable, binary or non-UTF-8 file is a one-line
    ``WatchlistError`` naming the file (and the line and byte offset of a bad byte)."""
    from tt_platform.config.text import TextFileError, read_text

    path = Path(path)
    if not path.exists():
        raise WatchlistError(f"{path}: watchlist file not found")
    try:
        text = read_text(path)
    except TextFileError as exc:
        raise WatchlistError(f"{path}: {exc}") from None
    return parse_watchlist(text, source=str(path), max_symbols=max_symbols)


def watchlist_from_symbols(symbols: list[str] | tuple[str, ...], source: str = "inline", *,
                           max_symbols: int | None = None) -> Watchlist:
    return parse_watchlist("\n".join(symbols), source=source, max_symbols=max_symbols)
