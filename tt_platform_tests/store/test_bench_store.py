import pytest

from tt_platform.bench import store as store_bench
from tt_platform.data.bars import validate_bars


def test_bench_bars_are_canonical_and_deterministic():
    bars = store_bench.bench_bars(3, 50, seed=1)
    validate_bars(bars, "bench")
    assert len(bars) == 150 and bars["symbol"].nunique() == 3
    assert bars.equals(store_bench.bench_bars(3, 50, seed=1))
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()


@pytest.mark.postgres
def test_quick_benchmark_reports_every_measurement(monkeypatch):
    monkeypatch.delenv(store_bench.BENCH_URL_ENV, raising=False)  # its own embedded server
    results = {r.name: r for r in store_bench.run(quick=True)}
    assert set(results) == {
        "store.bar_upsert_throughput",
        "store.bar_read_throughput",
        "store.upsert_20k_bars",
        "store.rerun_20k_bars",
    }
    assert all(r.value > 0 for r in results.values())
    throughput = results["store.bar_upsert_throughput"]
    assert throughput.baseline > 0 and throughput.ratio == pytest.approx(throughput.value / throughput.baseline)
    assert throughput.passed is (throughput.ratio >= 10)
    assert results["store.upsert_20k_bars"].passed is None  # 1M-bar targets are not judged on 20k
