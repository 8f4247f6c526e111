from __future__ import annotations

import pytest

from tt_platform.bench import ib
from tt_platform.bench.harness import BenchResult


@pytest.mark.timeout(120)
def test_quick_ib_benchmark_runs_and_reports_complete_backfills():
    results = {r.name: r for r in ib.run(quick=True)}
    assert all(isinstance(r, BenchResult) for r in results.values())
    # daily history: one long request per symbol, every bar, no pacing refusal
    assert results["ib.backfill_5x20y_daily.requests"].value == 5
    assert results["ib.backfill_5x20y_daily.bars"].passed is True
    assert results["ib.backfill_5x20y_daily.pacing_violations"].value == 0
    # a nightly update runs its requests concurrently, up to the cap
    assert 1 < results["ib.nightly_50x1d.max_open_requests"].value <= 50
    # 30 s bars stay under the small-bar rules
    assert results["ib.small_bars_3x2d_30s.completeness"].value == 100.0
    assert results["ib.small_bars_3x2d_30s.max_requests_per_sim_10min"].value <= 60


def test_window_count_is_a_sliding_maximum():
    assert ib._max_in_window([0, 100, 599, 600, 1199.5, 1300]) == 3  # 100, 599, 600 (600 - 600 = 0 is out)
    assert ib._max_in_window([]) == 0
