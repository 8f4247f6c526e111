"""Faults injected into the gateway emulator while something runs against it.

The emulator's ``FaultPlan`` covers faults tied to a request count (drops mid-answer, one restart
after N answers, pacing); ``OnProgress`` adds any number of faults at chosen points of a backfill
(each once the gateway has answered N more historical requests), and ``connectivity_blip`` plays IB's
1100 -> 1102 and 1100 -> 1101 sequences.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine

from tt_platform.ib.emulator.server import GatewayEmulator, GatewayThread

RESTORED_DATA_LOST = "Connectivity between IB and Trader Workstation has been restored - data lost."


async def connectivity_restored_data_lost(emulator: GatewayEmulator) -> None:
    """IB's 1101: connectivity is back, but IB dropped every market-data subscription. The
    emulator plays 1100 and 1102 only; here each client loses its streams and gets 1101, and the
    requests held since the 1100 go on."""
    for session in list(emulator.sessions.values()):
        session.streams.clear()
        session.error(-1, 1101, RESTORED_DATA_LOST)
    emulator._require_started().set()  # what connectivity_restored does after its 1102


async def connectivity_blip(emulator: GatewayEmulator, held_seconds: float, *, data_lost: bool = False) -> None:
    """1100, requests and streams held for ``held_seconds`` (emulator clock), then 1102 (data
    maintained) or 1101 (data lost)."""
    await emulator.connectivity_lost()
    await emulator.clock.sleep(held_seconds)
    if data_lost:
        await connectivity_restored_data_lost(emulator)
    else:
        await emulator.connectivity_restored()


async def drop_every_client(emulator: GatewayEmulator) -> int:
    """Cut every client's socket at once (a network failure between clients and gateway);
    returns how many were cut."""
    sessions = [session for session in emulator.sessions.values() if not session.closed]
    for session in sessions:
        session.close()
    return len(sessions)


class OnProgress(threading.Thread):
    """Faults at chosen points of a backfill: for each ``(more, make_fault)`` in turn, once the
    gateway is up, a client is connected and ``more`` historical requests were answered since the
    previous fault, ``make_fault(emulator)`` runs on the emulator's loop. Requests answered at
    different speeds (``FaultPlan.historical_delay_by_symbol``) leave others in flight to be hit.
    ``fired`` counts the faults that really happened: the coroutine's result when it is a number
    (e.g. the sockets it cut), else one."""

    def __init__(self, gateway: GatewayThread, plan: list[tuple[int, Callable[[GatewayEmulator], Coroutine]]]) -> None:
        super().__init__(name="gateway-faults", daemon=True)
        self.gateway, self.plan = gateway, list(plan)
        self.fired = 0
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def _answered(self) -> int:
        return sum(1 for record in list(self.gateway.emulator.history_log) if record.outcome == "ok")

    def run(self) -> None:
        emulator = self.gateway.emulator
        try:
            mark = 0
            for more, make_fault in self.plan:
                while self._answered() < mark + more or not emulator.sessions or not emulator.running:
                    if self._stop_event.wait(0.005):
                        return
                result = self.gateway.call(make_fault(emulator), timeout=60)
                self.fired += result if isinstance(result, int) else 1
                mark = self._answered()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self.error = exc

    def __enter__(self) -> OnProgress:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_event.set()
        self.join(timeout=60)
        if self.error is not None:
            raise self.error
