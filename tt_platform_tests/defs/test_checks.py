from datetime import date

import pandas as pd

from tt_platform.config.run_config import DataConfig
from tt_platform.data.synthetic import generate_bars
from tt_platform.defs.market_data.checks import BAR_CHECK_SPECS, BLOCKING, bar_check_results
from tt_platform.store.prices import write_bars
from tt_platform.store.quality import read_quality_results

DATA = DataConfig(source="synthetic")


def results(engine, symbols, start, end, life=None):
    return {r.check_name: r for r in bar_check_results(engine, DATA, symbols, start, end, life or {}, f"{start}..{end}")}


def store(engine, bars: pd.DataFrame) -> None:
    write_bars(engine, bars, source="synthetic", interval="1d", adjusted=False)


def test_a_range_of_holidays_only_passes(store_engine):
    checks = results(store_engine, ["AAA"], date(2019, 1, 21), date(2019, 1, 21))  # MLK day, NYSE shut
    assert all(r.passed for r in checks.values())


def test_a_missing_symbol_fails_coverage_and_a_full_one_passes(store_engine):
    store(store_engine, generate_bars(["AAA"], "2021-03-01", "2021-03-31"))
    checks = results(store_engine, ["AAA", "BBB"], date(2021, 3, 1), date(2021, 3, 31))
    assert not checks["coverage"].passed
    assert checks["coverage"].metadata["failed_symbols"].value == "BBB"
    assert checks["ohlc_sanity"].passed and checks["monotonic_unique"].passed


def test_a_missing_first_session_fails_coverage_counted_against_the_calendar(store_engine):
    # the request window lost its first session: between first and last stored bar nothing is missing
    store(store_engine, generate_bars(["AAA"], "2021-03-02", "2021-03-31"))
    checks = results(store_engine, ["AAA"], date(2021, 3, 1), date(2021, 3, 31))
    assert not checks["coverage"].passed
    assert "2021-03-01" in checks["coverage"].description
    # a symbol that lists on 2 March (the source said so) is complete
    listed = results(store_engine, ["AAA"], date(2021, 3, 1), date(2021, 3, 31), {"AAA": (date(2021, 3, 2), None)})
    assert listed["coverage"].passed


def test_a_missing_last_day_is_stale_and_only_warns(store_engine):
    store(store_engine, generate_bars(["AAA"], "2021-03-01", "2021-03-30"))
    checks = results(store_engine, ["AAA"], date(2021, 3, 1), date(2021, 3, 31))
    assert not checks["stale"].passed
    assert checks["stale"].severity.value == "WARN"
    assert not checks["coverage"].passed  # the missing session itself blocks


def test_an_unrecorded_split_blocks_and_names_symbol_date_and_ratio(store_engine):
    bars = generate_bars(["AAA"], "2021-03-01", "2021-03-31")
    after = bars["ts"] >= pd.Timestamp("2021-03-15", tz="UTC")
    bars.loc[after, ["open", "high", "low", "close"]] /= 10
    bars.loc[after, "volume"] *= 10
    store(store_engine, bars)
    checks = results(store_engine, ["AAA"], date(2021, 3, 1), date(2021, 3, 31))
    split = checks["unrecorded_splits"]
    assert not split.passed
    assert "AAA" in split.description and "2021-03-15" in split.description and "10:1" in split.description
    assert "tt corporate-actions" in split.description


def test_blocking_checks_are_declared_blocking_and_results_are_stored_per_series(store_engine):
    declared = {spec.name: spec.blocking for spec in BAR_CHECK_SPECS}
    assert {name for name, blocking in declared.items() if blocking} == BLOCKING
    assert BLOCKING == {"coverage", "monotonic_unique", "ohlc_sanity", "alignment", "unrecorded_splits"}
    store(store_engine, generate_bars(["AAA"], "2021-03-01", "2021-03-31"))
    results(store_engine, ["AAA"], date(2021, 3, 1), date(2021, 3, 31))
    stored = read_quality_results(store_engine)
    assert set(stored["check_name"]) == set(declared)
    assert not stored["adjusted"].any()
