import numpy as np
import pandas as pd
import pytest

from tt_platform.data.bars import normalize_bars
from tt_platform.data.calendars import expected_sessions
from tt_platform.data.gaps import fill_missing
from tt_platform.data.importers import read_any

SESSIONS = expected_sessions("XNYS", "2020-01-02", "2020-01-31")


def bars_on(stamps, symbol="SPY"):
    stamps = pd.DatetimeIndex(stamps)
    close = np.arange(10.0, 10.0 + len(stamps))
    frame = pd.DataFrame(
        {"symbol": symbol, "ts": stamps, "open": close - 0.5, "high": close + 1, "low": close - 1, "close": close, "volume": 100.0}
    )
    return normalize_bars(frame)


def test_skip_reports_but_does_not_add():
    bars = bars_on(SESSIONS.delete([3, 4]))
    out, report = fill_missing(bars, SESSIONS, policy="skip")
    assert len(out) == len(bars) and not out["filled"].any()
    assert report.n_missing == 2 and report.n_filled == 0
    assert "2 missing, 0 filled" in report.summary()


def test_ffill_carries_previous_close_with_zero_volume():
    bars = bars_on(SESSIONS.delete([3, 4]))
    out, report = fill_missing(bars, SESSIONS, policy="ffill")
    assert len(out) == len(SESSIONS) and out["ts"].tolist() == list(SESSIONS)
    filled = out[out["filled"]]
    previous_close = bars.loc[2, "close"]
    assert filled[["open", "high", "low", "close"]].eq(previous_close).all().all()
    assert filled["volume"].eq(0).all()
    assert report.n_filled == 2 and report.symbols["SPY"].filled == tuple(SESSIONS[[3, 4]])


def test_never_fills_before_first_or_after_last_real_bar():
    bars = bars_on(SESSIONS[5:15].delete([2]))
    out, report = fill_missing(bars, SESSIONS, policy="ffill")
    assert out["ts"].min() == SESSIONS[5] and out["ts"].max() == SESSIONS[14]
    assert report.n_filled == 1


def test_idempotent_and_keeps_off_calendar_bars():
    weekend = pd.Timestamp("2020-01-04", tz="UTC")
    bars = bars_on(SESSIONS.delete([3]).append(pd.DatetimeIndex([weekend])).sort_values())
    once, first = fill_missing(bars, SESSIONS, policy="ffill")
    twice, second = fill_missing(once, SESSIONS, policy="ffill")
    pd.testing.assert_frame_equal(once, twice)
    assert second.n_filled == 0 and twice["filled"].sum() == 1
    assert weekend in set(once["ts"]) and first.symbols["SPY"].unexpected == 1


def test_multi_symbol_with_per_symbol_sessions():
    crypto_days = pd.date_range("2020-01-01", "2020-01-07", freq="D", tz="UTC")
    both = pd.concat([bars_on(crypto_days.delete([2]), "BTCUSD"), bars_on(SESSIONS.delete([1]), "SPY")], ignore_index=True)
    out, report = fill_missing(both, {"BTCUSD": crypto_days, "SPY": SESSIONS}, policy="ffill")
    assert report.n_filled == 2
    assert out.groupby("symbol").size().to_dict() == {"BTCUSD": 7, "SPY": 21}
    with pytest.raises(KeyError, match="QQQ"):
        fill_missing(bars_on(SESSIONS, "QQQ"), {"SPY": SESSIONS})


def test_bad_policy():
    with pytest.raises(ValueError, match="policy"):
        fill_missing(bars_on(SESSIONS), SESSIONS, policy="interpolate")


def test_real_qqq_gap_is_filled_inside_the_history_only(shared_data):
    bars = read_any(shared_data / "daily/lean_normalized_unadjusted/QQQ.csv")
    sessions = expected_sessions("XNYS", "1990-01-01", "2021-12-31")
    out, report = fill_missing(bars, sessions, policy="ffill")
    assert report.n_filled == 1588
    assert out["ts"].min() == bars["ts"].min() and out["ts"].max() == bars["ts"].max()
    gap = out[(out["ts"] >= "2004-12-01") & (out["ts"] <= "2011-03-22")]
    assert gap["filled"].all() and gap["close"].eq(39.13).all()
