"""The backfill driver against an in-memory client (end-to-end runs are in test_faults_e2e)."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from tt_platform.ib.backfill import BackfillJob, BackfillReport, CompletedChunk, backfill, backfill_async
from tt_platform.ib.chunking import Chunk, plan_chunks
from tt_platform.ib.errors import IBConnectionLost, IBError
from tt_platform.ib.models import HistoricalResult, ResolvedContract, Unresolved
from tt_platform.ib.pacing import PacingEscalation

YEARLY = 1  # years per request: three chunks for 2019-2021


class FakeClient:
    """Serves ``frame``; scripted failures: drop the connection or refuse on given calls.

    Each request takes ``latency`` seconds (real), so that concurrent ones overlap.
    """

    def __init__(
        self, frame: pd.DataFrame, drop_on: set[int] = (), refuse: set[tuple[str, str]] = (), unknown=(), latency=0.0
    ):
        self.frame, self.drop_on, self.refuse, self.unknown = frame, set(drop_on), set(refuse), set(unknown)
        self.latency = latency
        self.connected = False
        self.connects = 0
        self.calls: list[tuple[str, pd.Timestamp]] = []
        self.open = self.max_open = 0

    def run(self, coro):
        return asyncio.get_event_loop().run_until_complete(coro)

    async def connect_async(self):
        self.connected = True
        self.connects += 1

    def disconnect(self):
        self.connected = False

    def is_connected(self):
        return self.connected

    async def qualify_async(self, symbols):
        return {
            s: Unresolved(s, "error 200: No security definition", 200)
            if s in self.unknown
            else ResolvedContract(s, 1, "STK", "SMART", "NYSE", "USD")
            for s in symbols
        }

    async def plan_async(self, symbol, start, end, interval, adjusted=False, chunk_unit=None):
        return plan_chunks(start, end, interval, chunk_unit, years_per_request=YEARLY)

    async def historical_chunk_async(self, symbol, chunk: Chunk, interval, adjusted=False):
        if not self.connected:
            raise IBConnectionLost("not connected")
        self.calls.append((symbol, chunk.start))
        if len(self.calls) in self.drop_on:
            self.connected = False
            raise IBConnectionLost("Socket disconnect")
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.open -= 1
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


def delivered(got: list[CompletedChunk]) -> list[tuple[str, int]]:
    return sorted((c.symbol, c.chunk.start.year) for c in got)


def test_every_chunk_is_delivered_once(frame):
    client = FakeClient(frame)
    got, on_chunk = collect()
    report = backfill(client, ["AAA", "BBB"], "2019-01-01", "2022-01-01", "1d", on_chunk)
    assert delivered(got) == [(s, y) for s in ("AAA", "BBB") for y in (2019, 2020, 2021)]
    assert report.chunks_done == 6 and report.complete and report.reconnects == 0
    assert report.bars == len(frame[frame.symbol.isin(["AAA", "BBB"])])
    assert client.connects == 1


def test_chunks_of_all_symbols_run_concurrently(frame):
    client = FakeClient(frame, latency=0.02)
    got, on_chunk = collect()
    backfill(client, ["AAA", "BBB", "CCC"], "2019-01-01", "2022-01-01", "1d", on_chunk)
    assert len(got) == 9 and client.max_open == 9  # all nine in flight at once, not one by one


def test_a_dropped_connection_resumes_at_the_interrupted_chunk(frame):
    client = FakeClient(frame, drop_on={3})
    got, on_chunk = collect()
    report = backfill(client, ["AAA", "BBB"], "2019-01-01", "2022-01-01", "1d", on_chunk)
    assert report.reconnects == 1 and client.connects == 2
    # call 3 (AAA 2021) failed and was asked again; nothing delivered twice, nothing else re-asked
    assert client.calls.count(("AAA", pd.Timestamp("2021-01-01", tz="UTC"))) == 2
    assert len(client.calls) == 7
    assert delivered(got) == [(s, y) for s in ("AAA", "BBB") for y in (2019, 2020, 2021)]


def test_a_drop_seen_by_many_requests_in_flight_is_one_reconnect(frame):
    class DropsAll(FakeClient):
        async def historical_chunk_async(self, symbol, chunk, interval, adjusted=False):
            if self.connects == 1:  # the first connection: every request in flight sees it drop
                await asyncio.sleep(0.01)
                if self.connects == 1:
                    self.connected = False
                raise IBConnectionLost("Socket disconnect")
            return await super().historical_chunk_async(symbol, chunk, interval, adjusted)

    client = DropsAll(frame)
    got, on_chunk = collect()
    report = backfill(client, ["AAA", "BBB"], "2019-01-01", "2022-01-01", "1d", on_chunk)
    assert report.reconnects == 1 and client.connects == 2
    assert delivered(got) == [(s, y) for s in ("AAA", "BBB") for y in (2019, 2020, 2021)]


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
    assert delivered(got) == [("AAA", 2019), ("AAA", 2021)]
    assert not report.complete


def test_ranges_without_data_are_delivered_empty(frame):
    client = FakeClient(frame)
    got, on_chunk = collect()
    report = backfill(client, ["AAA"], "2022-01-01", "2022-03-01", "1d", on_chunk)
    assert len(got) == 1 and got[0].bars.empty
    assert [c.start for _, c in report.no_data] == [pd.Timestamp("2022-01-01", tz="UTC")]


def test_jobs_carry_their_tag_to_the_delivered_chunks(frame):
    client = FakeClient(frame)
    got, on_chunk = collect()
    jobs = [BackfillJob("AAA", "2019-01-01", "2020-01-01", tag="first"), BackfillJob("aaa", "2021-01-01", "2021-02-01", tag=2)]
    report = client.run(backfill_async(client, jobs, "1d", on_chunk))
    assert sorted((c.job.tag, c.chunk.start.year) for c in got if isinstance(c.job.tag, str)) == [("first", 2019)]
    assert [c.job.tag for c in got if c.job.tag == 2] == [2]
    assert len(report.planned) == 2 and report.chunks_done == 2


def test_reconnects_are_bounded(frame):
    client = FakeClient(frame, drop_on=set(range(1, 100)))
    _, on_chunk = collect()
    with pytest.raises(IBConnectionLost, match="gave up after 3 reconnects") as info:
        backfill(client, ["AAA"], "2019-01-01", "2022-01-01", "1d", on_chunk, max_reconnects=3)
    assert isinstance(info.value.report, BackfillReport) and info.value.report.reconnects == 3


def test_pacing_escalation_stops_the_backfill_with_its_report(frame):
    class Escalating(FakeClient):
        async def historical_chunk_async(self, symbol, chunk, interval, adjusted=False):
            if chunk.start.year == 2020:
                await asyncio.sleep(0.01)  # 2019 is answered first
                raise PacingEscalation("6 consecutive pacing violations")
            if chunk.start.year == 2021:
                await asyncio.sleep(10)  # still open when the backfill stops: cancelled
            return await super().historical_chunk_async(symbol, chunk, interval, adjusted)

    got, on_chunk = collect()
    with pytest.raises(PacingEscalation) as info:
        backfill(Escalating(frame), ["AAA"], "2019-01-01", "2022-01-01", "1d", on_chunk)
    assert info.value.report.chunks_done == 1 and delivered(got) == [("AAA", 2019)]


def test_a_callback_is_required(frame):
    with pytest.raises(ValueError, match="on_chunk"):
        backfill(FakeClient(frame), ["AAA"], "2019-01-01", "2020-01-01")
