"""The backfill driver against an in-memory client (end-to-end runs are in test_faults_e2e)."""

from __future__ import annotations

import pandas as pd
import pytest

from tt_platform.ib.backfill import CompletedChunk, backfill
from tt_platform.ib.chunking import Chunk, plan_chunks
from tt_platform.ib.errors import IBConnectionLost, IBError
from tt_platform.ib.models import HistoricalResult, ResolvedContract, Unresolved
from tt_platform.ib.pacing import PacingEscalation


class FakeClient:
    """Serves ``frame``; scripted failures: drop the connection or refuse on given calls."""

    def __init__(self, frame: pd.DataFrame, drop_on: set[int] = (), refuse: set[tuple[str, str]] = (), unknown=()):
        self.frame, self.drop_on, self.refuse, self.unknown = frame, set(drop_on), set(refuse), set(unknown)
        self.connected = False
        self.connects = 0
        self.calls: list[tuple[str, pd.Timestamp]] = []

    def connect(self):
        self.connected = True
        self.connects += 1

    def is_connected(self):
        return self.connected

    def qualify(self, symbols):
        return {
            s: Unresolved(s, "error 200: No security definition", 200)
            if s in self.unknown
            else ResolvedContract(s, 1, "STK", "SMART", "NYSE", "USD")
            for s in symbols
        }

    def plan(self, symbol, start, end, interval, adjusted=False, chunk_unit=None):
        return plan_chunks(start, end, interval, chunk_unit)

    def historical_chunk(self, symbol, chunk: Chunk, interval, adjusted=False):
        self.calls.append((symbol, chunk.start))
        if len(self.calls) in self.drop_on:
            self.connected = False
            raise IBConnectionLost("Socket disconnect")
        if (symbol, chunk.start.strftime("%Y")) in self.refuse:
            return HistoricalResult(refused=True, errors=[IBError(7, 321, "Error validating request")], requests=1)
        f = self.frame
        bars = f[(f.symbol == symbol) & (f.ts >= chunk.start) & (f.ts < chunk.end)].reset_index(drop=True)
        return HistoricalResult(bars, False, [], requests=1)


@pytest.fixture
def frame(daily_frame):
    return daily_frame


def collect():
    got: list[CompletedChunk] = []
    return got, got.append


def test_every_chunk_is_delivered_once_in_order(frame):
    client = FakeClient(frame)
    got, on_chunk = collect()
    report = backfill(client, ["AAA", "BBB"], "2019-01-01", "2022-01-01", "1d", on_chunk)
    assert [(c.symbol, c.chunk.start.year) for c in got] == [
        ("AAA", 2019),
        ("AAA", 2020),
        ("AAA", 2021),
        ("BBB", 2019),
        ("BBB", 2020),
        ("BBB", 2021),
    ]
    assert report.chunks_done == 6 and report.complete and report.reconnects == 0
    assert report.bars == len(frame[frame.symbol.isin(["AAA", "BBB"])])
    assert client.connects == 1


def test_a_dropped_connection_resumes_at_the_interrupted_chunk(frame):
    client = FakeClient(frame, drop_on={3})
    got, on_chunk = collect()
    report = backfill(client, ["AAA", "BBB"], "2019-01-01", "2022-01-01", "1d", on_chunk)
    assert report.reconnects == 1 and client.connects == 2
    # call 3 (AAA 2021) failed and was asked again; nothing delivered twice, nothing re-asked
    assert [(s, t.year) for s, t in client.calls][:4] == [("AAA", 2019), ("AAA", 2020), ("AAA", 2021), ("AAA", 2021)]
    assert len(client.calls) == 7
    assert [(c.symbol, c.chunk.start.year) for c in got] == [
        ("AAA", 2019),
        ("AAA", 2020),
        ("AAA", 2021),
        ("BBB", 2019),
        ("BBB", 2020),
        ("BBB", 2021),
    ]


def test_is_done_skips_chunks_already_stored(frame):
    stored = {("AAA", pd.Timestamp("2019-01-01", tz="UTC")), ("AAA", pd.Timestamp("2020-01-01", tz="UTC"))}
    client = FakeClient(frame)
    got, on_chunk = collect()
    report = backfill(
        client, ["AAA"], "2019-01-01", "2022-01-01", "1d", on_chunk, is_done=lambda s, c: (s, c.start) in stored
    )
    assert report.chunks_skipped == 2 and report.chunks_done == 1
    assert [c.chunk.start.year for c in got] == [2021]
    assert client.calls == [("AAA", pd.Timestamp("2021-01-01", tz="UTC"))]


def test_refused_and_unresolved_are_reported_not_delivered(frame):
    client = FakeClient(frame, refuse={("AAA", "2020")}, unknown={"ZZZ"})
    got, on_chunk = collect()
    report = backfill(client, ["AAA", "ZZZ"], "2019-01-01", "2022-01-01", "1d", on_chunk)
    assert report.unresolved == {"ZZZ": "error 200: No security definition"}
    assert [(s, c.start.year, errors[0].code) for s, c, errors in report.refused] == [("AAA", 2020, 321)]
    assert [c.chunk.start.year for c in got] == [2019, 2021]
    assert not report.complete


def test_ranges_without_data_are_delivered_empty(frame):
    client = FakeClient(frame)
    got, on_chunk = collect()
    report = backfill(client, ["AAA"], "2022-01-01", "2022-03-01", "1d", on_chunk)
    assert len(got) == 1 and got[0].bars.empty
    assert [c.start for _, c in report.no_data] == [pd.Timestamp("2022-01-01", tz="UTC")]


def test_reconnects_are_bounded(frame):
    client = FakeClient(frame, drop_on=set(range(1, 100)))
    _, on_chunk = collect()
    with pytest.raises(IBConnectionLost, match="gave up after 3 reconnects"):
        backfill(client, ["AAA"], "2019-01-01", "2022-01-01", "1d", on_chunk, max_reconnects=3)


def test_pacing_escalation_stops_the_backfill_with_its_report(frame):
    class Escalating(FakeClient):
        def historical_chunk(self, symbol, chunk, interval, adjusted=False):
            if chunk.start.year == 2020:
                raise PacingEscalation("6 consecutive pacing violations")
            return super().historical_chunk(symbol, chunk, interval, adjusted)

    got, on_chunk = collect()
    with pytest.raises(PacingEscalation) as info:
        backfill(Escalating(frame), ["AAA"], "2019-01-01", "2022-01-01", "1d", on_chunk)
    assert info.value.report.chunks_done == 1 and len(got) == 1


def test_a_callback_is_required(frame):
    with pytest.raises(ValueError, match="on_chunk"):
        backfill(FakeClient(frame), ["AAA"], "2019-01-01", "2020-01-01")
