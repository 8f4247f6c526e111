from datetime import date

import pandas as pd
import pytest

from tt_platform.data.synthetic import generate_bars
from tt_platform.store.coverage import monthly_bar_counts, read_coverage, record_coverage
from tt_platform.store.prices import read_bars, replace_slices, write_bars


def row(**values):
    base = dict(
        instrument="AAA", interval="1d", adjusted=False, partition_key="2021-03", status="stored", reason=None, rows=23,
        first_ts=pd.Timestamp("2021-03-01", tz="UTC"), last_ts=pd.Timestamp("2021-03-31", tz="UTC"),
        fetched_through=date(2021, 3, 31), source="synthetic",
    )
    return base | values


def test_coverage_round_trips_and_refuses_an_unexplained_absence(store_engine):
    record_coverage(store_engine, pd.DataFrame([row(), row(instrument="NEW", status="absent", reason="not listed yet", rows=0, first_ts=None, last_ts=None)]))
    stored = read_coverage(store_engine, interval="1d", adjusted=False).set_index("instrument")
    assert stored.loc["AAA", "fetched_through"] == date(2021, 3, 31) and stored.loc["NEW", "reason"] == "not listed yet"
    with pytest.raises(ValueError, match="absent without a reason"):
        record_coverage(store_engine, pd.DataFrame([row(instrument="BAD", status="absent", rows=0)]))
    with pytest.raises(ValueError, match="status must be"):
        record_coverage(store_engine, pd.DataFrame([row(status="partial")]))
    assert set(read_coverage(store_engine, interval="1d", adjusted=False)["instrument"]) == {"AAA", "NEW"}


def test_replace_slices_makes_each_slice_exactly_its_bars_in_one_go(store_engine):
    old = generate_bars(["AAA", "BBB"], "2021-03-01", "2021-03-31", seed=1)
    write_bars(store_engine, old, source="synthetic", interval="1d", adjusted=False)
    fresh = generate_bars(["AAA"], "2021-03-01", "2021-03-15", seed=2)  # AAA's source now ends mid-month
    slices = [("AAA", "2021-03-01", "2021-03-31"), ("BBB", "2021-03-16", "2021-03-31")]
    assert replace_slices(store_engine, fresh, slices, source="synthetic", interval="1d", adjusted=False) == len(fresh)
    stored = read_bars(store_engine, ["AAA", "BBB"])
    assert stored[stored["symbol"] == "AAA"]["close"].tolist() == fresh["close"].tolist()
    assert stored[stored["symbol"] == "BBB"]["ts"].max() == pd.Timestamp("2021-03-15", tz="UTC")  # its slice emptied
    counts = monthly_bar_counts(store_engine, ["AAA", "BBB"], pd.Timestamp("2021-03-01", tz="UTC"), pd.Timestamp("2021-03-31", tz="UTC"), interval="1d", adjusted=False)
    assert dict(zip(counts["instrument"], counts["rows"])) == {"AAA": 11, "BBB": 11}


def test_replace_slices_refuses_bars_outside_their_slice_and_writes_nothing(store_engine):
    bars = generate_bars(["AAA"], "2021-03-01", "2021-03-31", seed=1)
    with pytest.raises(ValueError, match="outside their slices"):
        replace_slices(store_engine, bars, [("AAA", "2021-03-01", "2021-03-15")], source="synthetic", interval="1d", adjusted=False)
    assert read_bars(store_engine, ["AAA"]).empty
