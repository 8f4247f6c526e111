"""Fuzzing the corporate-action files ``tt corporate-actions`` loads: the events CSV, Quandl WIKI
and zipline csvdir tables, and Lean factor files.

Property: ``read_actions_file`` either returns events with a symbol, an ex-date at 00:00 UTC, a
known type and a positive value, or refuses the file with the project's error (an
``ImportFormatError`` or ``CorporateActionError``) whose message starts with the file. And an
import the store refuses leaves ``tt_corporate_actions`` exactly as it was.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tt_platform.data.corporate_actions import ACTION_TYPES, CorporateActionError
from tt_platform.data.importers import ImportFormatError
from tt_platform.pipeline.corporate_actions import import_actions, read_actions_file
from tt_platform.store.upsert import UpsertError
from tt_platform_tests.fuzz.properties import FUZZ, FUZZ_SLOW, assert_names_problem
from tt_platform_tests.fuzz.test_bar_files import GARBAGE, vendor_files

# garbled dates and factors are the point here: pandas' and numpy's remarks on them are expected
pytestmark = [
    pytest.mark.filterwarnings("ignore:Could not infer format:UserWarning"),
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
]

REFUSALS = (ImportFormatError, CorporateActionError)
DAYS = st.dates(date(1995, 1, 1), date(2025, 12, 31))
EX_DATES = st.one_of(DAYS.map(date.isoformat), DAYS.map(lambda d: d.strftime("%Y%m%d")))
TYPES = st.sampled_from(["split", "cash_dividend", "Split", " cash_dividend "])
VALUES = st.sampled_from(["7", "0.05", "0.25", "2.0", "1000000", "0.0001"])
TICKERS = st.sampled_from(["KO", "aapl", "MSFT", " ibm "])


def _sometimes(draw, cells: list[str]) -> list[str]:
    """``cells``, now and then with one of them garbled or lost."""
    change = draw(st.integers(0, 9))
    if change < 2:
        cells[draw(st.integers(0, len(cells) - 1))] = draw(GARBAGE)
    elif change == 2:
        del cells[draw(st.integers(0, len(cells) - 1))]
    return cells


@st.composite
def actions_csvs(draw) -> bytes:
    header = draw(st.sampled_from([
        "symbol,ex_date,action_type,value", "symbol,ex_date,action_type,value", "symbol,ex_date,type,value,source",
        "symbol,ex_date,action_type,value,source", "symbol,ex_date,value", "ex_date,action_type,value", "a,b", "",
    ]))
    width = max(1, header.count(",") + 1)
    rows = []
    for _ in range(draw(st.integers(0, 5))):
        cells = [draw(TICKERS), draw(EX_DATES), draw(TYPES), draw(VALUES), "vendor"][:width]
        rows.append(",".join(_sometimes(draw, cells)))
    return ("\n".join([header, *rows]) + "\n").encode()


@st.composite
def lean_factor_files(draw) -> bytes:
    """Rows ``yyyymmdd,price_factor,split_factor,reference_price``, dates mostly increasing."""
    day = draw(st.dates(date(1995, 1, 1), date(2049, 1, 1))).toordinal()
    rows = []
    for _ in range(draw(st.integers(0, 5))):
        day += draw(st.integers(-3, 4000))
        stamp = date.fromordinal(max(1, min(day, date(9999, 12, 31).toordinal()))).strftime("%Y%m%d")
        cells = [stamp, draw(st.sampled_from(["1", "0.99", "0.97", "1.0"])), draw(st.sampled_from(["1", "0.5", "0.142857", "2"])),
                 draw(st.sampled_from(["0", "45.2", "120.5"]))]
        rows.append(",".join(_sometimes(draw, cells)))
    if draw(st.booleans()):
        rows.append("20501231,1,1,0")  # Lean's sentinel row
    return ("\n".join(rows) + "\n").encode()


CASES = st.one_of(
    st.tuples(st.just("csv"), actions_csvs(), st.none()),
    st.tuples(st.just("quandl"), vendor_files(formats=["quandl_wiki"]).map(lambda case: case[2]), st.sampled_from([None, "AIG"])),
    st.tuples(st.just("zipline"), vendor_files(formats=["zipline_csvdir"]).map(lambda case: case[2]), st.sampled_from([None, "AAPL"])),
    st.tuples(st.just("lean"), lean_factor_files(), st.just("KO")),
    st.tuples(st.sampled_from(["csv", "quandl", "zipline", "lean"]), st.binary(max_size=120), st.just("KO")),
)


def assert_valid_events(actions) -> None:
    assert actions["symbol"].notna().all() and (actions["symbol"].str.strip() != "").all()
    assert str(actions["ex_date"].dtype) == "datetime64[ns, UTC]" and actions["ex_date"].notna().all()
    assert (actions["ex_date"] == actions["ex_date"].dt.normalize()).all()
    assert actions["action_type"].isin(ACTION_TYPES).all()
    values = actions["value"].to_numpy(dtype="float64")
    assert np.isfinite(values).all() and (values > 0).all()
    assert not actions.duplicated(["symbol", "ex_date", "action_type"]).any()


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory(prefix="tt-fuzz-actions-") as name:
        yield Path(name)


def _name(fmt: str) -> str:
    return {"csv": "actions.csv", "quandl": "WIKI-AIG.csv", "zipline": "AAPL.csv", "lean": "ko.csv"}[fmt]


@FUZZ
@given(CASES)
def test_an_actions_file_is_read_into_valid_events_or_refused_naming_the_file(folder, case):
    fmt, raw, symbol = case
    path = folder / _name(fmt)
    path.write_bytes(raw)
    try:
        actions = read_actions_file(path, fmt, symbol)
    except REFUSALS as error:
        event(f"{fmt}: refused")
        assert_names_problem(str(error), str(path))
    else:
        event(f"{fmt}: read")
        assert_valid_events(actions)


def test_a_compact_ex_date_is_read_as_that_day_not_as_nanoseconds(folder):
    path = folder / "actions.csv"
    path.write_text("symbol,ex_date,action_type,value\nKO,20140312,cash_dividend,0.305\n")
    assert [f"{day:%Y-%m-%d}" for day in read_actions_file(path, "csv")["ex_date"]] == ["2014-03-12"]


def test_an_ex_date_that_is_not_a_date_is_named(folder):
    path = folder / "actions.csv"
    path.write_text("symbol,ex_date,action_type,value\nKO,2014-03-12,cash_dividend,0.3\nKO,soon,split,2\n")
    with pytest.raises(CorporateActionError) as error:
        read_actions_file(path, "csv")
    assert str(error.value) == f"{path}: ex_date 'soon' is not a date (1 such row(s))"


def _stored(engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM tt_corporate_actions").scalar_one()


@FUZZ_SLOW
@given(CASES)
def test_an_import_the_store_refuses_leaves_it_as_it_was(store_engine, folder, case):
    fmt, raw, symbol = case
    path = folder / _name(fmt)
    path.write_bytes(raw)
    before = _stored(store_engine)
    try:
        actions = import_actions(store_engine, path, fmt, symbol)
    except (*REFUSALS, UpsertError) as error:
        event(f"{type(error).__name__}")
        assert_names_problem(str(error), str(path))
        assert _stored(store_engine) == before, "a refused import changed the store"
    else:
        event("stored")
        assert before <= _stored(store_engine) <= before + len(actions)
