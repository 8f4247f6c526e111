"""5-second sub-bars -> interval bars equal to history's aggregation, gated by the exchange session."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tt_platform.data.aggregation import aggregate_ticks, bars_to_frame
from tt_platform.live_bars import IntervalBarAssembler, SubBarOrderError

NY = "America/New_York"
SEC = 10**9


def ny(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=NY).tz_convert("UTC")


def random_ticks(seed: int, start: pd.Timestamp, minutes: int, count: int):
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(start.value, start.value + minutes * 60 * SEC, count)).astype(np.int64)
    price = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, count)))
    size = rng.integers(1, 500, count).astype(np.float64)
    return ts, price, size


def sub_bars_of(ts, price, size, symbol):
    """History's own 5-second bars of the ticks, as (start, symbol, o, h, l, c, v) rows."""
    frame = aggregate_ticks(ts, price, size, "5s", tz=NY)
    return [(row.ts, symbol, row.open, row.high, row.low, row.close, row.volume) for row in frame.itertuples()]


def feed(assembler, rows):
    bars, sets = [], []
    for start, symbol, *ohlcv in rows:
        update = assembler.push(symbol, start, *ohlcv)
        bars += update.bars
        sets += update.bar_sets
    return bars, sets


def test_one_minute_bars_from_sub_bars_equal_history_aggregation_of_the_same_ticks():
    start = ny("2024-06-05 10:00")
    ticks = {"AAA": random_ticks(1, start, 10, 3000), "BBB": random_ticks(2, start, 10, 800)}
    rows = sorted((r for s, t in ticks.items() for r in sub_bars_of(*t, s)), key=lambda r: (r[0], r[1]))
    assembler = IntervalBarAssembler(["AAA", "BBB"], "1min", "XNYS")

    bars, sets = feed(assembler, rows)
    update = assembler.flush_due(start + pd.Timedelta(minutes=10, seconds=30))
    bars += update.bars
    sets += update.bar_sets

    for symbol, (ts, price, size) in ticks.items():
        live = bars_to_frame([b for b in bars if b.symbol == symbol])
        history = aggregate_ticks(ts, price, size, "1min", tz=NY, symbol=symbol)
        assert len(history) == 10
        pd.testing.assert_frame_equal(live, history)
    assert [s.ts for s in sets] == list(pd.date_range(start, periods=10, freq="1min"))
    assert all(s.missing == () and set(s.bars) == {"AAA", "BBB"} for s in sets)
    assert assembler.pending_buckets == ()


def test_five_minute_and_hourly_bars_use_history_stamps():
    start = ny("2024-06-05 09:30")
    ts, price, size = random_ticks(3, start, 90, 4000)
    for interval in ("5min", "1h"):
        assembler = IntervalBarAssembler(["AAA"], interval)
        bars, _ = feed(assembler, sub_bars_of(ts, price, size, "AAA"))
        bars += assembler.flush_due(start + pd.Timedelta(hours=3)).bars
        history = aggregate_ticks(ts, price, size, interval, tz=NY, symbol="AAA")
        pd.testing.assert_frame_equal(bars_to_frame(bars), history)
    # hourly bars sit on the local clock hour, as history's do: 09:30-09:59 is the 09:00 bar
    assert bars[0].ts == ny("2024-06-05 09:00")


def test_bar_completes_on_the_sub_bar_that_reaches_its_end():
    assembler = IntervalBarAssembler(["AAA"], "1min")
    assert not assembler.push("AAA", ny("2024-06-05 10:00:50"), 10, 11, 9, 10.5, 100)
    update = assembler.push("AAA", ny("2024-06-05 10:00:55"), 10.5, 12, 10, 11, 50)
    assert [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in update.bars] == [
        (ny("2024-06-05 10:00"), 10, 12, 9, 11, 150)
    ]
    assert [s.ts for s in update.bar_sets] == [ny("2024-06-05 10:00")]
    assert assembler.open_bar("AAA") is None


def test_clock_completes_a_bar_after_its_end_plus_settle():
    assembler = IntervalBarAssembler(["AAA"], "1min", settle="2s", grace="5s")
    assembler.push("AAA", ny("2024-06-05 10:00:10"), 10, 10, 10, 10, 1)
    assert not assembler.flush_due(ny("2024-06-05 10:01:01"))
    update = assembler.flush_due(ny("2024-06-05 10:01:02"))
    assert [b.ts for b in update.bars] == [ny("2024-06-05 10:00")]
    assert len(update.bar_sets) == 1 and not update.bar_sets[0].timed_out


def test_bar_set_waits_for_every_symbol_then_times_out_naming_the_missing_one():
    assembler = IntervalBarAssembler(["AAA", "BBB"], "1min", settle="2s", grace="10s")
    update = assembler.push("AAA", ny("2024-06-05 10:00:55"), 10, 10, 10, 10, 1)
    assert len(update.bars) == 1 and update.bar_sets == ()
    assert not assembler.flush_due(ny("2024-06-05 10:01:09"))
    (bar_set,) = assembler.flush_due(ny("2024-06-05 10:01:10")).bar_sets
    assert bar_set.missing == ("BBB",) and list(bar_set.bars) == ["AAA"] and bar_set.timed_out
    assert bar_set.end == ny("2024-06-05 10:01")
    # the bucket is closed now: BBB's straggler for it is late
    with pytest.raises(SubBarOrderError, match="already completed"):
        assembler.push("BBB", ny("2024-06-05 10:00:50"), 10, 10, 10, 10, 1)


def test_bar_set_completes_early_when_a_silent_symbol_moves_to_the_next_bucket():
    assembler = IntervalBarAssembler(["AAA", "BBB"], "1min")
    assembler.push("AAA", ny("2024-06-05 10:00:55"), 10, 10, 10, 10, 1)
    update = assembler.push("BBB", ny("2024-06-05 10:01:00"), 20, 20, 20, 20, 1)
    (bar_set,) = update.bar_sets
    assert bar_set.ts == ny("2024-06-05 10:00") and bar_set.missing == ("BBB",) and not bar_set.timed_out


def test_out_of_order_sub_bar_is_refused_and_an_exact_repeat_is_ignored():
    assembler = IntervalBarAssembler(["AAA"], "1min")
    assembler.push("AAA", ny("2024-06-05 10:00:20"), 10, 11, 9, 10, 5)
    assert not assembler.push("AAA", ny("2024-06-05 10:00:20"), 10, 11, 9, 10, 5)
    assert assembler.duplicate_sub_bars == 1
    with pytest.raises(SubBarOrderError, match="not after the previous one"):
        assembler.push("AAA", ny("2024-06-05 10:00:15"), 10, 11, 9, 10, 5)
    with pytest.raises(SubBarOrderError, match="not after the previous one"):
        assembler.push("AAA", ny("2024-06-05 10:00:20"), 10, 12, 9, 10, 5)  # same start, other values
    assert assembler.open_bar("AAA").volume == 5  # nothing refused reached the bar


def test_late_sub_bars_can_be_dropped_and_counted():
    assembler = IntervalBarAssembler(["AAA"], "1min", late="drop")
    assembler.push("AAA", ny("2024-06-05 10:00:20"), 10, 11, 9, 10, 5)
    assembler.flush_due(ny("2024-06-05 10:05"))
    assert not assembler.push("AAA", ny("2024-06-05 10:00:30"), 10, 11, 9, 10, 5)  # bucket already out
    assert not assembler.push("AAA", ny("2024-06-05 10:00:10"), 10, 11, 9, 10, 5)
    assert assembler.late_sub_bars == 2
    assert assembler.open_bar("AAA") is None


def test_no_bars_outside_the_session():
    assembler = IntervalBarAssembler(["AAA"], "1min")
    assert not assembler.push("AAA", ny("2024-06-05 09:29:55"), 10, 10, 10, 10, 1)  # pre-market
    assert not assembler.push("AAA", ny("2024-06-05 16:00:00"), 10, 10, 10, 10, 1)  # after the close
    assert not assembler.push("AAA", ny("2024-06-08 11:00:00"), 10, 10, 10, 10, 1)  # Saturday
    assert assembler.outside_session == 3
    assert assembler.open_bar("AAA") is None and not assembler.flush_due(ny("2024-06-09"))


def test_half_day_daily_bar_closes_at_one_pm_new_york():
    # 2024-11-29, the day after Thanksgiving: XNYS closes at 13:00
    assembler = IntervalBarAssembler(["AAA"], "1d", settle="2s", grace="10s")
    assembler.push("AAA", ny("2024-11-29 09:30:00"), 10, 11, 9.5, 10.5, 100)
    assembler.push("AAA", ny("2024-11-29 12:00:00"), 10.5, 12, 10, 11, 50)
    assert not assembler.flush_due(ny("2024-11-29 13:00:01"))
    update = assembler.flush_due(ny("2024-11-29 13:00:02"))
    (bar,) = update.bars
    assert (bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        pd.Timestamp("2024-11-29", tz="UTC"), 10, 12, 9.5, 11, 150,
    )
    (bar_set,) = update.bar_sets
    assert bar_set.end == ny("2024-11-29 13:00")
    assert not assembler.push("AAA", ny("2024-11-29 13:30"), 11, 11, 11, 11, 1)  # session over


def test_half_day_last_sub_bar_completes_the_daily_bar_at_once():
    assembler = IntervalBarAssembler(["AAA"], "1d")
    assembler.push("AAA", ny("2024-11-29 09:30:00"), 10, 10, 10, 10, 1)
    (bar,) = assembler.push("AAA", ny("2024-11-29 12:59:55"), 10, 10, 10, 10, 1).bars
    assert bar.volume == 2
    # a full day keeps the bar open until 16:00
    full = IntervalBarAssembler(["AAA"], "1d")
    assert not full.push("AAA", ny("2024-11-27 12:59:55"), 10, 10, 10, 10, 1)
    assert not full.flush_due(ny("2024-11-27 15:59"))
    assert full.flush_due(ny("2024-11-27 16:00:02")).bars[0].ts == pd.Timestamp("2024-11-27", tz="UTC")


def test_hourly_bar_ends_at_an_early_close():
    assembler = IntervalBarAssembler(["AAA"], "4h")
    assembler.push("AAA", ny("2024-11-29 12:10"), 10, 10, 10, 10, 1)
    (bar_set,) = assembler.flush_due(ny("2024-11-29 13:01")).bar_sets
    assert bar_set.ts == ny("2024-11-29 12:00") and bar_set.end == ny("2024-11-29 13:00")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"symbols": []}, "non-empty list"),
        ({"symbols": ["A", "A"]}, "duplicates"),
        ({"interval": "12s"}, "whole number of 5s sub-bars"),
        ({"interval": "7min"}, "divide one day"),
        ({"calendar": "NOPE"}, "unknown exchange calendar"),
        ({"settle": "20s", "grace": "5s"}, "at least settle"),
        ({"late": "ignore"}, "late must be"),
    ],
)
def test_bad_configuration_is_refused(kwargs, message):
    arguments = {"symbols": ["AAA"], "interval": "1min", "calendar": "XNYS"} | kwargs
    with pytest.raises(ValueError, match=message):
        IntervalBarAssembler(**arguments)


@pytest.mark.parametrize(
    ("symbol", "start", "values", "message"),
    [
        ("ZZZ", ny("2024-06-05 10:00"), (10, 10, 10, 10, 1), "unknown symbol"),
        ("AAA", pd.Timestamp("2024-06-05 10:00"), (10, 10, 10, 10, 1), "no time zone"),
        ("AAA", ny("2024-06-05 10:00:03"), (10, 10, 10, 10, 1), "not start on the 5s grid"),
        ("AAA", ny("2024-06-05 10:00"), (10, 9, 8, 10, 1), "inconsistent prices"),
        ("AAA", ny("2024-06-05 10:00"), (10, 10, 10, float("nan"), 1), "close nan"),
        ("AAA", ny("2024-06-05 10:00"), (10, 10, 10, 10, -1), "volume -1"),
    ],
)
def test_bad_sub_bars_are_refused(symbol, start, values, message):
    assembler = IntervalBarAssembler(["AAA"], "1min")
    with pytest.raises(ValueError, match=message):
        assembler.push(symbol, start, *values)
