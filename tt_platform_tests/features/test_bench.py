from tt_platform.bench.features import run


def test_quick_benchmark_reports_every_measurement():
    results = run(quick=True)
    names = [r.name for r in results]
    assert len(results) == 5 and all(r.value > 0 for r in results)
    assert any(n.startswith("features: full set, 50 symbols") and "36 features" in n for n in names)
    assert any(n.startswith("tick->bar vectorised") for n in names)
    assert any(n.startswith("tick->bar streaming") for n in names)
    assert all(r.ratio is None or r.ratio > 0 for r in results)
