"""Soak: the trading loop for 10,000 one-minute bars against the gateway emulator on a scaled
clock, under seeded random faults (dropped sockets, gateway restarts, 1100/1102 pairs, job
restarts warming up through slow historical answers). No step may end the session, memory must
stay flat, and every order must be accounted for, in the tables and (live mode) at the broker."""

from __future__ import annotations

import logging
import time

import pytest

from tt_platform.live.session import SessionHooks
from tt_platform_tests.faults.soak_books import (
    SessionTables,
    check_book_replays,
    check_broker_agrees,
    check_fills_match_orders,
    check_orders_terminal,
    check_steps,
)
from tt_platform_tests.faults.soak_faults import (
    CONNECTIVITY_BLIP,
    GATEWAY_RESTART,
    SOCKET_DROP,
    FaultPace,
    RandomGatewayFaults,
)
from tt_platform_tests.faults.soak_gateway import GatewayProcess
from tt_platform_tests.faults.soak_memory import RssSamples
from tt_platform_tests.faults.soak_session import CAPITAL, build_leg, run_leg
from tt_platform_tests.live.policy_factory import train_tiny_policy

SEED = 20240311
# a minute bar per 5 s of the emulator's clock: at 300x the replay releases bars faster than the
# paper loop decides, so it runs as fast as it can; live mode waits for IB's answers and gets a
# slower market, so that its last faults are behind it before a leg ends
PAPER_CLOCK_SCALE = 300.0
LIVE_CLOCK_SCALE = 100.0
PAPER_LEGS = (4000, 3000, 3000)  # runs of the job; each later one restarts the session
LIVE_LEGS = (600, 600)
QUIET_BARS = {"paper": 50, "live": 150}  # no fault in a leg's last bars: the stop must see it through
SLOW_ANSWER_SECONDS = 240.0  # the warm start's history, at each job restart (emulator clock)
RSS_EVERY = 50  # bars between RSS samples
RSS_WARM_UP = 2000  # bars before the slope is taken
MAX_RSS_SLOPE_MIB = 2.0  # per 1,000 bars
WALL_LIMIT_SECONDS = 1500.0


class Soak:
    """One soak: the legs of one session against one gateway process, faults from the decision
    hook, RSS every ``RSS_EVERY`` bars."""

    def __init__(self, engine, folder, gateway: GatewayProcess, policy_id: str, *, mode: str, session_id: str,
                 seed: int, pace: FaultPace) -> None:
        self.engine, self.folder, self.gateway, self.policy_id = engine, folder, gateway, policy_id
        self.mode, self.session_id = mode, session_id
        self.faults = RandomGatewayFaults(gateway, seed, pace)
        self.memory = RssSamples(every=RSS_EVERY)
        self.results = []
        self.slow_answers = 0
        self.started = time.monotonic()

    def _stop_reason(self) -> str | None:
        if time.monotonic() - self.started > WALL_LIMIT_SECONDS:
            return f"soak wall-clock limit ({WALL_LIMIT_SECONDS:g} s) passed"
        return None

    def _on_decision(self, info: dict) -> None:
        self.memory.maybe_sample(info["step"])
        self.faults.on_decision(info["step"])

    def run(self, legs: tuple[int, ...]) -> None:
        hooks = SessionHooks(decision=self._on_decision, stop_reason=self._stop_reason)
        first_step = 0
        for number, decisions in enumerate(legs):
            self.faults.quiet_from = first_step + decisions - QUIET_BARS[self.mode]
            if number:  # the job restarts: its warm start asks the gateway for history, slowly
                self.gateway.ask("slow", delay=SLOW_ANSWER_SECONDS)
            session = build_leg(self.engine, self.folder, self.policy_id, self.gateway.port, mode=self.mode,
                                session_id=self.session_id, run_id=f"{self.session_id}-{number}",
                                max_decisions=decisions, hooks=hooks)
            self.faults.connected = session.trading.is_connected
            result = run_leg(session)
            if number:
                self.slow_answers += self.gateway.ask("slow", delay=0.0)
            self.results.append(result)
            assert result.status == "stopped" and result.reason.startswith("reached max_decisions"), result
            first_step += result.decisions
            self.faults.settle()

    @property
    def decisions(self) -> int:
        return sum(r.decisions for r in self.results)

    @property
    def step_errors(self) -> int:
        return sum(r.errors for r in self.results)

    @property
    def reconnects(self) -> int:
        return sum(r.reconnects for r in self.results)

    def record(self, ledger, label: str, invariants: tuple[str, ...]) -> None:
        kinds = {SOCKET_DROP: "IB socket drop", GATEWAY_RESTART: "IB gateway restart",
                 CONNECTIVITY_BLIP: "IB 1100/1102 pair"}
        for kind, name in kinds.items():
            ledger.injected(f"{name} ({label})", self.faults.fired[kind])
            ledger.checked(f"{name} ({label})", *invariants)
        ledger.injected(f"job restart ({label})", len(self.results) - 1)
        ledger.checked(f"job restart ({label})", "book, steps and refs resumed", *invariants)
        ledger.injected(f"slow historical answers ({label})", self.slow_answers)
        ledger.checked(f"slow historical answers ({label})", "warm start completed", *invariants)


def _check_faults(soak: Soak, at_least_each: int) -> None:
    assert not soak.faults.failed, soak.faults.failed
    for kind in (SOCKET_DROP, GATEWAY_RESTART, CONNECTIVITY_BLIP):
        assert soak.faults.fired[kind] >= at_least_each, f"{kind}: fired {soak.faults.fired[kind]} times"
    # a fault goes only to a connected session, so each one after the first found it reconnected
    assert soak.reconnects >= 1
    assert soak.slow_answers >= len(soak.results) - 1, "each restart's warm start asked for history"


@pytest.mark.timeout(WALL_LIMIT_SECONDS + 300)
@pytest.mark.parametrize("store_backend", ["embedded"], indirect=True)
def test_paper_loop_soaks_10000_bars_under_random_faults(store_engine, tmp_path, fault_ledger, caplog):
    caplog.set_level(logging.ERROR, logger="tt_platform.live.session")
    policy = train_tiny_policy(store_engine, tmp_path / "policies")
    gateway = GatewayProcess(sum(PAPER_LEGS), PAPER_CLOCK_SCALE, tmp_path / "gateway.log")
    try:
        soak = Soak(store_engine, tmp_path, gateway, policy.policy_id, mode="paper", session_id="paper-soak", seed=SEED,
                    pace=FaultPace())
        soak.run(PAPER_LEGS)
    finally:
        gateway.stop()
    wall = time.monotonic() - soak.started

    assert soak.decisions >= sum(PAPER_LEGS)
    step_failures = [r.getMessage() for r in caplog.records if "step failed" in r.getMessage()]
    assert soak.step_errors == len(step_failures)
    assert soak.step_errors == 0, step_failures[:3]
    _check_faults(soak, at_least_each=3)
    slope = soak.memory.slope_mib_per_1000(after_bar=RSS_WARM_UP)
    assert slope < MAX_RSS_SLOPE_MIB, f"RSS grows {slope:.2f} MiB per 1,000 bars ({soak.memory.describe()})"

    tables = SessionTables.read(store_engine, "paper-soak")
    check_steps(tables, at_least=sum(PAPER_LEGS))
    check_orders_terminal(tables)
    check_fills_match_orders(tables)
    check_book_replays(tables, CAPITAL)

    soak.record(fault_ledger, "paper soak", ("session stopped cleanly", "0 step errors", "every order terminal",
                                             "fills = orders' filled quantities", "fills replay to cash and holdings",
                                             f"RSS slope < {MAX_RSS_SLOPE_MIB:g} MiB/1000 bars"))
    fault_ledger.checked("soak", "10,000 bars without an unhandled exception", "memory flat", "every order accounted for")
    fault_ledger.measured("soak", "bars", soak.decisions)
    fault_ledger.measured("soak", "RSS slope MiB per 1000 bars", round(slope, 3))
    fault_ledger.measured("soak", "step errors", soak.step_errors)
    fault_ledger.measured("soak", "wall seconds", round(wall, 1))
    fault_ledger.measured("soak", "orders", len(tables.orders))


@pytest.mark.parametrize("store_backend", ["embedded"], indirect=True)
def test_live_loop_soak_agrees_with_the_broker_under_random_faults(store_engine, tmp_path, fault_ledger, caplog):
    caplog.set_level(logging.ERROR, logger="tt_platform.live.session")
    policy = train_tiny_policy(store_engine, tmp_path / "policies")
    gateway = GatewayProcess(sum(LIVE_LEGS), LIVE_CLOCK_SCALE, tmp_path / "gateway.log")
    try:
        soak = Soak(store_engine, tmp_path, gateway, policy.policy_id, mode="live", session_id="live-soak",
                    seed=SEED + 1, pace=FaultPace(gap=(60, 140)))
        soak.run(LIVE_LEGS)
        broker = gateway.broker()
    finally:
        gateway.stop()

    assert soak.decisions >= sum(LIVE_LEGS)
    step_failures = [r.getMessage() for r in caplog.records if "step failed" in r.getMessage()]
    assert soak.step_errors == len(step_failures) == 0, step_failures[:3]
    _check_faults(soak, at_least_each=1)

    tables = SessionTables.read(store_engine, "live-soak")
    check_steps(tables, at_least=sum(LIVE_LEGS))
    check_orders_terminal(tables)
    check_fills_match_orders(tables)
    check_broker_agrees(tables, broker)

    soak.record(fault_ledger, "live soak", ("session stopped cleanly", "0 step errors", "every order terminal",
                                            "no order twice at the broker", "broker executions = recorded fills",
                                            "broker positions = fills"))
    fault_ledger.measured("soak", "live-mode bars", soak.decisions)
