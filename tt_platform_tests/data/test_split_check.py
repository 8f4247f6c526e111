import json

import numpy as np
import pandas as pd
import pytest

from tt_platform.data.bars import normalize_bars
from tt_platform.data.calendars import expected_sessions
from tt_platform.data.corporate_actions import actions_from_quandl_wiki, empty_actions, read_actions_csv
from tt_platform.data.importers import read_any, read_quandl_wiki, read_quandl_wiki_table
from tt_platform.data.split_check import SPLIT_FACTORS, check_unrecorded_splits, split_ratio_label
from tt_platform.pipeline.corporate_actions import read_actions_file

SESSIONS = expected_sessions("XNYS", "2021-01-04", "2021-06-30")
SPLIT_DAY = 60


def walk(symbol="XYZ", *, factor=1.0, volume_factor=None, seed=3, no_volume=False):
    """Daily bars with ~1% moves and ~1M shares a day; from SPLIT_DAY on, prices / factor and
    volume x volume_factor (default: x factor, as a split does)."""
    rng = np.random.default_rng(seed)
    n = len(SESSIONS)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, 0.003, n))
    volume = 1e6 * np.exp(rng.normal(0, 0.2, n))
    scale = np.where(np.arange(n) >= SPLIT_DAY, 1 / factor, 1.0)
    volume_scale = np.where(np.arange(n) >= SPLIT_DAY, factor if volume_factor is None else volume_factor, 1.0)
    close, open_ = close * scale, open_ * scale
    frame = pd.DataFrame({
        "symbol": symbol, "ts": SESSIONS, "open": open_, "close": close,
        "high": np.maximum(open_, close) * 1.005, "low": np.minimum(open_, close) * 0.995,
        "volume": 0.0 if no_volume else volume * volume_scale,
    })
    return normalize_bars(frame)


def split_action(symbol, day, value):
    return pd.DataFrame({"symbol": [symbol], "ex_date": [pd.Timestamp(day, tz="UTC")], "action_type": ["split"], "value": [value], "source": ["test"]})


DAY = SESSIONS[SPLIT_DAY].date().isoformat()


def test_ratio_labels():
    assert [split_ratio_label(f) for f in (7.0, 1.5, 0.05, 0.125, 10.0)] == ["7:1", "3:2", "1:20", "1:8", "10:1"]
    assert {2.0, 3.0, 4.0, 5.0, 7.0, 8.0, 10.0, 15.0, 20.0, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 8, 1 / 10, 1 / 20} <= set(SPLIT_FACTORS)


def test_steady_bars_pass():
    result = check_unrecorded_splits(walk(), empty_actions(), symbol="XYZ")
    assert (result.name, result.passed, result.value) == ("unrecorded_splits", True, 0)
    assert result.details["message"] == "XYZ: no unrecorded split"


def test_generated_ten_for_one_split_is_flagged():
    result = check_unrecorded_splits(walk(factor=10), None, symbol="XYZ")
    assert (result.passed, result.value, result.severity) == (False, 1, "error")
    [suspect] = result.details["suspected"]
    assert (suspect["symbol"], suspect["date"], suspect["ratio"], suspect["factor"]) == ("XYZ", DAY, "10:1", 10.0)
    assert suspect["open_ratio"] == pytest.approx(10, rel=0.03)
    assert suspect["volume_ratio"] == pytest.approx(10, rel=0.5)
    message = result.details["message"]
    assert message.startswith(f"XYZ: {DAY} looks like an unrecorded 10:1 split")
    assert "tt corporate-actions <factor file> --format lean --symbol XYZ" in message
    assert f"--format csv with the row symbol,ex_date,action_type,value = XYZ,{DAY},split,10" in message
    assert "data.adjusted: true" in message
    json.dumps(result.details)


def test_reverse_split_is_flagged():
    result = check_unrecorded_splits(walk(factor=1 / 20), None, symbol="XYZ")
    assert [(s["date"], s["ratio"]) for s in result.details["suspected"]] == [(DAY, "1:20")]


def test_a_recorded_split_explains_the_move():
    bars = walk(factor=10)
    result = check_unrecorded_splits(bars, split_action("XYZ", DAY, 10.0), symbol="XYZ")
    assert result.passed and [e["date"] for e in result.details["explained"]] == [DAY]
    # another symbol's split explains nothing
    assert not check_unrecorded_splits(bars, split_action("ABC", DAY, 10.0), symbol="XYZ").passed
    # a recorded ratio far from the move is a mismatch
    wrong = check_unrecorded_splits(bars, split_action("XYZ", DAY, 2.0), symbol="XYZ")
    assert not wrong.passed and wrong.details["mismatched"][0]["recorded_ratio"] == "2:1"
    assert "recorded split is 2:1" in wrong.details["message"]
    # recorded a day late: still flagged, and the message points at the ex-date
    late = check_unrecorded_splits(bars, split_action("XYZ", SESSIONS[SPLIT_DAY + 1].date(), 10.0), symbol="XYZ")
    assert not late.passed and late.details["suspected"][0]["recorded_near"]["ratio"] == "10:1"
    assert "check its ex-date" in late.details["message"]


def test_adjusted_bars_pass_with_the_split_recorded():
    assert check_unrecorded_splits(walk(), split_action("XYZ", DAY, 10.0), symbol="XYZ").passed


@pytest.mark.parametrize(
    "factor, volume_factor",
    [
        (10, 100),  # -90% on panic volume: ten times the turnover a split would give
        (2, 8),  # -50% on 8x the shares
        (1 / 2, 1.0),  # +100% on the usual share count: twice the turnover a 1:2 split would give
    ],
)
def test_crashes_and_rallies_with_the_wrong_volume_are_not_splits(factor, volume_factor):
    result = check_unrecorded_splits(walk(factor=factor, volume_factor=volume_factor), None, symbol="XYZ")
    assert result.passed
    assert [m["date"] for m in result.details["large_moves"]] == [DAY]


def test_moves_without_an_opening_gap_are_not_splits():
    bars = walk(factor=2)
    day = bars.index[SPLIT_DAY]
    bars.loc[day, "open"] = bars.loc[day - 1, "close"]  # slid all day instead of gapping
    bars.loc[day, "high"] = bars.loc[day, "open"]
    assert check_unrecorded_splits(bars, None, symbol="XYZ").passed
    # a single bad opening print (the close did not move) is not a split either
    spike = walk()
    spike.loc[spike.index[SPLIT_DAY], ["open", "high"]] = spike.loc[spike.index[SPLIT_DAY - 1], "close"] * 2
    assert check_unrecorded_splits(spike, None, symbol="XYZ").passed


def test_without_volume_a_split_like_move_is_unconfirmed():
    result = check_unrecorded_splits(walk(factor=4, no_volume=True), None, symbol="XYZ")
    assert result.passed and [(u["date"], u["ratio"]) for u in result.details["unconfirmed"]] == [(DAY, "4:1")]


def test_only_the_named_symbol_is_checked():
    both = pd.concat([walk("XYZ", factor=10), walk("ABC")], ignore_index=True)
    assert check_unrecorded_splits(both, None, symbol="ABC").passed
    assert not check_unrecorded_splits(both, None, symbol="XYZ").passed
    assert check_unrecorded_splits(both.iloc[0:0], None, symbol="XYZ").passed


# ---- real data ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lean_actions(shared_data):
    return read_actions_file(shared_data / "corporate_actions/derived_lean_corporate_actions.csv", "csv")


@pytest.mark.parametrize("path", ["daily/lean_normalized_unadjusted/AAPL.csv", "daily/lean_raw_vendor_format/aapl.csv"])
def test_real_aapl_raw_splits_without_and_with_the_actions(shared_data, lean_actions, path):
    bars = read_any(shared_data / path)
    unloaded = check_unrecorded_splits(bars, empty_actions(), symbol="AAPL")
    suspects = {s["date"]: s["ratio"] for s in unloaded.details["suspected"]}
    assert suspects == {"2000-06-21": "2:1", "2005-02-28": "2:1", "2014-06-09": "7:1", "2020-08-31": "4:1"}
    assert not unloaded.passed and unloaded.value == 4
    # the 2000-09-29 profit-warning crash (-52% on 24x volume) is not called a split
    assert "2000-09-29" in [m["date"] for m in unloaded.details["large_moves"]]
    loaded = check_unrecorded_splits(bars, lean_actions, symbol="AAPL")
    assert loaded.passed, loaded.details["message"]
    assert {e["date"]: e["recorded_ratio"] for e in loaded.details["explained"]} == {
        "2000-06-21": "2:1", "2005-02-28": "2:1", "2014-06-09": "7:1", "2020-08-31": "4:1"
    }
    # only the 7:1 loaded: the 4:1 of 2020 is still flagged
    only_2014 = lean_actions[(lean_actions["action_type"] != "split") | (lean_actions["ex_date"].dt.year < 2015)]
    partly = check_unrecorded_splits(bars, only_2014, symbol="AAPL")
    assert [(s["date"], s["ratio"]) for s in partly.details["suspected"]] == [("2020-08-31", "4:1")]


def test_real_aapl_splits_from_the_lean_factor_file(shared_data):
    bars = read_any(shared_data / "daily/lean_normalized_unadjusted/AAPL.csv")
    actions = read_actions_file(shared_data / "corporate_actions/lean_factor_files/aapl.csv", "lean", "AAPL")
    assert check_unrecorded_splits(bars, actions, symbol="AAPL").passed


def test_real_aapl_minute_bars_of_the_2014_split(shared_data):
    minutes = pd.concat(
        [read_any(p) for p in sorted((shared_data / "intraday/lean_aapl_minute_split").glob("*.csv"))], ignore_index=True
    )
    result = check_unrecorded_splits(minutes, None, symbol="AAPL")
    assert [(s["date"], s["ratio"]) for s in result.details["suspected"]] == [("2014-06-09", "7:1")]
    assert check_unrecorded_splits(minutes, split_action("AAPL", "2014-06-09", 7.0), symbol="AAPL").passed


def test_real_aig_crisis_moves_are_not_splits(shared_data):
    folder = shared_data / "corporate_actions/pyalgotrade_quandl_wiki"
    files = [folder / "WIKI-AIG-2008-quandl.csv", folder / "WIKI-AIG-2009-quandl.csv"]
    bars = pd.concat([read_quandl_wiki(f) for f in files], ignore_index=True)
    result = check_unrecorded_splits(bars, None, symbol="AIG")
    assert result.passed, result.details["message"]
    large = {m["date"]: m for m in result.details["large_moves"]}
    # -61% on 2008-09-15 and +66% on 2009-03-16 were weighed and judged real
    assert {"2008-09-15", "2008-09-16", "2009-03-16"} <= set(large)
    assert large["2008-09-15"]["close_ratio"] == pytest.approx(12.14 / 4.76, rel=1e-3)
    actions = pd.concat([actions_from_quandl_wiki(read_quandl_wiki_table(f)) for f in files], ignore_index=True)
    loaded = check_unrecorded_splits(bars, actions, symbol="AIG")
    assert loaded.passed and [(e["date"], e["recorded_ratio"]) for e in loaded.details["explained"]] == [("2009-07-01", "1:20")]


def test_real_lean_aig_history(shared_data, lean_actions):
    bars = read_any(shared_data / "daily/lean_normalized_unadjusted/AIG.csv")
    result = check_unrecorded_splits(bars, None, symbol="AIG")
    # the two 3:2 splits; none of the 2008-2009 crisis moves
    assert [(s["date"], s["ratio"]) for s in result.details["suspected"]] == [("1998-08-03", "3:2"), ("2000-07-31", "3:2")]
    assert check_unrecorded_splits(bars, lean_actions, symbol="AIG").passed


def test_real_adjusted_histories_show_no_split(shared_data):
    """38 split-adjusted histories, hundreds of large real moves: only MCD's 1968 and 1969 splits,
    which the vendor's history leaves unadjusted, look like splits."""
    flagged = {}
    for path in sorted((shared_data / "daily/market_lab_adjusted").glob("*.csv")):
        bars = read_any(path)
        for symbol in bars["symbol"].unique():
            result = check_unrecorded_splits(bars, None, symbol=symbol)
            if not result.passed:
                flagged[symbol] = [(s["date"], s["ratio"]) for s in result.details["suspected"]]
    assert flagged == {"MCD": [("1968-05-21", "2:1"), ("1969-06-13", "2:1")]}


def test_real_store_shaped_actions(shared_data, lean_actions):
    """The frame read_corporate_actions returns (with its source column) works as is."""
    bars = read_any(shared_data / "daily/lean_normalized_unadjusted/USO.csv")
    assert check_unrecorded_splits(bars, None, symbol="USO").details["suspected"][0]["ratio"] == "1:8"
    stored = lean_actions.assign(source="csv:derived_lean_corporate_actions.csv")
    assert check_unrecorded_splits(bars, stored, symbol="USO").passed
