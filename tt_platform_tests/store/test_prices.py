import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tt_platform.data.bars import BAR_COLUMNS, BarValidationError, empty_bars, normalize_bars
from tt_platform.store import prices as prices_module
from tt_platform.store.prices import bar_counts, delete_bars, read_bars, replace_partition, write_bars
from tt_platform.store.schema import prices
from tt_platform_tests.store.bars_factory import random_bars

DAILY = {"source": "test", "interval": "1d", "adjusted": False}


def test_write_then_read_returns_the_same_canonical_bars_exactly(store_engine):
    bars = random_bars(["MSFT", "AAPL", "BRK.B"], 120, seed=3)
    bars.loc[5, "close"] = 1 / 3  # needs all 17 significant digits
    bars.loc[6, "ts"] = bars.loc[6, "ts"] + pd.Timedelta(microseconds=7)
    assert write_bars(store_engine, bars, **DAILY) == len(bars)
    out = read_bars(store_engine)
    pd.testing.assert_frame_equal(out, normalize_bars(bars), check_exact=True)
    assert list(out.columns) == BAR_COLUMNS and str(out["ts"].dtype) == "datetime64[ns, UTC]"


def test_rewriting_the_same_bars_writes_nothing(store_engine):
    bars = random_bars(["AAA"], 30)
    write_bars(store_engine, bars, **DAILY)
    assert write_bars(store_engine, bars, **DAILY) == 0


def test_read_filters_symbols_inclusive_range_interval_and_adjustment(store_engine):
    bars = random_bars(["AAA", "BBB", "CCC"], 10, start="2024-01-01")
    write_bars(store_engine, bars, **DAILY)
    write_bars(store_engine, bars.assign(close=bars["close"] * 2), source="test", interval="1d", adjusted=True)
    out = read_bars(store_engine, ["bbb", "CCC"], start="2024-01-03", end="2024-01-05")
    assert out["symbol"].unique().tolist() == ["BBB", "CCC"]
    assert out["ts"].min() == pd.Timestamp("2024-01-03", tz="UTC")
    assert out["ts"].max() == pd.Timestamp("2024-01-05", tz="UTC")  # end is inclusive
    assert len(out) == 6
    adjusted = read_bars(store_engine, "AAA", adjusted=True)
    np.testing.assert_allclose(adjusted["close"], bars.loc[bars.symbol == "AAA", "close"] * 2, rtol=0)
    assert read_bars(store_engine, "AAA", interval="1h").empty


def test_reading_nothing_gives_an_empty_canonical_frame(store_engine):
    out = read_bars(store_engine, "NOPE")
    pd.testing.assert_frame_equal(out, empty_bars())


def test_invalid_bars_are_refused_with_the_bar_contract_error(store_engine):
    bars = random_bars(["AAA"], 3)
    bars.loc[1, "low"] = -1.0
    with pytest.raises(BarValidationError, match="price <= 0"):
        write_bars(store_engine, bars, **DAILY)
    assert read_bars(store_engine).empty


def test_delete_bars_removes_only_the_range(store_engine):
    bars = random_bars(["AAA", "BBB"], 10, start="2024-01-01")
    write_bars(store_engine, bars, **DAILY)
    assert delete_bars(store_engine, "AAA", "2024-01-03", "2024-01-04", "1d", False) == 2
    left = read_bars(store_engine)
    assert len(left) == 18
    assert not ((left.symbol == "AAA") & left.ts.between(pd.Timestamp("2024-01-03", tz="UTC"), pd.Timestamp("2024-01-04", tz="UTC"))).any()


def test_replace_partition_leaves_no_stale_rows(store_engine):
    bars = random_bars(["AAA", "BBB"], 10, start="2024-01-01")
    write_bars(store_engine, bars, **DAILY)
    # the vendor now has only 3 of the 5 days of AAA in [01-03, 01-07], with corrected closes
    fewer = bars[(bars.symbol == "AAA") & bars.ts.isin(pd.to_datetime(["2024-01-03", "2024-01-05", "2024-01-07"], utc=True))]
    fewer = fewer.assign(close=fewer["close"] + 1)
    assert replace_partition(store_engine, fewer, symbols="AAA", start="2024-01-03", end="2024-01-07", **DAILY) == 3
    out = read_bars(store_engine)
    aaa = out[out.symbol == "AAA"].set_index("ts")
    assert len(aaa) == 10 - 5 + 3
    pd.testing.assert_series_equal(
        aaa.loc[fewer.ts, "close"].reset_index(drop=True), fewer["close"].reset_index(drop=True), check_names=False
    )
    pd.testing.assert_frame_equal(out[out.symbol == "BBB"].reset_index(drop=True), bars[bars.symbol == "BBB"].reset_index(drop=True))


def test_replace_partition_refuses_bars_outside_the_partition(store_engine):
    bars = random_bars(["AAA", "BBB"], 5, start="2024-01-01")
    with pytest.raises(ValueError, match="outside the partition"):
        replace_partition(store_engine, bars, symbols=["AAA"], start="2024-01-01", end="2024-01-05", **DAILY)
    with pytest.raises(ValueError, match="outside the partition"):
        replace_partition(store_engine, bars, symbols=["AAA", "BBB"], start="2024-01-02", end="2024-01-05", **DAILY)
    assert read_bars(store_engine).empty


def test_replace_partition_is_atomic(store_engine, monkeypatch):
    bars = random_bars(["AAA"], 5, start="2024-01-01")
    write_bars(store_engine, bars, **DAILY)

    def failing_upsert(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(prices_module, "upsert_frame", failing_upsert)
    with pytest.raises(RuntimeError, match="disk full"):
        replace_partition(store_engine, bars.iloc[:2], symbols="AAA", start="2024-01-01", end="2024-01-05", **DAILY)
    assert len(read_bars(store_engine)) == 5  # the delete was rolled back with the failed write


def test_bar_counts_summarise_each_symbol(store_engine):
    write_bars(store_engine, random_bars(["AAA", "BBB"], 4, start="2024-01-01"), **DAILY)
    counts = bar_counts(store_engine)
    assert counts["symbol"].tolist() == ["AAA", "BBB"]
    assert counts["bars"].tolist() == [4, 4]
    assert counts["last_ts"].tolist() == [pd.Timestamp("2024-01-04", tz="UTC")] * 2


def test_primary_key_serves_instrument_time_lookups(store_engine):
    with store_engine.connect() as conn:
        index_columns = sa.inspect(conn).get_pk_constraint("tt_prices")["constrained_columns"]
    assert index_columns == ["instrument", "interval", "adjusted", "ts"]
    assert [c.name for c in prices.primary_key.columns] == index_columns


def test_real_spy_history_round_trips(store_engine, shared_data):
    raw = pd.read_csv(shared_data / "daily" / "market_lab_adjusted" / "SPY.csv")
    bars = normalize_bars(raw.rename(columns={"date": "ts"}).assign(symbol="SPY"), origin="SPY.csv")
    assert write_bars(store_engine, bars, source="market_lab", interval="1d", adjusted=True) == len(bars) == 7285
    out = read_bars(store_engine, "SPY", adjusted=True)
    pd.testing.assert_frame_equal(out, bars, check_exact=True)
    window = read_bars(store_engine, "SPY", start="2020-03-16", end="2020-03-20", adjusted=True)
    assert len(window) == 5
