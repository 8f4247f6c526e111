"""Matching a header line against the columns a format needs (case- and space-insensitive)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from tt_platform.data.importers._table import head_lines, split_header
from tt_platform.data.importers.errors import ImportFormatError


def normalise_name(name: str) -> str:
    return " ".join(name.strip().strip('"').lower().replace("_", " ").split())


def map_header(
    path: Path,
    header: Sequence[str],
    wanted: Mapping[str, Sequence[str]],
    *,
    line: int,
) -> list[str]:
    """Column names for ``read_table``: wanted columns get their canonical name, others ``_extra_i``.

    ``wanted`` maps a canonical name to its accepted spellings (compared after ``normalise_name``).
    """
    normalised = [normalise_name(h) for h in header]
    names = [f"_extra_{i}" for i in range(len(header))]
    for canonical, aliases in wanted.items():
        accepted = {normalise_name(a) for a in aliases}
        hits = [i for i, h in enumerate(normalised) if h in accepted]
        if not hits:
            raise ImportFormatError(
                path, line, f"header has no '{canonical}' column (accepted: {sorted(accepted)}); header is {list(header)}"
            )
        if len(hits) > 1:
            raise ImportFormatError(path, line, f"header has several '{canonical}' columns: {[header[i] for i in hits]}")
        names[hits[0]] = canonical
    return names


def read_header(path: Path, *, line: int = 1, sep: str = ",") -> list[str]:
    lines = head_lines(path, line)
    if len(lines) < line:
        raise ImportFormatError(path, None, f"file has fewer than {line} line(s); expected a header on line {line}")
    return split_header(lines[line - 1], sep)


OHLCV_ALIASES: dict[str, tuple[str, ...]] = {
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "vol", "v"),
}
