from __future__ import annotations

import pytest

from tt_platform.bench import ib
from tt_platform.bench.harness import BenchResult


@pytest.mark.timeout(120)
def test_quick_ib_benchmark_runs_and_reports_complete_backfills():
    results = {r.name: r for r in ib.run(quick=True)}
    assert all(isinstance(r, BenchResult) for r in results.values())
    assert results["ib.backfill_5x1y_daily.completeness"].value == 100.0
    assert results["ib.backfill_5x1y_monthly.completeness"].value == 100.0
    assert results["ib.backfill_5x1y_monthly.max_requests_per_sim_10min"].value <= 60
    assert results["ib.backfill_5x1y_daily.requests"].value == 5


def test_window_count_is_a_sliding_maximum():
    assert ib._max_in_window([0, 100, 599, 600, 1199.5, 1300]) == 3  # 100, 599, 600 (600 - 600 = 0 is out)
    assert ib._max_in_window([]) == 0
