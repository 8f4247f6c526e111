"""IB's rules by bar size, end to end: the emulator enforces them, the client keeps to them.

Small-bar rules (30 s bars or less) against larger bars, the cap of 50 simultaneous open
historical requests (any bar size), back-off after a 162 whatever the bar size, and window
edges read either way.
"""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest
from ib_insync import IB, Stock

from tt_platform.ib.backfill import CompletedChunk, backfill
from tt_platform.ib.client import ConnectRetry, IBMarketData
from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator import FaultPlan, SyntheticBarSource
from tt_platform.ib.pacing import BackoffPolicy, HistoricalPacer, PacingRules

pytestmark = pytest.mark.timeout(90)


def raw_client(gateway, client_id: int = 9) -> tuple[IB, list[tuple[int, int, str]]]:
    """Plain ib_insync, sending as fast as the socket takes it (no throttle, no pacer)."""
    ib = IB()
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, message, contract: errors.append((req_id, code, message))
    ib.connect("127.0.0.1", gateway.port, clientId=client_id, timeout=5)
    ib.client.MaxRequests = 0
    return ib, errors


def ask_all(ib: IB, requests: list[tuple[str, str, str, str]], keep_up: bool = False) -> list:
    """Send every (symbol, end, duration, bar size) request at once; their answers in order."""

    async def gather():
        return await asyncio.gather(
            *(
                ib.reqHistoricalDataAsync(Stock(s, "SMART", "USD"), end, duration, bar, "TRADES", False, 2, keep_up)
                for s, end, duration, bar in requests
            )
        )

    return ib.run(gather())


def client_for(gateway, scale: float, client_id: int = 1, rules: PacingRules | None = None, **kw) -> IBMarketData:
    pacer = HistoricalPacer(
        ScaledClock(scale),
        rules or PacingRules(margin_seconds=5.0),
        BackoffPolicy(initial_seconds=30.0, factor=2.0, max_seconds=600.0),
        max_consecutive_violations=kw.pop("max_violations", 8),
        max_open_requests=kw.pop("max_open_requests", 50),
    )
    kw.setdefault("retry", ConnectRetry(attempts=10, initial_seconds=0.02, max_seconds=0.2))
    return IBMarketData("127.0.0.1", gateway.port, client_id, pacer=pacer, request_timeout=20.0, **kw)


def collect(client, symbols, start, end, interval="1d", **kw):
    chunks: list[CompletedChunk] = []
    report = backfill(client, symbols, start, end, interval, on_chunk=chunks.append, **kw)
    client.disconnect()
    frame = pd.concat([c.bars for c in chunks], ignore_index=True) if chunks else pd.DataFrame()
    if len(frame):
        frame = frame.sort_values(["symbol", "ts"]).reset_index(drop=True)
    return report, chunks, frame


# the emulator -----------------------------------------------------------------------------------


def test_the_emulator_applies_small_bar_rules_to_30_second_bars_only(start_gateway):
    # real-time clock: requests sent within milliseconds are well inside IB's 2 s and 15 s windows
    source = SyntheticBarSource(None, seed=1, last_session="2021-12-31")  # (no 30 s bars: "no data")
    gateway = start_gateway(source, scale=1.0)
    ib, errors = raw_client(gateway)
    weekdays = [13, 14, 15, 16, 17, 20, 21]
    try:
        ask_all(ib, [("AAA", f"202112{d} 20:00:00 UTC", "1800 S", "30 secs") for d in weekdays])
        ask_all(ib, [("BBB", f"202112{d} 20:00:00 UTC", "1 D", "1 min") for d in weekdays])
        ask_all(ib, [("CCC", "20211217 20:00:00 UTC", "1800 S", "30 secs")] * 2)
        ask_all(ib, [("DDD", "20211217 00:00:00 UTC", "5 D", "1 day")] * 2)
    finally:
        ib.disconnect()
    by_symbol: dict[str, list[str]] = {}
    for r in gateway.emulator.history_log:
        by_symbol.setdefault(r.symbol, []).append(r.outcome)
    # the 7th request for one contract within 2 s: error 162 for 30 s bars, fine for 1 min bars
    assert by_symbol["AAA"] == ["no_data"] * 6 + ["pacing"]
    assert by_symbol["BBB"] == ["ok"] * 7
    # an identical request within 15 s: error 162 for 30 s bars, fine for daily bars
    assert by_symbol["CCC"] == ["no_data", "pacing"]
    assert by_symbol["DDD"] == ["ok", "ok"]
    pacing = sorted(m.split("(")[-1] for _, code, m in errors if code == 162 and "pacing violation" in m)
    assert pacing == ["identical request within 15 s)", "more than 6 requests for %s/SMART/TRADES within 2 s)" % (
        gateway.emulator.contracts.lookup("AAA").con_id
    )]


def test_the_emulator_refuses_a_51st_simultaneous_request_with_error_322(start_gateway):
    source = SyntheticBarSource(None, seed=1, last_session="2021-12-31")
    slow = {f"S{i:02d}": 300.0 for i in range(50)}  # open for 3 s (S50 is answered at once)
    gateway = start_gateway(source, scale=100.0, faults=FaultPlan(historical_delay_by_symbol=slow))
    ib, errors = raw_client(gateway)
    try:
        answers = ask_all(ib, [(f"S{i:02d}", "20211231 00:00:00 UTC", "5 D", "1 day") for i in range(51)])
        later = ask_all(ib, [("S50", "20211231 00:00:00 UTC", "5 D", "1 day")])  # once the others closed
    finally:
        ib.disconnect()
    stats = gateway.emulator.stats
    assert stats.max_open_historical == 50 and stats.refused_open_limit == 1
    assert sum(1 for a in answers if len(a)) == 50 and len(answers[50]) == 0
    refused = [(code, m) for _, code, m in errors if code == 322]
    assert refused == [(322, "Error processing request:Only 50 simultaneous API historical data requests allowed.")]
    assert len(later[0]) > 0


def test_keep_up_to_date_requests_stay_open_until_cancelled(start_gateway):
    source = SyntheticBarSource(["AAA", "BBB", "CCC"], seed=1)
    gateway = start_gateway(source, faults=FaultPlan(max_open_historical=2))
    ib, errors = raw_client(gateway)
    try:
        streams = ask_all(ib, [("AAA", "", "5 D", "1 day"), ("BBB", "", "5 D", "1 day")], keep_up=True)
        assert all(len(s) for s in streams)
        (third,) = ask_all(ib, [("CCC", "", "5 D", "1 day")])
        assert len(third) == 0 and [code for _, code, _ in errors if code < 2100] == [322]
        ib.cancelHistoricalData(streams[0])
        ib.sleep(0.1)
        (again,) = ask_all(ib, [("CCC", "", "5 D", "1 day")])
        assert len(again) > 0
    finally:
        ib.disconnect()


# the client ---------------------------------------------------------------------------------------


def test_requests_run_concurrently_and_never_exceed_the_cap(start_gateway):
    """120 symbols: many requests open at once at the gateway, never more than 50, no 322."""
    source = SyntheticBarSource(None, seed=2, last_session="2021-12-31")
    # each answer takes 0.5 s while ib_insync sends up to 45 messages/s: about 20 open at once
    gateway = start_gateway(source, scale=1.0, faults=FaultPlan(historical_delay_seconds=0.5))
    client = client_for(gateway, 1.0)
    symbols = [f"S{i:03d}" for i in range(120)]
    report, chunks, frame = collect(client, symbols, "2021-12-01", "2022-01-01")
    stats = gateway.emulator.stats
    assert report.complete and report.chunks_done == 120 and set(frame.symbol) == set(symbols)
    assert 1 < stats.max_open_historical <= 50 and stats.refused_open_limit == 0
    assert 1 < client.pacer.stats.max_open <= 50


def test_the_cap_binds_when_answers_are_slow(start_gateway):
    source = SyntheticBarSource(None, seed=2, last_session="2021-12-31")
    gateway = start_gateway(source, scale=100.0, faults=FaultPlan(historical_delay_seconds=50.0))
    client = client_for(gateway, 100.0, max_open_requests=4)
    report, _, _ = collect(client, [f"S{i:02d}" for i in range(20)], "2021-12-01", "2022-01-01")
    assert report.chunks_done == 20 and gateway.emulator.stats.max_open_historical == 4


def test_daily_bars_are_not_held_by_the_small_bar_rules(start_gateway, daily_source, daily_frame):
    """Daily requests go out together: no pacing wait, no refusal, though the gateway enforces."""
    gateway = start_gateway(daily_source, scale=50.0)
    client = client_for(gateway, 50.0)
    report, chunks, frame = collect(client, ["AAA", "BBB", "CCC"], "2019-01-01", "2022-01-01", chunk_unit="month")
    assert report.complete and report.requests == 108 and report.pacing_violations == 0
    assert client.pacer.stats.waited_seconds == 0.0
    # 108 requests, 36 per contract, accepted within one 10-minute window: the small-bar rules
    # would have refused the 61st (and the 7th per contract within 2 s)
    log = gateway.emulator.history_log
    assert all(r.outcome == "ok" for r in log)
    assert sum(1 for r in log if r.at - log[0].at < 600.0) > 60
    pd.testing.assert_frame_equal(frame, daily_frame)


def test_a_162_on_daily_bars_still_backs_off_and_ends_complete(start_gateway, daily_source, daily_frame):
    # a gateway stricter than IB (refuses daily bars beyond 4 a minute): the client, which has no
    # reason to pace daily bars, must back off on the 162s and still get every bar
    strict = PacingRules.every_bar_size(max_requests=4, window_seconds=60.0)
    gateway = start_gateway(daily_source, scale=200.0, faults=FaultPlan(pacing_rules=strict))
    client = client_for(gateway, 200.0, years_per_request=1)
    report, chunks, frame = collect(client, ["AAA", "BBB", "CCC"], "2019-01-01", "2022-01-01")
    assert report.complete and report.chunks_done == 9 and report.pacing_violations > 0
    pd.testing.assert_frame_equal(frame, daily_frame)
    log = gateway.emulator.history_log
    first_refusal = min(r.at for r in log if r.outcome == "pacing")
    # the nine requests went out together; every retry waited out the 30 s back-off that the
    # first refusal started (less scheduling slack), instead of hammering the gateway
    retries = log[9:]
    assert retries and min(r.at for r in retries) - first_refusal >= 25.0
    assert report.pacing_violations <= 15 and client.pacer.stats.backoff_seconds >= 30.0


# window edges -------------------------------------------------------------------------------------


@pytest.mark.parametrize("reading", ["inclusive_start", "exclusive_start"])
def test_padded_windows_lose_no_session_whichever_way_ib_reads_them(start_gateway, daily_source, daily_frame, reading):
    gateway = start_gateway(daily_source, scale=200.0, window_reading=reading)
    client = client_for(gateway, 200.0)
    report, chunks, frame = collect(client, ["AAA", "BBB"], "2019-01-01", "2022-01-01", chunk_unit="month")
    assert report.complete and len(chunks) == 2 * 36
    # every session exactly once: no loss at a chunk border, no duplicate from the overlap
    pd.testing.assert_frame_equal(frame, daily_frame[daily_frame.symbol.isin(["AAA", "BBB"])].reset_index(drop=True))
    for c in chunks:
        assert c.bars.empty or (c.bars.ts.min() >= c.chunk.start and c.bars.ts.max() < c.chunk.end)


def test_without_padding_an_exclusive_start_gateway_drops_the_first_session_of_each_window(
    start_gateway, daily_source, daily_frame
):
    gateway = start_gateway(daily_source, scale=200.0, window_reading="exclusive_start")
    client = client_for(gateway, 200.0, pad_windows=False)
    report, chunks, frame = collect(client, ["AAA"], "2019-01-01", "2022-01-01", chunk_unit="month")
    expected = daily_frame[daily_frame.symbol == "AAA"]
    missing = set(expected.ts) - set(frame.ts)
    starts = {c.chunk.start for c in chunks}
    assert missing == starts & set(expected.ts)  # exactly the sessions that open a window
    assert len(missing) >= 20
