import pandas as pd
import pytest

from tt_platform.data.calendars import (
    CRYPTO_CALENDAR,
    early_closes,
    expected_minutes,
    expected_sessions,
    expected_timestamps,
    is_crypto_symbol,
    minutes_per_session,
    resolve_calendar,
    session_schedule,
)


def utc(value):
    return pd.Timestamp(value, tz="UTC")


@pytest.mark.parametrize(
    ("name", "calendar"),
    [
        ("SPY", "XNYS"), ("AAPL", "XNYS"), (None, "XNYS"), ("XNYS", "XNYS"), ("NYSE", "XNYS"), ("xnys", "XNYS"),
        ("XNAS", "XNYS"), ("CMES", "CMES"), ("BTCUSD", CRYPTO_CALENDAR), ("BTC_USD", CRYPTO_CALENDAR), ("BTC-USD", CRYPTO_CALENDAR),
        ("ETH/USDT", CRYPTO_CALENDAR), ("24/7", CRYPTO_CALENDAR), ("LINK", "XNYS"),
    ],
)
def test_resolve_calendar(name, calendar):
    assert resolve_calendar(name) == calendar


def test_overrides_resolve_ticker_collisions():
    assert resolve_calendar("ASX") == "XASX"  # an exchange name wins by default ...
    assert resolve_calendar("ASX", overrides={"ASX": "XNYS"}) == "XNYS"  # ... unless mapped
    assert resolve_calendar("gbtc", overrides={"GBTC": "NYSE"}) == "XNYS"
    with pytest.raises(ValueError, match="unknown calendar 'MOON'"):
        resolve_calendar("SPY", overrides={"SPY": "MOON"})
    assert not is_crypto_symbol("USDEUR") and is_crypto_symbol("XBTUSD")


def test_sessions_skip_weekends_and_holidays_and_match_daily_stamps():
    sessions = expected_sessions("SPY", "2013-11-25", "2013-12-02")
    assert sessions.tolist() == [utc(d) for d in ("2013-11-25", "2013-11-26", "2013-11-27", "2013-11-29", "2013-12-02")]
    assert str(sessions.dtype) == "datetime64[ns, UTC]"
    # Hurricane Sandy closures and 9/11 are known to the calendar
    assert utc("2012-10-29") not in expected_sessions("XNYS", "2012-10-26", "2012-11-01")
    assert len(expected_sessions("XNYS", "2001-09-10", "2001-09-17")) == 2


def test_crypto_trades_every_day():
    sessions = expected_sessions("BTCUSD", "2017-11-10", "2017-11-13")
    assert len(sessions) == 4 and utc("2017-11-11") in sessions  # a Saturday
    assert minutes_per_session("BTCUSD", "2018-04-04", "2018-04-04").iloc[0] == 1440


def test_tz_aware_bounds_and_reversed_range():
    sessions = expected_sessions("XNYS", utc("2020-01-02"), utc("2020-01-03 15:00"))
    assert sessions.tolist() == [utc("2020-01-02"), utc("2020-01-03")]
    with pytest.raises(ValueError, match="before start"):
        expected_sessions("XNYS", "2020-01-03", "2020-01-02")


def test_regular_minutes_and_early_closes():
    minutes = expected_minutes("SPY", "2013-10-07", "2013-10-07")
    assert len(minutes) == 390
    assert (minutes[0], minutes[-1]) == (utc("2013-10-07 13:30"), utc("2013-10-07 19:59"))  # bar starts, EDT
    counts = minutes_per_session("XNYS", "2013-11-27", "2013-11-29")
    assert counts.tolist() == [390, 210]
    closes = early_closes("XNYS", "2013-01-01", "2013-12-31")
    assert closes.index.tolist() == [utc("2013-07-03"), utc("2013-11-29"), utc("2013-12-24")]
    assert closes["close"].iloc[1] == utc("2013-11-29 18:00")  # 13:00 EST
    assert len(expected_minutes("XNYS", "2013-11-29", "2013-11-29")) == 210


def test_schedule_and_interval_dispatch():
    schedule = session_schedule("XNYS", "2013-11-29", "2013-12-02")
    assert schedule["early_close"].tolist() == [True, False]
    assert list(expected_timestamps("XNYS", "2013-11-29", "2013-12-02", "1d")) == [utc("2013-11-29"), utc("2013-12-02")]
    assert len(expected_timestamps("XNYS", "2013-11-29", "2013-12-02", "1min")) == 600
    with pytest.raises(ValueError, match="interval"):
        expected_timestamps("XNYS", "2013-11-29", "2013-12-02", "1w")


def test_long_history_is_available():
    sessions = expected_sessions("XNYS", "1927-12-30", "2021-12-31")
    assert sessions[0] == utc("1927-12-30") and sessions[-1] == utc("2021-12-31")
    # holidays are known from 1970 on (exchange_calendars lists none before)
    assert utc("1970-01-01") not in sessions and utc("1970-01-02") in sessions


def test_intraday_bar_grid_anchored_at_the_open():
    from tt_platform.data.calendars import expected_bar_starts

    hours = expected_bar_starts("XNYS", "2013-11-27", "2013-11-29", "1h")
    # full day: 09:30..14:30 New York (the last half hour makes no full bar); early close: 3 bars
    assert [t.strftime("%m-%d %H:%M") for t in hours] == [
        "11-27 14:30", "11-27 15:30", "11-27 16:30", "11-27 17:30", "11-27 18:30", "11-27 19:30",
        "11-29 14:30", "11-29 15:30", "11-29 16:30",
    ]
    assert len(expected_timestamps("XNYS", "2013-11-27", "2013-11-29", "30min")) == 13 + 7
    assert len(expected_timestamps("BTCUSD", "2020-01-01", "2020-01-02", "1h")) == 48
    with pytest.raises(ValueError, match="whole number of minutes"):
        expected_bar_starts("XNYS", "2013-11-27", "2013-11-29", "90s")


@pytest.mark.parametrize("interval", ["1h", "30min", "5min"])
def test_grid_matches_the_synthetic_source(interval):
    from tt_platform.data.synthetic import generate_bars

    bars = generate_bars(["AAA"], pd.Timestamp("2013-11-25"), pd.Timestamp("2013-11-29"), interval=interval)
    assert set(bars["ts"]) == set(expected_timestamps("XNYS", "2013-11-25", "2013-11-29", interval))
