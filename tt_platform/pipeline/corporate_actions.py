"""Load split and dividend events from vendor files into tt_corporate_actions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine

from tt_platform.data.corporate_actions import (
    CorporateActionError,
    actions_from_lean_factor_file,
    actions_from_quandl_wiki,
    actions_from_zipline_csvdir,
    consolidate_actions,
    read_actions_csv,
)
from tt_platform.data.importers import (
    ImportFormatError,
    read_quandl_wiki_table,
    read_zipline_csvdir_table,
)
from tt_platform.data.importers.errors import check_text_file, not_text_error
from tt_platform.store.corporate_actions import write_corporate_actions
from tt_platform.store.upsert import UpsertError

FORMATS = ("csv", "quandl", "zipline", "lean")


EXPECTED = {
    "csv": "a CSV of split and dividend events",
    "quandl": "a Quandl WIKI prices table",
    "zipline": "a zipline csvdir file",
    "lean": "a Lean factor file",
}


def read_actions_file(path: Path, fmt: str, symbol: str | None = None) -> pd.DataFrame:
    """The events of one file, one row per (symbol, ex_date, action_type).

    A file that is not what ``fmt`` expects raises ``ImportFormatError`` (a ``ValueError``)
    naming the file: binary data, bytes that are not UTF-8, a table pandas cannot parse."""
    expected = EXPECTED.get(fmt, "a text file")
    try:
        check_text_file(path, expected)
        return _read_actions_file(path, fmt, symbol)
    except UnicodeDecodeError:
        raise not_text_error(path, expected) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ImportFormatError(path, None, f"not {expected}: {' '.join(str(err).split())}") from None


def _read_actions_file(path: Path, fmt: str, symbol: str | None) -> pd.DataFrame:
    if fmt == "csv":
        actions = read_actions_csv(path)
    elif fmt == "quandl":
        actions = actions_from_quandl_wiki(read_quandl_wiki_table(path, symbol))
    elif fmt == "zipline":
        actions = actions_from_zipline_csvdir(read_zipline_csvdir_table(path, symbol))
    elif fmt == "lean":
        if not symbol:
            raise ValueError(f"{path}: a Lean factor file does not name its symbol; pass --symbol")
        actions = actions_from_lean_factor_file(path, symbol)
    else:
        raise ValueError(f"{path}: unknown corporate-actions format {fmt!r}; use one of {FORMATS}")
    _refuse_events_without_a_key(actions, path)
    # some vendors list several events of one kind on one day (e.g. special + regular dividend)
    return consolidate_actions(actions)


def _refuse_events_without_a_key(actions: pd.DataFrame, path: Path) -> None:
    """Consolidation groups by symbol and ex_date: an event missing either would vanish silently."""
    symbols = actions["symbol"]
    keyless = symbols.isna() | (symbols.astype(str).str.strip() == "") | actions["ex_date"].isna()
    if keyless.any():
        first = actions.loc[keyless].iloc[0]
        count = int(keyless.sum())
        raise CorporateActionError(
            f"{path}: {count} event{' has' if count == 1 else 's have'} no symbol or no ex_date (the first: "
            f"{first['action_type']} of {first['value']}); fill them in, nothing of the file is stored"
        )


def import_actions(engine: Engine, path: Path, fmt: str, symbol: str | None = None) -> pd.DataFrame:
    return store_actions(engine, read_actions_file(path, fmt, symbol), path, fmt)


def store_actions(engine: Engine, actions: pd.DataFrame, path: Path, fmt: str) -> pd.DataFrame:
    """Write the events read from ``path`` (as ``fmt``), recording where they came from.

    The batch is validated whole before one row is written: a refused batch raises a
    ``ValueError`` whose message starts with ``path`` and leaves the store as it was."""
    actions = actions.assign(source=f"{fmt}:{path.name}")
    try:
        write_corporate_actions(engine, actions, origin=str(path))
    except UpsertError as err:
        # the database refused it (nothing written): the user still needs to know which file
        raise UpsertError(f"{path}: {err}") from err
    return actions
