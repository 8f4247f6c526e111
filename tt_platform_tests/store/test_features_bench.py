from tt_platform.bench.features import storage_results


def test_quick_storage_benchmark_reports_every_measurement():
    results = storage_results(quick=True)
    names = [r.name for r in results]
    assert len(results) == 9 and all(r.value >= 0 for r in results)
    assert names[0].startswith("features + storage: full set, 50 symbols x 2 years")
    assert any(n.startswith("features storage write: wide rows vs long table, 10 symbols") for n in names)
    # exactness and the gains over the long table are checked whatever the size
    checked = [r for r in results if "load_feature_matrix" in r.name or r.name.startswith("features storage ")]
    assert len(checked) == 4 and all(r.passed for r in checked)
