"""Fuzzing every file format the importers read: near-valid files of each format with broken
cells, rows, headers, encodings and bytes.

Property: ``read_any`` either returns valid data of the format's kind (canonical bars: positive
finite prices, one bar per timestamp, UTC stamps) or raises ``ImportFormatError`` naming the file,
a line that exists and the problem. And a file the CSV bar source refuses leaves the store as it
was: no bar, no coverage row, no listing written.
"""

from __future__ import annotations

import gzip
import tempfile
import zipfile
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tt_platform.config.run_config import DataConfig
from tt_platform.data.bars import BAR_COLUMNS, validate_bars
from tt_platform.data.importers import FORMATS, ImportFormatError, read_any
from tt_platform.data.importers.lean import QUOTE_BAR_COLUMNS, QUOTE_TICK_COLUMNS, TRADE_TICK_COLUMNS
from tt_platform.data.sources.csv import CsvBarSource, CsvSourceConfig
from tt_platform.pipeline.market_data import ingest_months
from tt_platform_tests.fuzz.properties import FUZZ, FUZZ_SLOW, assert_names_problem

# extreme prices are the point here: numpy's remarks on them are expected
pytestmark = [
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
]

GARBAGE = st.sampled_from([
    "", " ", "nan", "NaN", "inf", "-inf", "1e400", "-1", "0", "abc", "1,5", '"', '"7"', "9" * 40,
    "0x1A", "1_000", "٣", "é", "\t", "2020-02-30", "None", "-0", "1e-320",
])


PRICE = st.floats(0.01, 5_000.0).map(lambda x: f"{x:.4f}")
VOLUME = st.integers(0, 10**9).map(str)
SCALED = st.integers(1, 10**9).map(str)  # Lean equity prices x10000
SPLIT = st.sampled_from(["1.0", "1", "2.0", "0.5", "7"])
DIVIDEND = st.sampled_from(["0", "0.0", "0.25", "1.5"])
# mostly recent, now and then any year from 1 to 9999 (pandas parses them; a timestamp cannot hold most)
DAYS = st.one_of(*[st.dates(date(1990, 1, 1), date(2030, 12, 31))] * 4, st.dates())
MOMENTS = st.one_of(*[st.datetimes(datetime(1990, 1, 1), datetime(2030, 12, 31))] * 4, st.datetimes())


def _stamp(fmt: str) -> st.SearchStrategy[str]:
    return MOMENTS.map(lambda moment: moment.strftime(fmt))


ISO_DATE = DAYS.map(date.isoformat)
ISO_ANY = st.one_of(
    DAYS.map(date.isoformat),
    MOMENTS.map(lambda m: m.strftime("%Y-%m-%d %H:%M:%S")),
    st.tuples(MOMENTS, st.sampled_from(["-04:00", "+00:00", "Z", "+0530"])).map(lambda p: p[0].strftime("%Y-%m-%dT%H:%M:%S") + p[1]),
)
ISO_OFFSET = st.tuples(MOMENTS, st.sampled_from(["-04:00", "-05:00", "+00:00"])).map(
    lambda p: p[0].strftime("%Y-%m-%d %H:%M:%S") + p[1])
MS_OF_DAY = st.integers(0, 86_400_000).map(str)
FLAG = st.sampled_from(["0", "1"])
TEXT = st.sampled_from(["", "P", "Q", "T", "@"])

# name, header line (None: the format has none), separator, cells of one row
LAYOUTS: dict[str, tuple[str, str | None, str, list]] = {
    "plain": ("SPY.csv", "date,open,high,low,close,volume", ",", [ISO_ANY, PRICE, PRICE, PRICE, PRICE, VOLUME]),
    "pandas_ta": ("SPY_D.csv", ",date,open,high,low,close,volume", ",",
                  [st.integers(0, 9).map(str), ISO_DATE, PRICE, PRICE, PRICE, PRICE, VOLUME]),
    "yahoo": ("SPY.csv", "Date,Open,High,Low,Close,Adj Close,Volume", ",",
              [ISO_DATE, PRICE, PRICE, PRICE, PRICE, PRICE, VOLUME]),
    "lean_daily": ("spy.csv", None, ",", [_stamp("%Y%m%d 00:00"), SCALED, SCALED, SCALED, SCALED, VOLUME]),
    "lean_trade_bars": ("20131007_spy_minute_trade.csv", None, ",", [MS_OF_DAY, SCALED, SCALED, SCALED, SCALED, VOLUME]),
    "lean_quote_bars": ("20131007_spy_minute_quote.csv", None, ",", [MS_OF_DAY] + [SCALED] * 4 + [VOLUME] + [SCALED] * 4 + [VOLUME]),
    "lean_trade_ticks": ("20131007_spy_trade_tick.csv", None, ",", [MS_OF_DAY, SCALED, VOLUME, TEXT, TEXT, FLAG]),
    "lean_quote_ticks": ("20131007_spy_quote_tick.csv", None, ",",
                         [MS_OF_DAY, SCALED, VOLUME, SCALED, VOLUME, TEXT, TEXT, FLAG]),
    "ninjatrader": ("nt-spy-minute.csv", None, ";", [_stamp("%Y%m%d %H%M%S"), PRICE, PRICE, PRICE, PRICE, VOLUME]),
    "lumibot": ("BTC-USD_MINUTE.csv", "time,open,high,low,close,volume", ",", [ISO_OFFSET, PRICE, PRICE, PRICE, PRICE, VOLUME]),
    "mplfinance_intraday": ("SP500_IDay.csv", "Date,Open,Close,High,Low,Volume", ",",
                            [_stamp("%m/%d/%Y %H:%M"), PRICE, PRICE, PRICE, PRICE, VOLUME]),
    "cryptodatadownload": (
        "Coinbase_BTCUSD_1h.csv",
        "Created by x,https://www.CryptoDataDownload.com\nDate,Symbol,Open,High,Low,Close,Volume BTC,Volume USD", ",",
        [_stamp("%Y-%m-%d %I-%p"), st.just("BTCUSD"), PRICE, PRICE, PRICE, PRICE, VOLUME, VOLUME],
    ),
    "bitstamp_trades": ("bitstamp.csv", None, ",",
                        [st.integers(946_684_800, 4_102_444_800).map(str), PRICE, VOLUME]),
    "mtgox_trades": ("mtgox.csv", "id,price,amount,type", ",",
                     [st.integers(946_684_800 * 10**6, 4_102_444_800 * 10**6).map(str), PRICE, VOLUME,
                      st.sampled_from(["bid", "ask"])]),
    "zipline_csvdir": ("AAPL.csv", "date,open,high,low,close,volume,dividend,split", ",",
                       [ISO_DATE, PRICE, PRICE, PRICE, PRICE, VOLUME, DIVIDEND, SPLIT]),
    "quandl_wiki": (
        "WIKI-AIG.csv",
        "Date,Open,High,Low,Close,Volume,Ex-Dividend,Split Ratio,Adj. Open,Adj. High,Adj. Low,Adj. Close,Adj. Volume", ",",
        [ISO_DATE, PRICE, PRICE, PRICE, PRICE, VOLUME, DIVIDEND, SPLIT, PRICE, PRICE, PRICE, PRICE, VOLUME],
    ),
}
assert set(LAYOUTS) == set(FORMATS), "every importer format is fuzzed"

OUTPUT_COLUMNS = {
    "bars": BAR_COLUMNS,
    "quote_bars": ["symbol", "ts", *QUOTE_BAR_COLUMNS],
    "trade_ticks": TRADE_TICK_COLUMNS[:4],  # crypto trades end there, Lean's go on
    "quote_ticks": QUOTE_TICK_COLUMNS,
}


@st.composite
def row_text(draw, cells: list, sep: str) -> str:
    """One row of well-formed cells, or one with a broken cell, a field too few or too many, or
    a blank line."""
    values = [draw(cell) for cell in cells]
    change = draw(st.sampled_from(["none"] * 12 + ["garbage", "garbage", "drop", "extra", "blank", "spaces"]))
    if change == "garbage":
        values[draw(st.integers(0, len(values) - 1))] = draw(st.one_of(GARBAGE, st.text(max_size=6)))
    elif change == "drop":
        del values[draw(st.integers(0, len(values) - 1))]
    elif change == "extra":
        values.append(draw(GARBAGE))
    elif change == "blank":
        return ""
    elif change == "spaces":
        return " " * draw(st.integers(1, 3))
    return sep.join(values)


@st.composite
def vendor_files(draw, formats: list[str] | None = None) -> tuple[str, str, bytes]:
    """(format, file name, bytes): a file of one format with some of its parts broken."""
    fmt = draw(st.sampled_from(formats or sorted(LAYOUTS)))
    name, header, sep, cells = LAYOUTS[fmt]
    lines = [draw(row_text(cells, sep)) for _ in range(draw(st.integers(0, 6)))]
    if header is not None and draw(st.integers(0, 19)) > 0:
        header_lines = header.split("\n")
        if draw(st.integers(0, 9)) == 0:  # a header with a renamed, missing or doubled column
            fields = header_lines[-1].split(sep)
            position = draw(st.integers(0, len(fields) - 1))
            fields[position] = draw(st.sampled_from(["", "Open", "foo", fields[0], "adj close"]))
            header_lines[-1] = sep.join(fields)
        lines = header_lines + lines
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines) + draw(st.sampled_from(["", "\n"]))
    raw = draw(st.sampled_from([b"", b"", b"", b"\xef\xbb\xbf"])) + text.encode("utf-8")
    damage = draw(st.sampled_from(["none"] * 12 + ["bytes", "truncate", "latin1"]))
    if damage == "bytes" and raw:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=4)) + raw[at:]
    elif damage == "truncate" and raw:
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif damage == "latin1":
        raw = raw + "é,1\n".encode("latin-1")
    return fmt, name, raw


def _line_count(raw: bytes) -> int:
    return max(1, raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1))


def assert_refusal_is_clear(error: ImportFormatError, path: Path, raw: bytes) -> None:
    assert_names_problem(str(error), str(path))
    assert error.path == str(path)
    if error.line is not None:
        assert 1 <= error.line <= _line_count(raw), f"line {error.line} is not in the file: {error}"


def assert_valid_output(frame: pd.DataFrame, fmt: str) -> None:
    output = FORMATS[fmt].output
    assert list(frame.columns)[: len(OUTPUT_COLUMNS[output])] == OUTPUT_COLUMNS[output]
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    if output == "bars":
        validate_bars(frame, fmt)  # finite positive prices, one bar per (symbol, ts)
        assert (frame["volume"] >= 0).all()
        assert frame.groupby("symbol")["ts"].apply(lambda ts: ts.is_monotonic_increasing).all()


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory(prefix="tt-fuzz-bars-") as name:
        yield Path(name)


@FUZZ
@given(vendor_files())
def test_each_format_reads_a_broken_file_or_names_the_problem(folder, case):
    fmt, name, raw = case
    path = folder / name
    path.write_bytes(raw)
    try:
        frame = read_any(path, format=fmt)
    except ImportFormatError as error:
        event(f"{fmt}: refused")
        assert_refusal_is_clear(error, path, raw)
    else:
        event(f"{fmt}: read")
        assert_valid_output(frame, fmt)


@FUZZ
@given(st.one_of(vendor_files().map(lambda case: case[2]), st.binary(max_size=300)),
       st.sampled_from([case[0] for case in LAYOUTS.values()] + ["data.txt", "x.csv.gz", "x.zip"]))
def test_format_detection_reads_or_names_the_problem(folder, raw, name):
    path = folder / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(raw) if raw else b"not gzip")
    elif name.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("20131007_spy_trade_tick.csv", raw)
    else:
        path.write_bytes(raw)
    try:
        frame = read_any(path)
    except ImportFormatError as error:
        assert_names_problem(str(error), str(path))
    else:
        assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"


def test_the_field_count_error_points_at_the_row_that_does_not_fit(folder):
    path = folder / "SPY.csv"
    path.write_text("date,open,high,low,close,volume\n2020-01-02,1,1,1,1\n2020-01-03,1,1,1,1,1\n")
    with pytest.raises(ImportFormatError) as error:
        read_any(path, format="plain")
    assert (error.value.line, error.value.problem) == (2, "expected 6 fields, found 5")


def test_a_year_a_timestamp_cannot_hold_is_named_with_its_line(folder):
    path = folder / "SPY.csv"
    path.write_text("date,open,high,low,close,volume\n2020-01-02,1,1,1,1,1\n0001-01-03,1,1,1,1,1\n")
    with pytest.raises(ImportFormatError) as error:
        read_any(path, format="plain")
    assert (error.value.line, error.value.problem) == (3, "'date' is outside 1678-01-01 .. 2261-12-31: '0001-01-03'")


def test_a_blank_line_after_the_header_is_skipped_like_any_blank_line(folder):
    path = folder / "SPY.csv"
    path.write_text("date,open,high,low,close,volume\n\n2020-01-02,1,2,1,1.5,10\n\n2020-01-03,1,1,1,1,1\n")
    bars = read_any(path, format="plain")
    assert list(bars["close"]) == [1.5, 1.0]
    path.write_text("date,open,high,low,close,volume\n\n2020-01-02,1,2,1,-1.5,10\n")
    with pytest.raises(ImportFormatError) as error:
        read_any(path, format="plain")
    assert error.value.line == 3


# ---- a refused file writes nothing -------------------------------------------------------------

JANUARY = [day for day in pd.bdate_range("2021-01-04", "2021-01-29") if day != pd.Timestamp("2021-01-18")]
HEADER = "date,open,high,low,close,volume"


def _good_rows() -> list[str]:
    return [f"{day:%Y-%m-%d},100,101,99,100.5,1000" for day in JANUARY]


@st.composite
def damaged_january(draw) -> bytes:
    """BBB's January 2021 bars, whole or with a few rows broken, lost, repeated or garbled."""
    lines = _good_rows()
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(lines) - 1))
        damage = draw(st.sampled_from(["row", "lose", "repeat", "price"]))
        if damage == "row":
            lines[at] = draw(row_text(LAYOUTS["plain"][3], ","))
        elif damage == "lose":
            del lines[at]
        elif damage == "repeat":
            lines.insert(at, lines[at])
        else:
            lines[at] = lines[at].replace("100.5", draw(GARBAGE), 1)
    raw = (HEADER + "\n" + "\n".join(lines) + "\n").encode()
    if draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=3)) + raw[at:]
    return raw


def _counts(engine) -> dict[str, int]:
    """Rows of every table an ingest writes, and of BBB's bars alone."""
    with engine.connect() as conn:
        counts = {table: conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
                  for table in ("tt_prices", "tt_bar_coverage", "tt_instruments")}
        counts["BBB bars"] = conn.exec_driver_sql("SELECT count(*) FROM tt_prices WHERE instrument = 'BBB'").scalar_one()
    return counts


@FUZZ_SLOW
@given(damaged_january())
def test_a_bar_file_the_csv_source_refuses_leaves_the_store_as_it_was(store_engine, tmp_path_factory, raw):
    folder = tmp_path_factory.mktemp("csv")
    (folder / "AAA.csv").write_text(HEADER + "\n" + "\n".join(_good_rows()) + "\n")
    (folder / "BBB.csv").write_bytes(raw)
    data = DataConfig(source="csv", csv_dir=folder, start="2021-01-04", end="2021-01-29")
    before = _counts(store_engine)
    try:
        result = ingest_months(store_engine, CsvBarSource(CsvSourceConfig(folder)), data, ["AAA", "BBB"], ["2021-01"],
                               last_session=date(2021, 1, 29), refetch=True)
    except ImportFormatError as error:
        event("refused by the importer")
        assert_refusal_is_clear(error, folder / "BBB.csv", raw)
        assert _counts(store_engine) == before, "a refused file changed the store"
        return
    after = _counts(store_engine)
    if "BBB" in result.report.failed:
        event("read, refused by the bar checks")
        assert after["BBB bars"] == before["BBB bars"], "refused bars were written"
    else:
        event("stored")  # the file's first and last rows are BBB's life: a lost end row shortens it
        bars = read_any(folder / "BBB.csv", format="plain")
        january = bars["ts"].dt.strftime("%Y-%m") == "2021-01"
        assert after["BBB bars"] == int(january.sum())
