"""Clocks for pacing and for the gateway emulator's live streams.

IB's pacing windows are minutes long; tests and benchmarks cannot wait that long, so every
time-dependent piece takes a clock: the system clock in production, a scaled clock (simulated
seconds pass ``scale`` times faster than real ones) for end-to-end runs, and a manual clock whose
``sleep`` just advances time, for pure unit tests.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float:
        """Monotonic time in (simulated) seconds."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class ScaledClock:
    """Simulated time running ``scale`` times faster than real time (scale=600: 10 min in 1 s)."""

    def __init__(self, scale: float = 1.0) -> None:
        if not scale > 0:
            raise ValueError(f"ScaledClock: scale must be > 0, got {scale!r}")
        self.scale = float(scale)
        self._origin = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._origin) * self.scale

    def real_seconds(self, simulated: float) -> float:
        return max(0.0, simulated) / self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(self.real_seconds(seconds))

    def __repr__(self) -> str:
        return f"ScaledClock(scale={self.scale:g})"


class ManualClock:
    """Time that moves only when told to; ``sleep`` advances it instantly."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self.slept: list[float] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"ManualClock cannot go back in time ({seconds} s)")
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(0.0, seconds))

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now:g})"
