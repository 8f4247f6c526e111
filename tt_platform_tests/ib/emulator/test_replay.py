from __future__ import annotations

import pandas as pd
import pytest

from tt_platform.ib.emulator import ReplayConfig
from tt_platform.ib.emulator.replay import MarketReplay


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_replay_releases_one_session_per_step_and_skips_weekends(daily_source):
    replay = MarketReplay(daily_source, ReplayConfig(start=utc("2021-01-08")))  # a Friday
    assert replay.history_end() == utc("2021-01-08")
    last = replay.last_bar("AAA")
    assert last["ts"] == utc("2021-01-07")  # nothing at or after the cursor is visible
    released = replay.advance({"AAA"})
    assert list(released["AAA"]["ts"]) == [utc("2021-01-08")]
    released = replay.advance({"AAA"})
    assert list(released["AAA"]["ts"]) == [utc("2021-01-11")]  # Monday, the weekend skipped
    assert replay.now() == utc("2021-01-12")
    assert replay.last_bar("AAA")["ts"] == utc("2021-01-11")


def test_replay_without_interest_moves_one_interval(daily_source):
    replay = MarketReplay(daily_source, ReplayConfig(start="2021-01-08"))
    assert replay.advance(set()) == {}
    assert replay.now() == utc("2021-01-09")


def test_without_a_replay_start_everything_is_history(daily_source, daily_frame):
    replay = MarketReplay(daily_source)
    assert not replay.active and replay.history_end() is None
    assert replay.advance({"AAA"}) == {}
    assert replay.last_bar("AAA")["close"] == daily_frame.loc[daily_frame.symbol == "AAA", "close"].iloc[-1]
    assert replay.last_bar("ZZZ") is None


def test_replay_config_validation():
    with pytest.raises(ValueError, match="unsupported interval"):
        ReplayConfig(interval="5min")
    with pytest.raises(ValueError, match="step_seconds"):
        ReplayConfig(step_seconds=0)
