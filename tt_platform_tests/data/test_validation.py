"""An answer of a source is validated before it is stored: each blocking check refuses it."""

from datetime import date

import pandas as pd

from tt_platform.data.synthetic import generate_bars
from tt_platform.data.validation import answer_problem, fill_sessions

MARCH = dict(symbol="AAA", start=date(2021, 3, 1), end=date(2021, 3, 31), interval="1d")


def march() -> pd.DataFrame:
    return generate_bars(["AAA"], "2021-03-01", "2021-03-31", seed=4)


def test_a_complete_clean_answer_may_be_stored():
    assert answer_problem(march(), **MARCH) is None


def test_a_missing_session_is_refused_naming_it():
    bars = march()
    problem = answer_problem(bars[bars["ts"] != "2021-03-01"], **MARCH)
    assert "1 of 23 sessions missing" in problem and "2021-03-01" in problem and problem.endswith("nothing of it was stored")


def test_high_below_low_is_refused_naming_the_bar():
    bars = march()
    bars.loc[bars["ts"] == "2021-03-05", ["high", "low"]] = [98.8, 100.1]
    problem = answer_problem(bars, **MARCH)
    assert "ohlc_sanity" in problem and "2021-03-05" in problem


def test_daily_bars_stamped_at_the_open_or_on_a_saturday_are_refused():
    bars = march()
    intraday = bars.assign(ts=bars["ts"] + pd.Timedelta(hours=14, minutes=30))
    assert answer_problem(intraday, **MARCH) is not None
    saturday = pd.concat([bars, bars.iloc[[4]].assign(ts=pd.Timestamp("2021-03-06", tz="UTC"))]).sort_values("ts")
    assert answer_problem(saturday.reset_index(drop=True), **MARCH) is not None


def test_an_unrecorded_split_is_refused_and_a_recorded_one_passes():
    bars = march()
    after = bars["ts"] >= pd.Timestamp("2021-03-15", tz="UTC")
    bars.loc[after, ["open", "high", "low", "close"]] /= 4
    bars.loc[after, "volume"] *= 4
    assert "4:1" in answer_problem(bars, **MARCH)
    actions = pd.DataFrame({"symbol": ["AAA"], "ex_date": [pd.Timestamp("2021-03-15", tz="UTC")], "action_type": ["split"], "value": [4.0], "source": ["test"]})
    assert answer_problem(bars, actions=actions, **MARCH) is None


def test_ffill_fills_inner_holes_before_validation_but_not_a_missing_first_session():
    bars = march()
    holed = bars[bars["ts"] != "2021-03-10"]
    assert answer_problem(fill_sessions(holed, "AAA", "1d"), **MARCH) is None
    assert answer_problem(fill_sessions(bars[bars["ts"] != "2021-03-01"], "AAA", "1d"), **MARCH) is not None
