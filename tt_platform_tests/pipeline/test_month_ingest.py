"""Month partitions hold the universe: coverage, absent-with-reason, and fetching only what is missing."""

from datetime import date

import pandas as pd
import pytest

from tt_platform.config.run_config import DataConfig
from tt_platform.data.sources.base import BarRequest, BarSource, FetchReport
from tt_platform.data.sources.factory import source_for
from tt_platform.data.synthetic import generate_bars
from tt_platform.pipeline.market_data import ingest_months, month_window
from tt_platform.pipeline.months import keys_between
from tt_platform.store.coverage import read_coverage
from tt_platform.store.prices import read_bars

Q1 = keys_between(date(2021, 1, 1), date(2021, 3, 31))
AFTER_Q1 = date(2021, 12, 31)


class RecordingSource(BarSource):
    """A synthetic source that remembers what it was asked for."""

    name = "synthetic"

    def __init__(self, fail: dict[str, str] | None = None) -> None:
        self.inner = source_for(DataConfig(source="synthetic"))
        self.requests: list[BarRequest] = []
        self.fail = fail or {}

    def fetch(self, requests, *, interval, adjusted, on_bars):
        self.requests.extend(requests)
        served = [r for r in requests if r.symbol not in self.fail]
        self.inner.fetch(served, interval=interval, adjusted=adjusted, on_bars=on_bars)
        return FetchReport(requests=len(served), failed={s: why for s, why in self.fail.items() if any(r.symbol == s for r in requests)})


def synthetic() -> DataConfig:
    return DataConfig(source="synthetic", start=date(2021, 1, 4), end=date(2021, 3, 31))


def test_a_complete_backfill_marks_every_month_complete_with_its_own_rows(store_engine):
    source = RecordingSource()
    result = ingest_months(store_engine, source, synthetic(), ["AAA", "BBB"], Q1, last_session=AFTER_Q1)
    assert result.complete
    sessions = {"2021-01": 19, "2021-02": 19, "2021-03": 23}  # NYSE: MLK day, Presidents' day
    assert {k: m.rows for k, m in result.months.items()} == {k: 2 * n for k, n in sessions.items()}
    # contiguous months are one request per symbol (a source answers years at once)
    assert sorted((r.symbol, r.start, r.end) for r in source.requests) == [
        ("AAA", date(2021, 1, 1), date(2021, 3, 31)), ("BBB", date(2021, 1, 1), date(2021, 3, 31))
    ]


def test_a_rerun_fetches_nothing_and_an_added_symbol_only_itself(store_engine):
    ingest_months(store_engine, RecordingSource(), synthetic(), ["AAA", "BBB"], Q1, last_session=AFTER_Q1)
    again = RecordingSource()
    result = ingest_months(store_engine, again, synthetic(), ["AAA", "BBB"], Q1, last_session=AFTER_Q1)
    assert again.requests == [] and result.complete
    added = RecordingSource()
    result = ingest_months(store_engine, added, synthetic(), ["AAA", "BBB", "CCC"], Q1, last_session=AFTER_Q1)
    assert {r.symbol for r in added.requests} == {"CCC"}
    assert result.complete and result.months["2021-02"].rows == 3 * 19


def test_the_month_in_progress_ends_at_the_last_session_and_later_fetches_only_new_days(store_engine):
    data = synthetic()
    first = ingest_months(store_engine, RecordingSource(), data, ["AAA"], ["2021-03"], last_session=date(2021, 3, 10))
    assert first.complete and first.months["2021-03"].rows == 8  # 1..10 March: 8 sessions
    assert read_bars(store_engine, ["AAA"])["ts"].max() == pd.Timestamp("2021-03-10", tz="UTC")
    later = RecordingSource()
    second = ingest_months(store_engine, later, data, ["AAA"], ["2021-03"], last_session=date(2021, 3, 12))
    assert [(r.start, r.end) for r in later.requests] == [(date(2021, 3, 11), date(2021, 3, 12))]
    assert second.months["2021-03"].rows == 10


def test_a_month_without_a_completed_session_asks_for_nothing(store_engine):
    assert month_window("2021-04", date(2021, 3, 31)) is None
    source = RecordingSource()
    result = ingest_months(store_engine, source, synthetic(), ["AAA"], ["2021-04"], last_session=date(2021, 3, 31))
    assert source.requests == [] and result.months["2021-04"].absent == {"AAA": "no completed session yet"}


def test_a_failed_request_leaves_its_months_missing_and_says_why(store_engine):
    source = RecordingSource(fail={"BBB": "cannot connect to IB at 127.0.0.1:4199"})
    result = ingest_months(store_engine, source, synthetic(), ["AAA", "BBB"], Q1, last_session=AFTER_Q1)
    assert not result.complete
    assert result.months["2021-01"].missing == {"BBB": "cannot connect to IB at 127.0.0.1:4199"}
    assert "BBB 2021-01: cannot connect" in result.incomplete_reasons()[0]
    retry = RecordingSource()
    assert ingest_months(store_engine, retry, synthetic(), ["AAA", "BBB"], Q1, last_session=AFTER_Q1).complete
    assert {r.symbol for r in retry.requests} == {"BBB"}


def write_csv(folder, symbol: str, start: str, end: str) -> None:
    bars = generate_bars([symbol], start, end, seed=3)
    frame = bars.assign(date=bars["ts"].dt.strftime("%Y-%m-%d"))[["date", "open", "high", "low", "close", "volume"]]
    frame.to_csv(folder / f"{symbol}.csv", index=False)


def test_listing_and_delisting_are_recorded_absent_with_a_reason(tmp_path, store_engine):
    write_csv(tmp_path, "NEW", "2021-02-16", "2021-03-31")  # lists mid-February
    write_csv(tmp_path, "OLD", "2021-01-04", "2021-01-29")  # delisted end of January
    data = DataConfig(source="csv", csv_dir=tmp_path, start=date(2021, 1, 4), end=date(2021, 3, 31))
    result = ingest_months(store_engine, source_for(data), data, ["NEW", "OLD"], Q1, last_session=AFTER_Q1)
    assert result.complete
    assert result.months["2021-01"].absent == {"NEW": "not listed yet (first data 2021-02-16)"}
    assert result.months["2021-03"].absent == {"OLD": "no data after 2021-01-29 (delisted)"}
    assert result.months["2021-02"].absent == {"OLD": "no data after 2021-01-29 (delisted)"}
    assert result.months["2021-02"].stored == ["NEW"]
    coverage = read_coverage(store_engine, interval="1d", adjusted=False)
    assert set(coverage["status"]) == {"stored", "absent"} and coverage["reason"][coverage["status"] == "absent"].notna().all()


def test_a_missing_csv_file_is_a_failure_naming_the_file(tmp_path, store_engine):
    data = DataConfig(source="csv", csv_dir=tmp_path, start=date(2021, 1, 4), end=date(2021, 3, 31))
    result = ingest_months(store_engine, source_for(data), data, ["GONE"], Q1, last_session=AFTER_Q1)
    assert not result.complete
    assert str(tmp_path / "GONE.csv") in result.months["2021-01"].missing["GONE"]


def test_keys_span_months_and_reject_nonsense():
    assert keys_between(date(2020, 11, 15), date(2021, 2, 1)) == ["2020-11", "2020-12", "2021-01", "2021-02"]
    assert keys_between(date(2021, 2, 1), date(2021, 1, 1)) == []
    with pytest.raises(ValueError, match="not a month partition key"):
        month_window("2021-13", AFTER_Q1)


def test_month_metadata_lists_a_few_absent_symbols_and_counts_the_rest():
    from tt_platform.pipeline.market_data import MonthStatus

    absent = {f"S{i:02d}": "not listed yet (first data 2022-01-03)" for i in range(25)}
    metadata = MonthStatus("2021-03", True, 0, [], absent, {}, []).as_metadata()
    assert metadata["symbols_absent"] == 25
    assert metadata["absent"].startswith("S00: not listed yet") and metadata["absent"].endswith("; and 5 more")
    assert metadata["absent_reasons"] == "not listed yet (first data 2022-01-03)"
