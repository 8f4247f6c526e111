"""IB faults during a real ingest: ``tt ingest --source ib`` (a Dagster run of watchlist and bars
over every month of the range) against the gateway emulator, through pacing storms, socket drops,
gateway restarts and 1100/1101/1102 sequences.

After each: the stored bars are exactly a clean run's (0 bars lost, none extra, no value
different), no key is stored twice, no month holds part of its bars, and the run ended SUCCESS
with nothing left open in the Dagster instance. A pacing storm may make the client give up
instead of hammering IB: that run must fail saying so, having stored whole days of the clean
run's bars only, and the run after the storm completes them.
"""

from __future__ import annotations

import functools
import os

import pytest

from tt_platform.data.sources.ib import IBSourceConfig
from tt_platform.data.synthetic import generate_bars
from tt_platform.defs.market_data.resources import BarSourceResource
from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator import FaultPlan, FrameBarSource, GatewayEmulator, serve_in_thread
from tt_platform.ib.emulator.sources import SyntheticBarSource
from tt_platform.ib.pacing import PacingRules
from tt_platform.store.schema import prices
from tt_platform_tests.cli.test_concurrent_runs import _forget_bars
from tt_platform_tests.cli.test_tt_runs import dagster_home  # noqa: F401 - fixture
from tt_platform_tests.faults.gateway_faults import OnProgress, connectivity_blip, drop_every_client
from tt_platform_tests.faults.store_invariants import (
    assert_clean_run_rows,
    assert_part_of_clean_run,
    bars_lost,
    clean_run,
    duplicate_keys,
    partial_months,
)
from tt_platform_tests.faults.tt_runs import assert_no_run_left_open, instance_runs, run_yaml, stored_bars, tt_here

# one backend is enough here: the faults are IB's, the store only has to end up right; a backfill
# that hangs after a fault fails here, with its stacks, instead of at the suite's time limit
pytestmark = [pytest.mark.parametrize("store_backend", ["embedded"], indirect=True), pytest.mark.timeout(240)]

SCALE = 200.0  # emulator and client clocks: 10 simulated minutes of pacing pass in 3 real seconds
SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG", "HHH", "III", "JJJ"]
# each symbol's answers come 0.1 s (real) after the previous symbol's: a fault after an answer
# finds the other symbols' requests in flight, and each fault has new answers to wait for
STAGGERED = {symbol: 20.0 * (i + 1) for i, symbol in enumerate(SYMBOLS)}
SEED = 5
DAILY = ("2019-01-02", "2021-12-31")
MINUTES = ("2021-03-01", "2021-03-31")  # a month partition of 1-minute bars: a request per symbol and day
MINUTE_SYMBOLS = SYMBOLS[:3]  # 69 requests: more than IB lets be open at once
STORM = "IB pacing storm (error 162)"


def _fast_ib_config(self, settings) -> IBSourceConfig:
    """The platform's IB settings on the emulator's scaled clock, with a request per year of
    daily bars (more requests in flight to fault) and quick reconnect attempts."""
    return IBSourceConfig(
        host=settings.ib_host, port=settings.ib_port, client_id=settings.ib_client_id,
        client_id_locks=str(settings.home / "locks"), max_open_requests=self.max_open_requests,
        time_scale=SCALE, years_per_request=1, request_timeout=30.0,
        connect_attempts=20, connect_backoff_seconds=0.05, connect_backoff_max_seconds=0.5,
    )


@pytest.fixture
def ib_ingest(dagster_home, tmp_path, monkeypatch):  # noqa: F811
    """ingest(emulator, interval, faults=[(more, make_fault), ...]) runs ``tt ingest --source ib``
    against ``emulator`` in this process, with ``OnProgress`` firing the faults, and returns the
    stored bars and the number of faults that fired. The run must end SUCCESS (``may_fail``:
    SUCCESS or FAILURE, and tt's output is returned too), with nothing left open."""
    monkeypatch.setattr(BarSourceResource, "ib_config", _fast_ib_config)

    def ingest(emulator: GatewayEmulator, interval: str, *, faults: list | None = None, may_fail: bool = False) -> tuple:
        (first, last), symbols = (DAILY, SYMBOLS) if interval == "1d" else (MINUTES, MINUTE_SYMBOLS)
        config = run_yaml(tmp_path, f"ib-{interval}", symbols, first, last, source="ib", interval=interval, seed=SEED)
        with serve_in_thread(emulator) as gateway:
            monkeypatch.setenv("IB_HOST", "127.0.0.1")
            monkeypatch.setenv("IB_PORT", str(gateway.port))
            with OnProgress(gateway, faults or []) as faulting:
                code, output = tt_here("ingest", "--config", str(config))
        status = instance_runs()[-1].status.value
        assert_no_run_left_open()
        if not may_fail:
            assert code == 0 and status == "SUCCESS", output[-3000:]
        assert (code, status) in ((0, "SUCCESS"), (1, "FAILURE")), (code, status, output[-3000:])
        rows = stored_bars(_store_url(), symbols, interval)
        return (rows, faulting.fired, output) if may_fail else (rows, faulting.fired)

    return ingest


def _store_url() -> str:
    return os.environ["TT_DB_URL"]  # the test's store schema, set by dagster_home


@functools.cache
def _minute_source() -> FrameBarSource:
    """Synthetic minute bars held in memory (generating them per request would take the
    emulator's loop 0.7 s a day), with the daily bars that tell IB's first date."""
    minutes = generate_bars(MINUTE_SYMBOLS, *MINUTES, interval="1min", seed=SEED)
    days = generate_bars(MINUTE_SYMBOLS, "2019-01-02", MINUTES[1], interval="1d", seed=SEED)
    return FrameBarSource({"1min": minutes, "1d": days})


def _emulator(faults: FaultPlan | None = None, interval: str = "1d") -> GatewayEmulator:
    source = SyntheticBarSource(SYMBOLS, seed=SEED) if interval == "1d" else _minute_source()
    return GatewayEmulator(source, clock=ScaledClock(SCALE), faults=faults)


def _clean(ib_ingest, interval: str):
    """The clean run's bars (computed once per interval), with the store emptied afterwards."""
    def produce():
        rows, _ = ib_ingest(_emulator(interval=interval), interval)
        return rows

    rows = clean_run(("ib", interval, SEED), produce)
    _forget_bars(_store_url())
    return rows


def _check_against_clean(fault_ledger, kind: str, stored, clean) -> None:
    lost = bars_lost(stored, clean)
    assert lost == 0, f"{lost} bars lost"
    assert duplicate_keys(_store_url(), prices) == 0
    assert partial_months(stored, clean) == []
    assert_clean_run_rows(stored, clean)
    fault_ledger.measured(kind, "bars compared with the clean run", len(clean))
    fault_ledger.checked(kind, "0 bars lost", "no duplicate rows", "no half-written month", "rows = clean run",
                         "Dagster run SUCCESS, none left open")


def test_socket_drops_mid_answer_lose_no_bar(ib_ingest, fault_ledger):
    clean = _clean(ib_ingest, "1d")
    # the first answer is cut in the middle of its frame; then, after each answer that follows,
    # every client's socket is cut with the other requests in flight
    emulator = _emulator(FaultPlan(drop_mid_historical={1}, historical_delay_by_symbol=STAGGERED))
    stored, fired = ib_ingest(emulator, "1d", faults=[(1, drop_every_client)] * 4)
    drops = emulator.stats.drops + fired
    fault_ledger.injected("IB socket drop (backfill)", drops)
    assert [r.outcome for r in emulator.history_log].count("dropped") == 1 and fired == 4
    assert emulator.stats.connections == 6  # one connection, and one more after each drop
    _check_against_clean(fault_ledger, "IB socket drop (backfill)", stored, clean)


def test_gateway_restarts_mid_backfill_lose_no_bar(ib_ingest, fault_ledger):
    clean = _clean(ib_ingest, "1d")
    # after an answer, with the others in flight, IB goes down for 60 s (0.3 s real), three times
    emulator = _emulator(FaultPlan(historical_delay_by_symbol=STAGGERED))
    restart = [(1, lambda em: em.restart(down_seconds=60.0))] * 3
    stored, fired = ib_ingest(emulator, "1d", faults=restart)
    restarts = emulator.stats.restarts
    fault_ledger.injected("IB gateway restart (backfill)", restarts)
    assert fired == restarts == 3
    _check_against_clean(fault_ledger, "IB gateway restart (backfill)", stored, clean)


def test_connectivity_1100_1101_1102_during_backfill_lose_no_bar(ib_ingest, fault_ledger):
    clean = _clean(ib_ingest, "1d")
    # IB loses its own connection for 30 s (0.15 s real) with requests in flight, three times
    emulator = _emulator(FaultPlan(historical_delay_by_symbol=STAGGERED))
    blips = [
        (1, lambda em: connectivity_blip(em, 30.0)),  # 1100 then 1102: data maintained
        (1, lambda em: connectivity_blip(em, 30.0, data_lost=True)),  # 1100 then 1101: data lost
        (1, lambda em: connectivity_blip(em, 30.0)),
    ]
    stored, fired = ib_ingest(emulator, "1d", faults=blips)
    fault_ledger.injected("IB 1100/1101/1102 (backfill)", fired)
    assert fired == 3
    _check_against_clean(fault_ledger, "IB 1100/1101/1102 (backfill)", stored, clean)


def test_pacing_storm_on_minute_bars_loses_no_bar(ib_ingest, fault_ledger):
    clean = _clean(ib_ingest, "1min")
    # the gateway paces 1-minute bars as IB paces 30-second ones, with a tighter window (as when
    # another client on the account spends the budget): the client does not expect it and fires
    # its requests at once; most are refused with 162, round after round
    rules = PacingRules(small_bar_seconds=60, max_requests=8, window_seconds=60.0)
    emulator = _emulator(FaultPlan(pacing_rules=rules), interval="1min")
    stored, _, output = ib_ingest(emulator, "1min", may_fail=True)
    refused = [r.outcome for r in emulator.history_log].count("pacing")
    fault_ledger.injected(STORM, refused)
    assert refused >= 10
    stopped = instance_runs()[-1].status.value == "FAILURE"
    fault_ledger.measured(STORM, "storm runs stopped by the client's pacing escalation", float(stopped))
    if stopped:  # the client gave up instead of hammering IB: it must say so, and keep whole days
        assert "consecutive pacing violations" in output.strip().splitlines()[-1], output[-2000:]
        fault_ledger.checked(STORM, "a stopped run says why")
    assert_part_of_clean_run(stored, clean)
    assert duplicate_keys(_store_url(), prices) == 0
    fault_ledger.checked(STORM, "storm run stored whole days of the clean run only")
    # the storm is over: the same bars, IB's own rules; the run fetches whatever is missing
    stored, _ = ib_ingest(_emulator(interval="1min"), "1min")
    _check_against_clean(fault_ledger, STORM, stored, clean)
