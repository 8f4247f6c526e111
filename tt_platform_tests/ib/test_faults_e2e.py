"""Backfills and connections through the emulator's faults: pacing storms, socket drops,
gateway restarts, connectivity loss, several clients."""

from __future__ import annotations

import asyncio
from collections import Counter

import pandas as pd
import pytest

from tt_platform.ib.backfill import CompletedChunk, backfill
from tt_platform.ib.client import ConnectRetry, IBClientIdInUse, IBMarketData
from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator import FaultPlan, FrameBarSource
from tt_platform.ib.pacing import BackoffPolicy, HistoricalPacer, PacingRules

pytestmark = pytest.mark.timeout(90)
STORM_SYMBOLS = [f"S{i:02d}" for i in range(8)]
STORM_START, STORM_END = "2021-03-01", "2021-03-03"  # two days of 30-second bars


def thirty_second_bars(symbols: list[str], start: str, end: str) -> pd.DataFrame:
    """Regular-hours 30 s bars (13:30-20:00 UTC) of ``symbols`` on the weekdays in [start, end)."""
    frames = []
    for day in pd.bdate_range(start, end, inclusive="left", tz="UTC"):
        stamps = pd.date_range(day + pd.Timedelta(hours=13.5), day + pd.Timedelta(hours=20), freq="30s", inclusive="left")
        for i, symbol in enumerate(symbols):
            close = 100.0 + i + (stamps.minute.to_numpy() % 7) * 0.01
            frames.append(
                pd.DataFrame(
                    {"symbol": symbol, "ts": stamps, "open": close, "high": close + 0.05, "low": close - 0.05,
                     "close": close, "volume": 100.0}
                )
            )
    return pd.concat(frames, ignore_index=True).sort_values(["symbol", "ts"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def storm_frame() -> pd.DataFrame:
    return thirty_second_bars(STORM_SYMBOLS, STORM_START, STORM_END)


def client_for(gateway, scale: float, client_id: int = 1, rules: PacingRules | None = None, **kw) -> IBMarketData:
    pacer = HistoricalPacer(
        ScaledClock(scale),
        rules or PacingRules(margin_seconds=30.0),
        BackoffPolicy(initial_seconds=30.0, factor=2.0, max_seconds=600.0),
        max_consecutive_violations=kw.pop("max_violations", 8),
    )
    kw.setdefault("retry", ConnectRetry(attempts=40, initial_seconds=0.02, max_seconds=0.2))
    return IBMarketData(
        "127.0.0.1", gateway.port, client_id, pacer=pacer, request_timeout=10.0, connect_timeout=3.0, **kw
    )


def run_backfill(client, symbols, start, end, interval="1d", **kw):
    chunks: list[CompletedChunk] = []
    report = backfill(client, symbols, start, end, interval, on_chunk=chunks.append, **kw)
    return report, chunks


def delivered(chunks: list[CompletedChunk]) -> pd.DataFrame:
    return pd.concat([c.bars for c in chunks], ignore_index=True).sort_values(["symbol", "ts"]).reset_index(drop=True)


def max_accepted_per_window(log, window: float = 600.0) -> int:
    times = sorted(r.at for r in log if r.outcome != "pacing")
    return max(sum(1 for u in times if t - window < u <= t) for t in times)


def test_pacing_storm_of_small_bars_still_ends_with_every_bar(start_gateway, storm_frame):
    """A client that ignores IB's small-bar rules gets 162s, backs off, retries, gets 100 %."""
    # 8 symbols x 2 days x 6 four-hour requests of 30 s bars = 96 requests: the 60-per-10-minutes
    # and 6-per-contract-in-2-s rules both bind; 10 simulated minutes pass in 3 real seconds
    scale = 200.0
    gateway = start_gateway(FrameBarSource({"30s": storm_frame}), scale=scale)
    client = client_for(gateway, scale, rules=PacingRules.unlimited(), max_violations=50)
    report, chunks = run_backfill(client, STORM_SYMBOLS, STORM_START, STORM_END, "30s")
    client.disconnect()
    log = gateway.emulator.history_log
    assert report.pacing_violations > 0 and any(r.outcome == "pacing" for r in log)
    assert report.complete and report.chunks_done == 8 * 2 * 6
    pd.testing.assert_frame_equal(delivered(chunks), storm_frame, check_dtype=False)
    assert max_accepted_per_window(log) <= 60  # the gateway enforced the rule throughout


def test_paced_small_bar_backfill_needs_no_retries(start_gateway, storm_frame):
    """Pacer and gateway apply the same rules: the pacer waits, the gateway never refuses.

    Tighter numbers than IB's (10 per simulated minute) keep this fast; at 100x the client's
    10 s margin is 100 ms of real scheduling jitter.
    """
    scale = 100.0
    rules = PacingRules(max_requests=10, window_seconds=60.0)
    gateway = start_gateway(FrameBarSource({"30s": storm_frame}), scale=scale, faults=FaultPlan(pacing_rules=rules))
    symbols = STORM_SYMBOLS[:3]
    client = client_for(gateway, scale, rules=PacingRules(max_requests=10, window_seconds=60.0, margin_seconds=10.0))
    report, chunks = run_backfill(client, symbols, STORM_START, STORM_END, "30s")
    client.disconnect()
    assert report.complete and report.requests == 36
    assert report.pacing_violations == 0
    log = gateway.emulator.history_log
    assert client.pacer.stats.waited_seconds > 0
    assert log[-1].at - log[0].at >= 3 * 60.0  # 36 requests at 10 per window span three windows
    assert max_accepted_per_window(log, window=60.0) <= 10
    assert len(delivered(chunks)) == len(storm_frame[storm_frame.symbol.isin(symbols)])


def test_socket_drop_mid_answer_resumes_where_it_stopped(start_gateway, daily_source, daily_frame):
    gateway = start_gateway(daily_source, scale=200.0, faults=FaultPlan(drop_mid_historical={4}))
    client = client_for(gateway, 200.0, years_per_request=1)  # six requests, all in flight at once
    report, chunks = run_backfill(client, ["AAA", "BBB"], "2019-01-01", "2022-01-01")
    client.disconnect()
    assert report.reconnects == 1 and report.complete
    assert sorted((c.symbol, c.chunk.start.year) for c in chunks) == [
        (s, y) for s in ("AAA", "BBB") for y in (2019, 2020, 2021)
    ]
    pd.testing.assert_frame_equal(
        delivered(chunks), daily_frame[daily_frame.symbol.isin(["AAA", "BBB"])].reset_index(drop=True)
    )
    log = gateway.emulator.history_log
    outcomes = [r.outcome for r in log]
    assert outcomes.count("dropped") == 1
    cut = outcomes.index("dropped")
    asked = Counter((r.symbol, r.end) for r in log)
    # the cut answer was asked again; what was answered before the cut never was
    assert asked[(log[cut].symbol, log[cut].end)] == 2
    assert all(asked[(r.symbol, r.end)] == 1 for r in log[:cut] if r.outcome == "ok")
    assert outcomes.count("ok") == 6


def test_socket_drop_after_n_messages(start_gateway, daily_source):
    gateway = start_gateway(daily_source, scale=200.0, faults=FaultPlan(drop_after_messages=45))
    client = client_for(gateway, 200.0, years_per_request=1)
    report, chunks = run_backfill(client, ["AAA", "BBB", "CCC"], "2019-01-01", "2022-01-01")
    client.disconnect()
    assert gateway.emulator.stats.drops == 1
    assert client.connections == 2  # connected again after the drop
    assert report.complete and len(chunks) == 9


def test_gateway_restart_during_backfill(start_gateway, daily_source, daily_frame):
    # AAA is answered at once, BBB slowly: the restart after the first answer catches BBB's
    # requests open; they are asked again after the reconnect
    faults = FaultPlan(
        restart_after_historical=1, restart_down_seconds=40.0, historical_delay_by_symbol={"BBB": 20.0}
    )  # 0.2 s and 0.1 s real
    gateway = start_gateway(daily_source, scale=200.0, faults=faults)
    client = client_for(gateway, 200.0, years_per_request=1)
    report, chunks = run_backfill(client, ["AAA", "BBB"], "2019-01-01", "2022-01-01")
    client.disconnect()
    assert gateway.emulator.stats.restarts == 1
    assert report.reconnects >= 1 and client.connect_attempts > client.connections  # refused while down
    assert report.complete
    pd.testing.assert_frame_equal(
        delivered(chunks), daily_frame[daily_frame.symbol.isin(["AAA", "BBB"])].reset_index(drop=True)
    )


def test_connectivity_lost_and_restored(start_gateway, daily_source):
    gateway = start_gateway(daily_source, scale=100.0)
    client = client_for(gateway, 100.0).connect()
    emulator = gateway.emulator

    async def blip():
        await emulator.connectivity_lost()
        await asyncio.sleep(0.3)
        await emulator.connectivity_restored()

    gateway.submit(blip())
    # the request is held while IB is disconnected from its servers, then answered
    result = client.historical_bars("AAA", "2021-01-01", "2021-02-01")
    assert [e.code for e in client.connectivity_events] == [1100, 1102]
    assert client.is_connected() and not result.refused and len(result.bars) == 19
    client.disconnect()


def test_two_clients_at_once_and_a_duplicate_client_id(start_gateway, daily_source, daily_frame):
    gateway = start_gateway(daily_source, scale=200.0)
    first = client_for(gateway, 200.0, client_id=1).connect()
    second = client_for(gateway, 200.0, client_id=2).connect()
    assert sorted(gateway.emulator.sessions) == [1, 2]

    async def both():
        return await asyncio.gather(
            first.historical_bars_async("AAA", "2020-01-01", "2021-01-01"),
            second.historical_bars_async("BBB", "2020-01-01", "2021-01-01"),
        )

    a, b = asyncio.get_event_loop().run_until_complete(both())
    assert len(a.bars) == len(b.bars) == 253 and set(a.bars.symbol) == {"AAA"} and set(b.bars.symbol) == {"BBB"}

    duplicate = client_for(gateway, 200.0, client_id=1)
    with pytest.raises(IBClientIdInUse, match="refused client id 1"):
        duplicate.connect()
    assert duplicate.connect_attempts == 1  # not retried: a taken id stays taken
    assert gateway.emulator.stats.rejected_client_ids == 1
    assert first.is_connected() and len(first.historical_bars("CCC", "2021-01-01", "2021-02-01").bars) == 19
    first.disconnect()
    second.disconnect()


def test_connect_gives_up_with_a_clear_error(start_gateway, daily_source):
    gateway = start_gateway(daily_source)
    port = gateway.port
    gateway.stop()
    client = IBMarketData("127.0.0.1", port, 1, retry=ConnectRetry(attempts=3, initial_seconds=0.01, max_seconds=0.02))
    with pytest.raises(ConnectionError, match=f"cannot connect to IB at 127.0.0.1:{port} as client 1 after 3 attempts"):
        client.connect()
    assert client.connect_attempts == 3
