"""File importers for the vendor formats in the shared market data (see its MANIFEST.md).

Bar readers return the canonical frame of ``tt_platform.data.bars`` (``normalize_bars``): daily
bars at 00:00 UTC of the session date, intraday bars stamped at the bar *start* in UTC. Tick
readers return ``symbol, ts, price, size`` (+ vendor extras) in file order; quote readers return
bid/ask columns. A file or row that does not fit raises ``ImportFormatError(path, line, problem)``.
"""

from tt_platform.data.importers.crypto_ticks import read_bitstamp_trades, read_mtgox_trades
from tt_platform.data.importers.cryptodatadownload import (
    CryptoDataDownloadImport,
    DuplicateBarReport,
    DuplicatedBar,
    load_cryptodatadownload,
    read_cryptodatadownload_csv,
)
from tt_platform.data.importers.errors import ImportFormatError
from tt_platform.data.importers.lean import (
    LeanFileName,
    parse_lean_file_name,
    read_lean_daily,
    read_lean_quote_bars,
    read_lean_quote_ticks,
    read_lean_trade_bars,
    read_lean_trade_ticks,
)
from tt_platform.data.importers.lumibot import read_lumibot_csv
from tt_platform.data.importers.mplfinance import read_mplfinance_intraday
from tt_platform.data.importers.ninjatrader import read_ninjatrader_minute
from tt_platform.data.importers.plain import read_pandas_ta_csv, read_plain_csv
from tt_platform.data.importers.quandl import read_quandl_wiki, read_quandl_wiki_table
from tt_platform.data.importers.registry import FORMATS, FileFormat, detect_format, read_any
from tt_platform.data.importers.yahoo import read_yahoo_csv
from tt_platform.data.importers.zipline import read_zipline_csvdir, read_zipline_csvdir_table

__all__ = [
    "FORMATS",
    "CryptoDataDownloadImport",
    "DuplicateBarReport",
    "DuplicatedBar",
    "FileFormat",
    "ImportFormatError",
    "LeanFileName",
    "detect_format",
    "load_cryptodatadownload",
    "parse_lean_file_name",
    "read_any",
    "read_bitstamp_trades",
    "read_cryptodatadownload_csv",
    "read_lean_daily",
    "read_lean_quote_bars",
    "read_lean_quote_ticks",
    "read_lean_trade_bars",
    "read_lean_trade_ticks",
    "read_lumibot_csv",
    "read_mplfinance_intraday",
    "read_mtgox_trades",
    "read_ninjatrader_minute",
    "read_pandas_ta_csv",
    "read_plain_csv",
    "read_quandl_wiki",
    "read_quandl_wiki_table",
    "read_yahoo_csv",
    "read_zipline_csvdir",
    "read_zipline_csvdir_table",
]
