from datetime import date

from tt_platform.config.run_config import RunConfig
from tt_platform.data.synthetic import generate_bars
from tt_platform.defs.market_data.checks import bar_check_results
from tt_platform.store.prices import write_bars


def results(engine, windows):
    return {r.check_name: r for r in bar_check_results(engine, RunConfig(), windows)}


def test_a_holiday_partition_without_bars_passes(store_engine):
    checks = results(store_engine, {"AAA": (date(2019, 1, 21), date(2019, 1, 21))})  # MLK day, NYSE shut
    assert all(r.passed for r in checks.values())


def test_a_missing_symbol_fails_coverage_and_a_full_one_passes(store_engine):
    write_bars(store_engine, generate_bars(["AAA"], "2021-03-01", "2021-03-31"), source="synthetic", interval="1d", adjusted=False)
    checks = results(store_engine, {"AAA": (date(2021, 3, 1), date(2021, 3, 31)), "BBB": (date(2021, 3, 1), date(2021, 3, 31))})
    assert not checks["coverage"].passed
    assert checks["coverage"].metadata["failed_symbols"].value == "BBB"
    assert checks["ohlc_sanity"].passed and checks["monotonic_unique"].passed


def test_a_missing_last_day_is_stale(store_engine):
    bars = generate_bars(["AAA"], "2021-03-01", "2021-03-30")
    write_bars(store_engine, bars, source="synthetic", interval="1d", adjusted=False)
    checks = results(store_engine, {"AAA": (date(2021, 3, 1), date(2021, 3, 31))})
    assert not checks["stale"].passed
    assert checks["stale"].severity.value == "WARN"  # it warns; holes inside the window block
