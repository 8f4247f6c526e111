"""Fixtures for the IB tests: an emulator in a background thread and clients on ephemeral ports."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

import pandas as pd
import pytest

from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator import (
    FaultPlan,
    FrameBarSource,
    GatewayEmulator,
    ReplayConfig,
    serve_in_thread,
)
from tt_platform.ib.emulator.server import GatewayThread

SYMBOLS = ["AAA", "BBB", "CCC"]


@pytest.fixture(autouse=True)
def main_thread_loop() -> Iterator[None]:
    """ib_insync runs on the main thread's loop; give each test a fresh one."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    with contextlib.suppress(Exception):
        loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture(scope="session")
def daily_frame() -> pd.DataFrame:
    from tt_platform.data.synthetic import generate_bars

    return generate_bars(SYMBOLS, "2019-01-01", "2021-12-31", interval="1d", seed=7)


@pytest.fixture(scope="session")
def daily_source(daily_frame: pd.DataFrame) -> FrameBarSource:
    return FrameBarSource(daily_frame)


@pytest.fixture
def start_gateway() -> Iterator[Callable[..., GatewayThread]]:
    """Factory: start_gateway(source, scale=..., faults=..., replay=...) -> running GatewayThread."""
    running: list[GatewayThread] = []

    def start(
        source, *, scale: float = 100.0, faults: FaultPlan | None = None, replay: ReplayConfig | None = None, **kw
    ) -> GatewayThread:
        emulator = GatewayEmulator(source, clock=ScaledClock(scale), faults=faults, replay=replay, **kw)
        gateway = serve_in_thread(emulator)
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        gateway.stop()


def wait_until(ib, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Let ib_insync's loop run until ``predicate()`` holds (or the timeout passes)."""
    loop = asyncio.get_event_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        ib.sleep(0.02)
    return True
