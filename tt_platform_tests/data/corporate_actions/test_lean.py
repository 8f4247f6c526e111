import glob
from pathlib import Path

import pandas as pd
import pytest

from tt_platform.data.bars import normalize_bars
from tt_platform.data.corporate_actions import (
    CorporateActionError,
    actions_from_lean_factor_file,
    adjust_bars,
    lean_factor_price,
    map_segments,
    read_actions_csv,
    read_lean_factor_file,
    read_lean_map_file,
    resolve_lean_history,
    ticker_in_effect,
)
from tt_platform.data.importers import ImportFormatError, read_any, read_lean_trade_bars

LEAN_SYMBOLS = ["SPY", "QQQ", "IWM", "EEM", "USO", "AAPL", "AIG", "BAC", "IBM", "GOOG", "GOOGL", "FB", "WM"]


def utc(value):
    return pd.Timestamp(value, tz="UTC")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


FACTORS = "20200101,0.9,0.5,1\n20200102,0.9,0.5,100\n20200106,0.95,0.5,98\n20200108,0.95,1,60\n20501231,1,1,0\n"


def test_factor_file_lookup_takes_first_row_on_or_after_the_bar(tmp_path):
    path = write(tmp_path / "xyz.csv", FACTORS)
    stamps = pd.to_datetime(["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07", "2020-01-09"], utc=True)
    raw = normalize_bars(pd.DataFrame({"symbol": "XYZ", "ts": stamps, "open": 10.0, "high": 10.0, "low": 10.0, "close": 10.0, "volume": 100.0}))
    adjusted = lean_factor_price(raw, path)
    assert adjusted["close"].tolist() == pytest.approx([4.5, 4.75, 4.75, 9.5, 10.0])
    assert adjusted["volume"].tolist() == pytest.approx([200, 200, 200, 100, 100])


def test_factor_file_events(tmp_path):
    actions = actions_from_lean_factor_file(write(tmp_path / "xyz.csv", FACTORS), "XYZ")
    rows = actions[["ex_date", "action_type"]].values.tolist()
    # rows 01-02 -> 01-06: price factor changes (dividend on 01-03); 01-06 -> 01-08: split factor
    # changes (split on 01-07); 01-08 -> sentinel: price factor 0.95 -> 1 (dividend on 01-09)
    assert rows == [[utc("2020-01-03"), "cash_dividend"], [utc("2020-01-07"), "split"], [utc("2020-01-09"), "cash_dividend"]]
    assert actions["value"].tolist() == pytest.approx([100 * (1 - 0.9 / 0.95), 2.0, 60 * (1 - 0.95)])


def test_events_reproduce_lean_factor_prices(shared_data):
    raw = resolve_lean_history("AAPL", shared_data).bars
    factor_file = shared_data / "corporate_actions/lean_factor_files/aapl.csv"
    ours = adjust_bars(raw, actions_from_lean_factor_file(factor_file, "AAPL"))
    lean = lean_factor_price(raw, factor_file)
    ratio = ours["close"] / lean["close"]
    assert (ratio / ratio.iloc[-1] - 1).abs().max() < 1e-9


def test_factor_and_map_file_errors(tmp_path):
    with pytest.raises(ImportFormatError) as info:
        read_lean_factor_file(write(tmp_path / "a.csv", "20200101,0.9,0.5,1\n20200101,0.9,0.5,1\n"))
    assert info.value.line == 2 and "increase strictly" in info.value.problem
    with pytest.raises(ImportFormatError) as info:
        read_lean_factor_file(write(tmp_path / "b.csv", "20200101,0.9,0,1\n"))
    assert info.value.line == 1 and "split_factor must be > 0" in info.value.problem
    with pytest.raises(ImportFormatError) as info:
        read_lean_map_file(write(tmp_path / "c.csv", "19980102,uw,N\n1998-07-16,uw,N\n"))
    assert info.value.line == 2
    short = write(tmp_path / "d.csv", "20200101,1,1,1\n20200102,1,1,0\n")
    bars = normalize_bars(pd.DataFrame({"symbol": "X", "ts": [utc("2020-01-03")], "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}))
    with pytest.raises(CorporateActionError, match="after the factor file's last row"):
        lean_factor_price(bars, short)


def test_map_segments_and_ticker_in_effect(shared_data):
    table = read_lean_map_file(shared_data / "corporate_actions/lean_map_files/wm.csv")
    segments = map_segments(table)
    assert segments["ticker"].tolist() == ["UW", "WMI", "WM"]
    assert segments["start"].tolist() == [pd.Timestamp("1998-01-02"), pd.Timestamp("1998-07-17"), pd.Timestamp("2009-08-05")]
    dates = pd.to_datetime(["1997-12-31", "1998-07-16", "1998-07-17", "2009-08-05"])
    assert ticker_in_effect(table, dates).tolist() == [None, "UW", "WMI", "WM"]


def test_spy_total_return_matches_manifest(shared_data):
    raw = resolve_lean_history("SPY", shared_data).bars
    closes = lean_factor_price(raw, shared_data / "corporate_actions/lean_factor_files/spy.csv").set_index("ts")["close"]
    assert closes[utc("2017-12-29")] / closes[utc("2008-01-02")] == pytest.approx(2.2762, abs=5e-5)


def test_intraday_split_day_is_continuous_after_factor_adjustment(shared_data):
    folder = shared_data / "intraday/lean_aapl_minute_split"
    raw = pd.concat([read_lean_trade_bars(folder / f"2014060{d}_aapl_minute_trade.csv") for d in (6, 9)], ignore_index=True)
    adjusted = lean_factor_price(raw, shared_data / "corporate_actions/lean_factor_files/aapl.csv")
    friday_close = adjusted[adjusted["ts"] == utc("2014-06-06 19:59")]["close"].iloc[0]  # 15:59 New York
    monday_open = adjusted[adjusted["ts"] == utc("2014-06-09 13:30")]["open"].iloc[0]  # 09:30 New York
    raw_ratio = raw[raw["ts"] == utc("2014-06-09 13:30")]["open"].iloc[0] / raw[raw["ts"] == utc("2014-06-06 19:59")]["close"].iloc[0]
    assert raw_ratio < 0.2
    assert monday_open / friday_close == pytest.approx(1.0, abs=0.02)


def test_events_match_the_derived_lean_table(shared_data):
    derived = read_actions_csv(shared_data / "corporate_actions/derived_lean_corporate_actions.csv")
    ours = pd.concat(
        [
            actions_from_lean_factor_file(path, Path(path).stem.upper())
            for path in sorted(glob.glob(str(shared_data / "corporate_actions/lean_factor_files/*.csv")))
        ],
        ignore_index=True,
    )
    # The derived table dates an event on the next bar of the normalised file, so events that
    # fall where that file has no bars (BAC's NationsBank era, WM's years as WMI, QQQ's QQQQ
    # gap) sit on the following bar; do the same to compare. Ours use the exchange calendar.
    bars = {s: read_any(shared_data / f"daily/lean_normalized_unadjusted/{s}.csv")["ts"] for s in LEAN_SYMBOLS}
    moved = [bars[s].iloc[bars[s].searchsorted(d)] for s, d in zip(ours["symbol"], ours["ex_date"])]
    assert sum(m != d for m, d in zip(moved, ours["ex_date"])) == 56
    ours["ex_date"] = moved
    key = ["symbol", "ex_date", "action_type"]
    ours = ours.sort_values(key + ["value"]).reset_index(drop=True)
    derived = derived.sort_values(key + ["value"]).reset_index(drop=True)
    assert len(ours) == len(derived) == 670
    pd.testing.assert_frame_equal(ours[key], derived[key])
    dividends = ours["action_type"] == "cash_dividend"
    assert (ours["value"] - derived["value"])[dividends].abs().max() < 2e-4  # MANIFEST precision
    assert ((ours["value"] / derived["value"]) - 1)[~dividends].abs().max() < 1e-5
    splits = ours[~dividends & (ours["symbol"] == "AIG")]
    assert splits[["ex_date", "value"]].values.tolist()[-1] == [utc("2009-07-01"), pytest.approx(0.05)]


@pytest.mark.parametrize("symbol", LEAN_SYMBOLS)
def test_resolved_history_equals_the_normalised_file(shared_data, symbol):
    history = resolve_lean_history(symbol, shared_data)
    expected = read_any(shared_data / f"daily/lean_normalized_unadjusted/{symbol}.csv")
    pd.testing.assert_frame_equal(history.bars, expected)


@pytest.mark.parametrize(
    ("symbol", "rows", "start", "end", "text"),
    [
        ("FB", 716, "1999-09-29", "2003-03-28", "before the security's first date 2012-05-18"),
        ("WM", 2465, "1998-12-09", "2008-09-26", "traded as WMI"),
        ("BAC", 188, "1998-01-02", "1998-09-30", "traded as NB"),
        ("EEM", 722, "1998-01-06", "2002-12-05", "before the security's first date 2003-04-11"),
        ("USO", 140, "1998-01-02", "1998-12-30", "before the security's first date 2006-04-10"),
    ],
)
def test_ticker_reuse_traps_are_dropped_and_reported(shared_data, symbol, rows, start, end, text):
    history = resolve_lean_history(symbol, shared_data)
    assert len(history.dropped) == 1
    dropped = history.dropped.iloc[0]
    assert (dropped["rows"], dropped["start"], dropped["end"]) == (rows, utc(start), utc(end))
    assert text in dropped["reason"] and text in history.summary()


def test_goog_before_2014_is_todays_googl(shared_data):
    goog = resolve_lean_history("GOOG", shared_data)
    assert goog.bars["ts"].iloc[0] == utc("2014-04-03")
    assert goog.dropped["rows"].tolist() == [2417, 5]  # the old GOOG (today's GOOGL), then the GOOCV days
    googl = resolve_lean_history("GOOGL", shared_data, include_previous_tickers=True)
    assert googl.bars["ts"].iloc[0] == utc("2004-08-19") and len(googl.bars) == 4183
    old_goog = read_any(shared_data / "daily/lean_raw_vendor_format/goog.csv")
    first = old_goog[old_goog["ts"] == utc("2004-08-19")]["close"].iloc[0]
    assert googl.bars["close"].iloc[0] == first


def test_previous_tickers_stitch_wm_and_note_missing_qqqq(shared_data):
    wm = resolve_lean_history("WM", shared_data, include_previous_tickers=True)
    assert wm.bars["ts"].iloc[0] == utc("1998-01-02") and not wm.bars["ts"].duplicated().any()
    uw, wmi = (read_any(shared_data / f"daily/lean_raw_vendor_format/{t}.csv") for t in ("uw", "wmi"))
    assert len(wm.bars) == len(uw) + len(wmi) + 2934
    qqq = resolve_lean_history("QQQ", shared_data, include_previous_tickers=True)
    assert any("QQQQ (2004-12-01..2011-03-22)" in note for note in qqq.notes)
    assert len(qqq.bars) == 3964


def test_missing_files(tmp_path, shared_data):
    with pytest.raises(FileNotFoundError, match="no Lean daily"):
        resolve_lean_history("SPY", tmp_path)
    with pytest.raises(FileNotFoundError, match="no map file for ZZZZ"):
        resolve_lean_history("ZZZZ", shared_data)
