from tt_platform.bench.features import run


def test_quick_benchmark_reports_every_measurement():
    results = run(quick=True)
    names = [r.name for r in results]
    assert len(results) >= 5 and all(r.value > 0 for r in results)
    stored = [r for r in results if r.name.startswith("features + storage: full set")]
    assert len(stored) == 1 and stored[0].passed
    assert any(r.name.startswith("features + storage: load_feature_matrix") and r.passed for r in results)  # bit-identical
    assert any(n.startswith("features: full set, 50 symbols") and "36 features" in n for n in names)
    assert any(n.startswith("tick->bar vectorised") for n in names)
    assert any(n.startswith("tick->bar streaming") for n in names)
    assert all(r.ratio is None or r.ratio > 0 for r in results)
