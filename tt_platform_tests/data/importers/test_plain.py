import pytest

from tt_platform.data.bars import BAR_COLUMNS
from tt_platform.data.importers import ImportFormatError, read_pandas_ta_csv, read_plain_csv
from tt_platform_tests.data.importers.helpers import utc, write

GOOD = """date,open,high,low,close,volume
2020-01-03,10,11,9,10.5,100
2020-01-02,9.5,10.2,9.1,10,200
"""


def test_plain_csv_gives_canonical_daily_bars(tmp_path):
    bars = read_plain_csv(write(tmp_path, "spy.csv", GOOD))
    assert list(bars.columns) == BAR_COLUMNS
    assert str(bars["ts"].dtype) == "datetime64[ns, UTC]"
    assert bars["symbol"].tolist() == ["SPY", "SPY"]  # from the file name, upper-cased
    assert bars["ts"].tolist() == [utc("2020-01-02"), utc("2020-01-03")]  # sorted, 00:00 UTC
    assert bars.loc[1, ["open", "high", "low", "close", "volume"]].tolist() == [10.0, 11.0, 9.0, 10.5, 100.0]


def test_explicit_symbol_wins_and_compressed_names_are_stripped(tmp_path):
    path = tmp_path / "AAPL.csv.gz"
    import gzip

    with gzip.open(path, "wt") as handle:
        handle.write(GOOD)
    assert read_plain_csv(path)["symbol"].iloc[0] == "AAPL"
    assert read_plain_csv(path, symbol="msft")["symbol"].iloc[0] == "MSFT"


def test_header_is_case_insensitive_and_extra_columns_are_ignored(tmp_path):
    text = "Date,Open,High,Low,Close,Volume,Note\n2020-01-02,1,2,0.5,1.5,10,hello\n"
    bars = read_plain_csv(write(tmp_path, "x.csv", text))
    assert bars["close"].tolist() == [1.5]


def test_offsets_are_converted_to_utc_and_naive_times_use_tz(tmp_path):
    aware = "datetime,open,high,low,close,volume\n2021-07-01 09:30:00-04:00,1,1,1,1,1\n"
    assert read_plain_csv(write(tmp_path, "a.csv", aware))["ts"].iloc[0] == utc("2021-07-01 13:30")
    naive = "date,open,high,low,close,volume\n2021-07-01 09:30:00,1,1,1,1,1\n"
    bars = read_plain_csv(write(tmp_path, "n.csv", naive), tz="America/New_York")
    assert bars["ts"].iloc[0] == utc("2021-07-01 13:30")


def test_blank_lines_are_skipped_and_line_numbers_stay_physical(tmp_path):
    text = "date,open,high,low,close,volume\n2020-01-02,1,2,0.5,1.5,10\n\n2020-01-03,1,2,0.5,oops,10\n"
    with pytest.raises(ImportFormatError) as info:
        read_plain_csv(write(tmp_path, "x.csv", text))
    assert info.value.line == 4
    assert "'close' is not a number: 'oops'" in info.value.problem


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("2020-01-03,1,2,0.5,1.5", "missing value for 'volume'"),
        ("2020-01-03,1,2,0.5,1.5,10,99", "expected 6 fields, found 7"),
        ("2020-13-45,1,2,0.5,1.5,10", "is not an ISO-8601 date/time"),
        ("2020-01-03,0,2,0.5,1.5,10", "price <= 0"),
        ("2020-01-03,1,2,0.5,1.5,-5", "negative volume"),
        ("2020-01-03,1,2,0.5,inf,10", "not a finite number"),
        ("2020-01-02,1,2,0.5,1.5,10", "duplicate timestamp 2020-01-02 00:00:00+00:00 (first seen on line 2)"),
    ],
)
def test_bad_rows_name_file_line_and_problem(tmp_path, row, problem):
    path = write(tmp_path, "bad.csv", f"date,open,high,low,close,volume\n2020-01-02,1,2,0.5,1.5,10\n{row}\n")
    with pytest.raises(ImportFormatError) as info:
        read_plain_csv(path)
    error = info.value
    assert error.path == str(path)
    assert error.line == 3
    assert problem in error.problem
    assert str(path) in str(error) and "line 3" in str(error)


def test_missing_column_and_empty_file_are_file_level_errors(tmp_path):
    with pytest.raises(ImportFormatError, match="no 'volume' column"):
        read_plain_csv(write(tmp_path, "x.csv", "date,open,high,low,close\n2020-01-02,1,2,0.5,1.5\n"))
    with pytest.raises(ImportFormatError, match="no data rows"):
        read_plain_csv(write(tmp_path, "y.csv", "date,open,high,low,close,volume\n"))
    with pytest.raises(ImportFormatError, match="file not found"):
        read_plain_csv(tmp_path / "absent.csv")


def test_invalid_symbol_from_file_name_asks_for_symbol(tmp_path):
    path = write(tmp_path, "my prices.csv", GOOD)
    with pytest.raises(ImportFormatError, match="pass symbol="):
        read_plain_csv(path)
    assert read_plain_csv(path, symbol="SPY")["symbol"].iloc[0] == "SPY"


def test_pandas_ta_index_column_is_dropped(tmp_path):
    text = ",date,open,high,low,close,volume\n0,1999-11-01,136.5,137.0,135.5625,135.5625,4006500.0\n"
    bars = read_pandas_ta_csv(write(tmp_path, "SPY_D.csv", text))
    assert bars["symbol"].iloc[0] == "SPY"
    assert bars["close"].iloc[0] == 135.5625


@pytest.mark.parametrize(
    ("relative", "rows", "first", "last"),
    [
        ("daily/market_lab_adjusted/SPY.csv", 7285, "1993-01-29", "2021-12-31"),
        ("daily/market_lab_adjusted/GSPC.csv", 23614, "1927-12-30", "2021-12-31"),
        ("daily/market_lab_adjusted/BTC_USD.csv", 2663, "2014-09-17", "2021-12-31"),
        ("daily/lean_normalized_unadjusted/SPY.csv", 5849, "1998-01-02", "2021-03-31"),
        ("daily/lean_normalized_unadjusted/QQQ.csv", 3964, "1999-03-10", "2021-03-31"),
        ("daily/lean_normalized_unadjusted/WM.csv", 2934, "2009-08-05", "2021-03-31"),
    ],
)
def test_real_plain_files(shared_data, relative, rows, first, last):
    bars = read_plain_csv(shared_data / relative)
    assert len(bars) == rows
    assert bars["ts"].iloc[0] == utc(first)
    assert bars["ts"].iloc[-1] == utc(last)
    assert bars["symbol"].nunique() == 1


def test_real_plain_values_are_exact(shared_data):
    bars = read_plain_csv(shared_data / "daily/lean_normalized_unadjusted/SPY.csv")
    last = bars.iloc[-1]
    assert (last["open"], last["high"], last["low"], last["close"], last["volume"]) == (395.35, 398.0, 395.33, 396.33, 90673494.0)


def test_real_pandas_ta_file(shared_data):
    bars = read_pandas_ta_csv(shared_data / "daily/pandas_ta/SPY_D.csv")
    assert len(bars) == 5241
    assert bars["symbol"].iloc[0] == "SPY"
    assert (bars["ts"].iloc[0], bars["ts"].iloc[-1]) == (utc("1999-11-01"), utc("2020-08-28"))
    assert bars["close"].iloc[-1] == pytest.approx(350.58)
