from tt_platform.bench.marketdata import naive_adjust, run
from tt_platform.data.corporate_actions import adjust_bars
from tt_platform_tests.data.corporate_actions.test_adjust import actions, raw_bars


def test_quick_benchmark_reports_every_measurement():
    results = run(quick=True)
    names = [r.name for r in results]
    assert len(results) == 5 and all(r.value > 0 for r in results)
    assert names[0].startswith("import: Lean trade ticks, 200,000 ticks")
    assert any(n.startswith("adjust_bars:") for n in names)
    assert all(r.baseline is None or r.baseline > 0 for r in results)
    adjust = next(r for r in results if r.name.startswith("adjust_bars:"))
    assert adjust.passed is not None  # it compares prices too, see below


def test_loop_baseline_agrees_with_the_engine():
    bars = raw_bars([100, 100, 98, 49, 50])
    events = actions(("XYZ", "2020-01-03", "cash_dividend", 2.0), ("XYZ", "2020-01-04", "split", 2.0))
    ours, loop = adjust_bars(bars, events), naive_adjust(bars, events)
    assert ours["close"].round(12).tolist() == loop["close"].round(12).tolist()
    assert ours["volume"].tolist() == loop["volume"].tolist()
