import pandas as pd

from tt_platform.store.quality import ALL_INSTRUMENTS, read_quality_results, record_quality_results
from tt_platform.store.signals import read_signal_scores, write_signal_scores


def test_quality_results_overwrite_on_rerun_and_filter(store_engine):
    results = pd.DataFrame(
        {"check_name": ["gaps", "ohlc", "gaps"], "instrument": ["AAA", ALL_INSTRUMENTS, "BBB"],
         "partition_key": ["2024-01-02", "2024-01-02", "2024-01-03"], "passed": [True, False, True],
         "severity": ["warn", "error", "warn"], "value": [0.0, 2.0, 0.0],
         "details": [None, {"rows": [3, 9]}, None]}
    )
    assert record_quality_results(store_engine, results) == 3
    rerun = results.iloc[[1]].assign(passed=True, value=0.0, details=None)
    assert record_quality_results(store_engine, rerun) == 1
    assert read_quality_results(store_engine, failed_only=True).empty
    day = read_quality_results(store_engine, partition_key="2024-01-02")
    assert day["check_name"].tolist() == ["gaps", "ohlc"] and day["passed"].all()
    assert read_quality_results(store_engine, check_name="gaps")["instrument"].tolist() == ["AAA", "BBB"]


def test_signal_scores_round_trip(store_engine):
    ts = pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC")
    scores = pd.DataFrame({"run_id": "r1", "ts": list(ts) * 2, "instrument": ["AAA"] * 3 + ["BBB"] * 3,
                           "score": [0.1, 0.2, None, -0.1, -0.2, -0.3]})
    assert write_signal_scores(store_engine, scores) == 6
    out = read_signal_scores(store_engine, "r1", start="2024-01-02")
    assert out["instrument"].tolist() == ["AAA", "BBB", "AAA", "BBB"]
    assert out["score"].isna().sum() == 1
