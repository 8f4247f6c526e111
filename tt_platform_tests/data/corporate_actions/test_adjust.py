
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tt_platform.data.bars import normalize_bars
from tt_platform.data.corporate_actions import (
    CorporateActionError,
    actions_from_quandl_wiki,
    actions_from_zipline_csvdir,
    adjust_bars,
    adjustment_factors,
    select_feed,
    undo_split_adjustment,
)
from tt_platform.data.importers import read_quandl_wiki_table, read_zipline_csvdir_table


def utc(value):
    return pd.Timestamp(value, tz="UTC")


def raw_bars(closes, symbol="XYZ", start="2020-01-01"):
    stamps = pd.date_range(start, periods=len(closes), freq="D", tz="UTC")
    closes = np.asarray(closes, dtype=float)
    frame = pd.DataFrame(
        {"symbol": symbol, "ts": stamps, "open": closes, "high": closes * 1.01, "low": closes * 0.99, "close": closes, "volume": 1000.0}
    )
    return normalize_bars(frame)


def actions(*rows):
    return pd.DataFrame(rows, columns=["symbol", "ex_date", "action_type", "value"])


def test_split_halves_earlier_prices_and_doubles_volume():
    bars = raw_bars([100, 102, 51, 52])  # 2:1 split on day 3
    out = adjust_bars(bars, actions(("XYZ", "2020-01-03", "split", 2.0)), mode="split")
    assert out["close"].tolist() == [50, 51, 51, 52]
    assert out["volume"].tolist() == [2000, 2000, 1000, 1000]
    assert out["high"].iloc[0] == pytest.approx(50.5)


def test_dividend_uses_previous_close():
    bars = raw_bars([100, 100, 98, 99])
    events = actions(("XYZ", "2020-01-03", "cash_dividend", 2.0))
    out = adjust_bars(bars, events)
    assert out["close"].tolist() == pytest.approx([98, 98, 98, 99])  # × (1 − 2/100)
    assert out["volume"].tolist() == [1000] * 4
    assert adjust_bars(bars, events, mode="split")["close"].tolist() == [100, 100, 98, 99]  # splits only


def test_factors_compound_and_basis_is_last_bar():
    bars = raw_bars([200, 100, 100, 50, 50])
    events = actions(("XYZ", "2020-01-02", "split", 2.0), ("XYZ", "2020-01-04", "split", 2.0), ("XYZ", "2020-02-01", "split", 3.0))
    factors = adjustment_factors(bars, events, "split")
    assert factors["price_factor"].tolist() == [0.25, 0.5, 0.5, 1, 1]  # the event after the last bar is ignored
    assert factors["volume_factor"].tolist() == [4, 2, 2, 1, 1]


def test_as_of_gives_the_point_in_time_series():
    bars = raw_bars([100, 100, 50, 50])
    events = actions(("XYZ", "2020-01-03", "split", 2.0))
    assert adjust_bars(bars, events, as_of="2020-01-02")["close"].tolist() == [100, 100, 50, 50]
    assert adjust_bars(bars, events, as_of="2020-01-03")["close"].tolist() == [50, 50, 50, 50]


def test_dividend_on_a_split_day_is_per_new_share():
    bars = raw_bars([100, 50])
    events = actions(("XYZ", "2020-01-02", "split", 2.0), ("XYZ", "2020-01-02", "cash_dividend", 1.0))
    out = adjust_bars(bars, events)
    assert out["close"].iloc[0] == pytest.approx(100 / 2 * (1 - 1.0 / 50))


def test_toggle_and_unknown_symbols_and_modes():
    bars = pd.concat([raw_bars([10, 5], "AAA"), raw_bars([7, 7], "BBB")], ignore_index=True)
    events = actions(("AAA", "2020-01-02", "split", 2.0), ("ZZZ", "2020-01-02", "split", 2.0))
    assert select_feed(bars, events, adjustment=False).equals(normalize_bars(bars))
    adjusted = select_feed(bars, events, adjustment=True)
    assert adjusted.set_index("symbol").loc["AAA", "close"].tolist() == [5, 5]
    assert adjusted.set_index("symbol").loc["BBB", "close"].tolist() == [7, 7]
    with pytest.raises(ValueError, match="mode"):
        adjust_bars(bars, events, mode="total")


def test_dividend_not_below_close_is_refused():
    with pytest.raises(CorporateActionError, match=r"XYZ 2020-01-02: dividend 10.0 >= previous close"):
        adjust_bars(raw_bars([10, 9]), actions(("XYZ", "2020-01-02", "cash_dividend", 10.0)))


def test_undo_split_adjustment_round_trips():
    raw = raw_bars([100, 102, 51, 52])
    events = actions(("XYZ", "2020-01-03", "split", 2.0))
    adjusted = adjust_bars(raw, events, mode="split")
    pd.testing.assert_frame_equal(undo_split_adjustment(adjusted, events), raw)


# ---- known answers: vendor-adjusted Quandl WIKI prices ------------------------------------------


def _max_relative_errors(table: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Per symbol: max relative error of O/H/L/C and of volume against the vendor's adjusted
    columns, rebased to the table's last row (each sample is adjusted relative to a later date)."""
    adjusted = adjust_bars(table[["symbol", "ts", "open", "high", "low", "close", "volume"]], actions_from_quandl_wiki(table))
    out = {}
    for symbol, vendor in table.groupby("symbol"):
        ours = adjusted[adjusted["symbol"] == symbol].reset_index(drop=True)
        vendor = vendor.reset_index(drop=True)
        price_error = 0.0
        for column in ("open", "high", "low", "close"):
            rebased = vendor[f"adj_{column}"] * vendor[column].iloc[-1] / vendor[f"adj_{column}"].iloc[-1]
            price_error = max(price_error, float((ours[column] / rebased - 1).abs().max()))
        volume = vendor["adj_volume"] * vendor["volume"].iloc[-1] / vendor["adj_volume"].iloc[-1]
        out[symbol] = (price_error, float((ours["volume"] / volume - 1).abs().max()))
    return out


def test_reproduces_quandl_sample_table(shared_data):
    table = read_quandl_wiki_table(shared_data / "corporate_actions/zipline_quandl_wiki/QUANDL_SAMPLE_TABLE.csv")
    errors = _max_relative_errors(table)
    # measured: AAPL 3.6e-5 (split 7:1 + 4 dividends), MSFT 1.6e-4, BRK_A and ZEN exact (no events)
    assert errors["AAPL"][0] < 5e-5
    assert errors["MSFT"][0] < 2e-4
    assert errors["BRK_A"][0] < 1e-12 and errors["ZEN"][0] < 1e-12
    assert all(volume < 1e-12 for _, volume in errors.values())


# measured maximum relative errors per pyalgotrade WIKI file (vendor dividend factors differ a
# little from 1 − D/close; AIG 2011's 8.275 "dividend" is the warrant distribution)
PYALGOTRADE_TOLERANCE = {
    "WIKI-AAPL-2011-quandl.csv": 1e-12,
    "WIKI-AAPL-2012-quandl.csv": 2e-4,
    "WIKI-AIG-2008-quandl.csv": 4e-4,
    "WIKI-AIG-2009-quandl.csv": 1e-12,  # the 1:20 reverse split alone: exact
    "WIKI-AIG-2011-quandl.csv": 2e-3,
    "WIKI-IBM-2008-quandl.csv": 3e-4,
    "WIKI-IBM-2009-quandl.csv": 3e-4,
    "WIKI-IBM-2011-quandl.csv": 1.5e-4,
    "WIKI-ORCL-2011-quandl.csv": 5e-5,
}


@pytest.mark.parametrize("name", sorted(PYALGOTRADE_TOLERANCE))
def test_reproduces_pyalgotrade_wiki_files(shared_data, name):
    table = read_quandl_wiki_table(shared_data / "corporate_actions/pyalgotrade_quandl_wiki" / name)
    (price_error, volume_error), = _max_relative_errors(table).values()
    assert price_error < PYALGOTRADE_TOLERANCE[name]
    assert volume_error < 1e-12


def test_aig_reverse_split_is_continuous(shared_data):
    table = read_quandl_wiki_table(shared_data / "corporate_actions/pyalgotrade_quandl_wiki/WIKI-AIG-2009-quandl.csv")
    adjusted = adjust_bars(table[["symbol", "ts", "open", "high", "low", "close", "volume"]], actions_from_quandl_wiki(table))
    closes = adjusted.set_index("ts")["close"]
    raw = table.set_index("ts")["close"]
    vendor = table.set_index("ts")["adj_close"]
    day, before = utc("2009-07-01"), utc("2009-06-30")
    assert raw[day] / raw[before] > 15  # raw jump of x15.6 through the 1:20 reverse split
    assert closes[day] / closes[before] == pytest.approx(raw[day] / raw[before] / 20, rel=1e-12)
    assert closes[day] / closes[before] == pytest.approx(vendor[day] / vendor[before], rel=1e-12)
    assert closes[utc("2009-01-02")] == pytest.approx(1.69 * 20)


def test_zipline_bars_undo_to_raw_quandl_prices(shared_data):
    table = read_zipline_csvdir_table(shared_data / "corporate_actions/zipline_csvdir/AAPL.csv.gz")
    raw = undo_split_adjustment(table[["symbol", "ts", "open", "high", "low", "close", "volume"]], actions_from_zipline_csvdir(table))
    quandl = read_quandl_wiki_table(shared_data / "corporate_actions/zipline_quandl_wiki/QUANDL_SAMPLE_TABLE.csv")
    quandl = quandl[quandl["symbol"] == "AAPL"].set_index("ts")["close"]
    ours = raw.set_index("ts")["close"].reindex(quandl.index)
    assert (ours / quandl - 1).abs().max() < 1e-4  # the two vendors round differently (95.04 vs 95.035)
    assert raw["close"].iloc[0] == pytest.approx(411.23, abs=0.01)  # raw 2012-01-03 close



@settings(max_examples=60, deadline=None)
@given(
    closes=st.lists(st.floats(1.0, 500.0), min_size=3, max_size=40),
    events=st.lists(
        st.tuples(st.integers(1, 39), st.sampled_from(["split", "cash_dividend"]), st.floats(0.05, 10.0)), max_size=6
    ),
)
def test_adjusted_returns_equal_ratio_method_total_returns(closes, events):
    """Between consecutive bars the adjusted return is r·close_t / (close_{t−1} − r·D) on an
    ex-date (split r, dividend D per new share) and the raw return on every other day."""
    bars = raw_bars(closes)
    events = [e for e in events if e[0] < len(closes)]
    split: dict[int, float] = {}
    for day, kind, value in events:
        if kind == "split":
            split[day] = split.get(day, 1.0) * value
    rows, dividend = [], {}
    for day, kind, value in events:
        if kind == "cash_dividend":  # keep each day's total below the previous close per new share
            value = min(value, 0.1 * closes[day - 1] / split.get(day, 1.0))  # 6 events max: < 0.6
            dividend[day] = dividend.get(day, 0.0) + value
        rows.append(("XYZ", bars["ts"].iloc[day], kind, value))
    out = adjust_bars(bars, pd.DataFrame(rows, columns=["symbol", "ex_date", "action_type", "value"]))
    adjusted, raw = out["close"].to_numpy(), np.asarray(closes, dtype=float)
    for t in range(1, len(closes)):
        r, d = split.get(t, 1.0), dividend.get(t, 0.0)
        expected = r * raw[t] / (raw[t - 1] - r * d)
        assert adjusted[t] / adjusted[t - 1] == pytest.approx(expected, rel=1e-9)
    assert adjusted[-1] == raw[-1]


def test_time_resolution_of_inputs_does_not_matter():
    """Actions stamped in microseconds (pandas' default for some constructors) still line up."""
    bars = raw_bars([100, 102, 51, 52])
    events = actions(("XYZ", pd.Timestamp("2020-01-03", tz="UTC").as_unit("us"), "split", 2.0))
    assert adjust_bars(bars, events, mode="split")["close"].tolist() == [50, 51, 51, 52]
