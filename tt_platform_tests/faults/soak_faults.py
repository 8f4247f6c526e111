"""Gateway faults for runs against the emulator: the faults themselves (coroutines for the
emulator's loop) and, for long runs, a seeded random schedule of them, one fault at a
time, each counted only once it has actually happened at the gateway."""

from __future__ import annotations

import concurrent.futures
import threading
from collections import Counter
from dataclasses import dataclass

import numpy as np

from tt_platform.ib.emulator import GatewayEmulator

SOCKET_DROP = "socket drop"
GATEWAY_RESTART = "gateway restart"
CONNECTIVITY_BLIP = "1100/1102 pair"
GATEWAY_FAULTS = (SOCKET_DROP, GATEWAY_RESTART, CONNECTIVITY_BLIP)


async def drop_clients(emulator: GatewayEmulator) -> int:
    """Cut every client's socket, as a network blip does; how many were connected."""
    clients = list(emulator.sessions.values())
    for client in clients:
        client.close()
    return len(clients)


async def restart_gateway(emulator: GatewayEmulator, down_seconds: float) -> int:
    """IB's daily restart: everyone dropped, the port closed ``down_seconds`` (emulator clock)."""
    await emulator.restart(down_seconds=down_seconds)
    return 1


async def connectivity_blip(emulator: GatewayEmulator, seconds: float) -> int:
    """IB loses its own connection (1100; the market and requests hold), regains it (1102)."""
    await emulator.connectivity_lost()
    try:
        await emulator.clock.sleep(seconds)
    finally:
        await emulator.connectivity_restored()
    return 1


@dataclass(frozen=True)
class FaultPace:
    """How often and how hard: the decisions between two faults, and the emulator-clock seconds
    a restart keeps the port closed and a blip holds the market."""

    gap: tuple[int, int] = (120, 320)
    restart_down: tuple[float, float] = (30.0, 300.0)
    blip: tuple[float, float] = (10.0, 120.0)
    weights: tuple[float, float, float] = (0.4, 0.3, 0.3)  # drop, restart, blip


class RandomGatewayFaults:
    """Injects ``GATEWAY_FAULTS`` from a decision hook: after a random gap of decisions, a random
    fault, never two at once. ``gateway.submit(op, **params)`` carries it out ("drop",
    "restart" with ``down``, "blip" with ``seconds``) and returns a future of how many it hit.
    ``fired`` counts the faults that happened (a drop that found nobody connected does not);
    ``failed`` lists any injection that raised; none is started at or after ``quiet_from``, nor
    while ``connected()`` says the session is not connected (it may still be deciding on bars
    it received before a cut: a fault then would hit nothing of it)."""

    def __init__(self, gateway, seed: int, pace: FaultPace | None = None) -> None:
        self.gateway = gateway
        self.connected = lambda: True
        self.pace = pace or FaultPace()
        self.rng = np.random.default_rng(seed)
        self.fired: Counter[str] = Counter()
        self.failed: list[str] = []
        self.quiet_from: int | None = None
        self._lock = threading.Lock()
        self._settled = threading.Event()
        self._settled.set()
        self._next_at = self._gap(0)

    def _gap(self, after: int) -> int:
        low, high = self.pace.gap
        return after + int(self.rng.integers(low, high + 1))

    def on_decision(self, bar: int) -> None:
        if bar < self._next_at or not self._settled.is_set() or (self.quiet_from is not None and bar >= self.quiet_from):
            return
        if not self.connected():
            return
        kind = str(self.rng.choice(GATEWAY_FAULTS, p=np.array(self.pace.weights) / sum(self.pace.weights)))
        if kind == SOCKET_DROP:
            op, params = "drop", {}
        elif kind == GATEWAY_RESTART:
            op, params = "restart", {"down": float(self.rng.uniform(*self.pace.restart_down))}
        else:
            op, params = "blip", {"seconds": float(self.rng.uniform(*self.pace.blip))}
        self._settled.clear()
        self.gateway.submit(op, **params).add_done_callback(lambda future: self._settle(kind, future))
        self._next_at = self._gap(bar)

    def _settle(self, kind: str, future: concurrent.futures.Future) -> None:
        with self._lock:
            if future.cancelled() or future.exception() is not None:
                self.failed.append(f"{kind}: {future.exception() if not future.cancelled() else 'cancelled'}")
            elif future.result():
                self.fired[kind] += 1
        self._settled.set()

    def settle(self, timeout: float = 60.0) -> None:
        """Wait for the fault under way (a restart must listen again before the next client)."""
        if not self._settled.wait(timeout):
            raise TimeoutError(f"a gateway fault was still under way after {timeout} s")

    @property
    def total(self) -> int:
        return sum(self.fired.values())
