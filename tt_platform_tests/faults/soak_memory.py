"""The process's resident memory over a long run, and whether it keeps growing: sampled every few
bars, its least-squares slope after a warm-up says how many MiB each 1,000 bars add."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MIB = 1024 * 1024


def rss_bytes() -> int:
    """This process's resident set size: psutil when installed, else /proc/self/status (Linux)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        return int(psutil.Process().memory_info().rss)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            if unit.lower() != "kb":
                raise ValueError(f"/proc/self/status: VmRSS in unexpected unit {unit!r}")
            return int(value) * 1024
    raise OSError("/proc/self/status has no VmRSS line: cannot read this process's memory")


def slope_per_1000(bars: np.ndarray, values: np.ndarray) -> float:
    """Least-squares slope of ``values`` against ``bars``, per 1,000 bars."""
    bars, values = np.asarray(bars, dtype=float), np.asarray(values, dtype=float)
    if len(bars) < 3 or np.ptp(bars) == 0:
        raise ValueError(f"a slope needs at least 3 samples over more than one bar, got {len(bars)}")
    slope, _ = np.polyfit(bars, values, 1)
    return float(slope) * 1000.0


@dataclass
class RssSamples:
    """RSS taken every ``every`` bars (bar = completed decision, numbered across restarts)."""

    every: int
    bars: list[int] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)

    def maybe_sample(self, bar: int) -> None:
        if bar % self.every == 0:
            self.bars.append(bar)
            self.rss.append(rss_bytes())

    def slope_mib_per_1000(self, after_bar: int) -> float:
        """MiB per 1,000 bars, from the samples taken at or after ``after_bar`` (the warm-up
        before it fills caches, pools and the collector's generations)."""
        bars = np.array(self.bars)
        keep = bars >= after_bar
        return slope_per_1000(bars[keep], np.array(self.rss)[keep] / MIB)

    def describe(self) -> str:
        if not self.rss:
            return "no RSS samples"
        mib = np.array(self.rss) / MIB
        return (f"{len(mib)} samples from bar {self.bars[0]} to {self.bars[-1]}: "
                f"{mib[0]:.0f} -> {mib[-1]:.0f} MiB (min {mib.min():.0f}, max {mib.max():.0f})")
