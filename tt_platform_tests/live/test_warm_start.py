"""Warm start: stored bars first, IB's only after each symbol's last stored bar, stored bars kept
when IB fails, no bar that has not closed by ``now``, and the last ``bars`` stamps only."""

import asyncio
import logging

import numpy as np
import pandas as pd
import pytest

from tt_platform.data.bars import BAR_COLUMNS
from tt_platform.live.warm_start import lookback_start, warm_start_bars
from tt_platform.store.prices import read_bars, write_bars

SYMBOLS = ("AAA", "BBB", "CCC")
FIRST = pd.Timestamp("2024-03-11 13:30", tz="UTC")
MINUTE = pd.Timedelta("1min")
LOGGER = "tt_platform.live.warm_start"


def minute_bars(symbols, start: pd.Timestamp, count: int, level: float) -> pd.DataFrame:
    """``count`` one-minute bars per symbol from ``start``; closes around ``level`` tell sources apart."""
    rows = []
    for j, symbol in enumerate(symbols):
        for i in range(count):
            close = level + 10 * j + 0.01 * i
            rows.append((symbol, start + i * MINUTE, close, close + 0.05, close - 0.05, close, 1000.0 + i))
    return pd.DataFrame(rows, columns=BAR_COLUMNS)


class Store:
    """Stored bars, read as ``read_bars`` reads them (both ends inclusive)."""

    def __init__(self, bars: pd.DataFrame) -> None:
        self.bars = bars
        self.calls = []

    def __call__(self, symbols, start, end):
        self.calls.append((list(symbols), start, end))
        frame = self.bars
        return frame[frame["symbol"].isin(symbols) & (frame["ts"] >= start) & (frame["ts"] <= end)]


class History:
    """IB's history: every bar from ``start`` up to ``end`` (the bar still forming included, as IB
    sends it), or an error for the symbols in ``failing``."""

    def __init__(self, bars: pd.DataFrame, failing=()) -> None:
        self.bars = bars
        self.failing = set(failing)
        self.calls = []

    async def __call__(self, symbol, start, end, interval):
        self.calls.append((symbol, start, end, interval))
        if symbol in self.failing:
            raise ConnectionError(f"historical data request for {symbol} timed out")
        frame = self.bars
        return frame[(frame["symbol"] == symbol) & (frame["ts"] >= start) & (frame["ts"] <= end)]


def warm(*, now, bars=500, store=None, history=None, symbols=SYMBOLS, interval="1min"):
    return asyncio.run(warm_start_bars(symbols=list(symbols), interval=interval, adjusted=False, bars=bars, now=now,
                                       read_stored=store, fetch=history))


def closes(frame: pd.DataFrame, symbol: str) -> pd.Series:
    part = frame[frame["symbol"] == symbol]
    return pd.Series(part["close"].to_numpy(), index=pd.DatetimeIndex(part["ts"]))


# ---------------------------------------------------------------------------- sources
def test_stored_bars_first_then_ib_after_each_symbols_last_stored_bar():
    # the store has AAA up to 13:59 and BBB up to 14:09, nothing of CCC; IB has everything
    stored = pd.concat([minute_bars(["AAA"], FIRST, 30, 100.0), minute_bars(["BBB"], FIRST, 40, 100.0)])
    ib = minute_bars(SYMBOLS, FIRST, 60, 500.0)
    now = FIRST + 60 * MINUTE  # 14:30: the 14:29 bar has just closed
    store, history = Store(stored), History(ib)
    bars, from_ib = warm(now=now, store=store, history=history)

    start = lookback_start(now, 500, "1min")
    assert store.calls == [(list(SYMBOLS), start, now)]
    assert history.calls == [("AAA", FIRST + 29 * MINUTE, now, "1min"), ("BBB", FIRST + 39 * MINUTE, now, "1min"),
                             ("CCC", start, now, "1min")]
    assert from_ib == {"AAA": 30, "BBB": 20, "CCC": 60}
    expected_stamps = pd.date_range(FIRST, periods=60, freq="1min")
    for symbol, stored_count in (("AAA", 30), ("BBB", 40), ("CCC", 0)):
        series = closes(bars, symbol)
        assert list(series.index) == list(expected_stamps)
        # the stored bars are kept as stored (IB's bar at the last stored stamp does not replace it)
        assert (series.iloc[:stored_count] < 500).all() and (series.iloc[stored_count:] >= 500).all()
    assert list(bars.columns) == BAR_COLUMNS
    assert bars.equals(bars.sort_values(["symbol", "ts"]).reset_index(drop=True))


def test_a_failing_ib_request_keeps_the_stored_bars_of_that_symbol(caplog):
    stored = minute_bars(SYMBOLS, FIRST, 30, 100.0)
    ib = minute_bars(SYMBOLS, FIRST, 60, 500.0)
    now = FIRST + 60 * MINUTE
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        bars, from_ib = warm(now=now, store=Store(stored), history=History(ib, failing={"BBB"}))
    assert from_ib == {"AAA": 30, "CCC": 30}
    assert len(closes(bars, "BBB")) == 30 and (closes(bars, "BBB") < 500).all()
    assert len(closes(bars, "AAA")) == 60 and len(closes(bars, "CCC")) == 60
    assert any("IB history for BBB failed" in r.getMessage() and "stored bars only" in r.getMessage()
               for r in caplog.records)


def test_without_ib_the_stored_bars_alone_and_without_either_nothing():
    stored = minute_bars(SYMBOLS, FIRST, 30, 100.0)
    bars, from_ib = warm(now=FIRST + 60 * MINUTE, store=Store(stored))
    assert from_ib == {} and len(bars) == 90
    empty, none = warm(now=FIRST + 60 * MINUTE)
    assert empty.empty and list(empty.columns) == BAR_COLUMNS and none == {}
    failed, counts = warm(now=FIRST + 60 * MINUTE, history=History(stored, failing=set(SYMBOLS)))
    assert failed.empty and counts == {}


# ---------------------------------------------------------------------------- closed bars only
@pytest.mark.parametrize(
    ("now", "last"),
    [
        (FIRST + 59 * MINUTE + pd.Timedelta(seconds=30), FIRST + 58 * MINUTE),  # 14:29 still forming
        (FIRST + 60 * MINUTE, FIRST + 59 * MINUTE),  # 14:29 closed at 14:30 exactly
        (FIRST + 60 * MINUTE + pd.Timedelta(seconds=1), FIRST + 59 * MINUTE),
    ],
    ids=["inside-the-bar", "at-its-close", "just-after"],
)
def test_an_intraday_bar_counts_only_once_closed_as_it_is_stamped_with_its_start(now, last):
    stored = minute_bars(SYMBOLS, FIRST, 60, 100.0)  # the store even holds the forming bar
    ib = minute_bars(SYMBOLS, FIRST, 60, 500.0)
    for store, history in ((Store(stored), None), (None, History(ib)), (Store(stored.iloc[:0]), History(ib))):
        bars, from_ib = warm(now=now, store=store, history=history)
        assert bars["ts"].max() == last
        assert set(bars.groupby("symbol")["ts"].max()) == {last}
        if history is not None:  # what IB sent and was dropped is not counted
            assert from_ib == dict.fromkeys(SYMBOLS, int((last - FIRST) / MINUTE) + 1)


def test_five_minute_bars_close_five_minutes_after_their_stamp():
    start = pd.Timestamp("2024-03-11 13:30", tz="UTC")
    rows = [(s, start + pd.Timedelta(minutes=5 * i), 100.0, 100.0, 100.0, 100.0, 1.0)
            for s in SYMBOLS for i in range(8)]
    frame = pd.DataFrame(rows, columns=BAR_COLUMNS)
    bars, _ = warm(now=pd.Timestamp("2024-03-11 14:09", tz="UTC"), history=History(frame), interval="5min")
    # 14:05 covers 14:05-14:10: not closed at 14:09
    assert bars["ts"].max() == pd.Timestamp("2024-03-11 14:00", tz="UTC")


def test_a_daily_bar_of_an_earlier_day_counts():
    days = pd.date_range("2024-03-04", "2024-03-08", freq="B", tz="UTC")
    frame = pd.DataFrame([("AAA", d, 100.0, 101.0, 99.0, 100.5, 1e6) for d in days], columns=BAR_COLUMNS)
    bars, from_ib = warm(now=pd.Timestamp("2024-03-11 14:00", tz="UTC"), history=History(frame), symbols=["AAA"],
                         interval="1d")
    assert list(bars["ts"]) == list(days) and from_ib == {"AAA": 5}


# ---------------------------------------------------------------------------- how many
def test_only_the_last_bars_stamps_are_kept():
    stored = minute_bars(SYMBOLS, FIRST, 50, 100.0)
    ib = minute_bars(SYMBOLS, FIRST, 90, 500.0)
    now = FIRST + 90 * MINUTE
    bars, from_ib = warm(now=now, bars=25, store=Store(stored), history=History(ib))
    stamps = pd.DatetimeIndex(bars["ts"].drop_duplicates())
    assert list(stamps) == list(pd.date_range(FIRST + 65 * MINUTE, periods=25, freq="1min"))
    assert len(bars) == 75
    assert from_ib == dict.fromkeys(SYMBOLS, 25)  # every bar kept came from IB


def test_the_lookback_reaches_far_enough_back_for_weekends_and_holidays():
    monday = pd.Timestamp("2024-03-11 14:00", tz="UTC")
    # 390 one-minute bars are one session: the Friday before a Monday morning must be in reach
    assert lookback_start(monday, 390, "1min") <= pd.Timestamp("2024-03-08 14:30", tz="UTC")
    # 60 daily bars are about three months of sessions
    assert lookback_start(monday, 60, "1d") <= monday - pd.Timedelta(days=90)
    assert lookback_start(monday, 20, "1d") < lookback_start(monday, 10, "1d") < monday


# ---------------------------------------------------------------------------- the real store
def test_warm_start_from_the_store_and_ib(store_engine):
    stored = minute_bars(SYMBOLS, FIRST, 40, 100.0)
    write_bars(store_engine, stored, source="synthetic", interval="1min", adjusted=False)
    # daily bars of the same symbols must not leak into a minute warm start
    daily = minute_bars(SYMBOLS, pd.Timestamp("2024-03-08", tz="UTC"), 1, 90.0)
    write_bars(store_engine, daily, source="synthetic", interval="1d", adjusted=False)

    def read_stored(symbols, start, end):
        return read_bars(store_engine, symbols, start, end, interval="1min", adjusted=False)

    ib = minute_bars(SYMBOLS, FIRST, 70, 500.0)
    now = FIRST + 69 * MINUTE + pd.Timedelta(seconds=20)
    bars, from_ib = warm(now=now, bars=60, store=read_stored, history=History(ib))
    assert from_ib == dict.fromkeys(SYMBOLS, 29)  # 14:10 .. 14:38; 14:39 is still forming
    assert bars["ts"].min() == FIRST + 9 * MINUTE and bars["ts"].max() == FIRST + 68 * MINUTE
    stored_part = bars[bars["ts"] < FIRST + 40 * MINUTE]
    expected = stored[stored["ts"] >= FIRST + 9 * MINUTE].sort_values(["symbol", "ts"]).reset_index(drop=True)
    np.testing.assert_allclose(stored_part["close"].to_numpy(), expected["close"].to_numpy())
    assert (bars.loc[bars["ts"] >= FIRST + 40 * MINUTE, "close"] >= 500).all()
