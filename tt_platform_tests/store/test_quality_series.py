"""Quality results keyed by the series they checked (raw or adjusted bars), and migration 0002."""

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command

from tt_platform.data.quality import CheckResult, results_frame
from tt_platform.store.engine import alembic_config, create_store_engine
from tt_platform.store.quality import QUALITY_KEY, read_quality_results, record_quality_results
from tt_platform.store.schema import quality_results


def _results(passed: bool, value: float, note: str) -> dict[str, list[CheckResult]]:
    return {"AAPL": [CheckResult("coverage", passed, "error", value, {"note": note})]}


def test_raw_and_adjusted_results_of_one_check_both_survive(store_engine):
    raw = results_frame(_results(False, 0.9, "raw"), partition_key="2020-01..2020-12")
    adjusted = results_frame(_results(True, 1.0, "adjusted"), partition_key="2020-01..2020-12", adjusted=True)
    assert record_quality_results(store_engine, raw) == 1
    assert record_quality_results(store_engine, adjusted) == 1
    both = read_quality_results(store_engine, check_name="coverage")
    assert both["adjusted"].tolist() == [False, True]  # raw first
    assert both["passed"].tolist() == [False, True]
    assert [d["note"] for d in both["details"]] == ["raw", "adjusted"]
    # a re-run on the raw series overwrites the raw result only
    assert record_quality_results(store_engine, results_frame(_results(True, 1.0, "raw again"), partition_key="2020-01..2020-12")) == 1
    after = read_quality_results(store_engine, check_name="coverage").set_index("adjusted")
    assert after.loc[False, "details"] == {"note": "raw again"} and after.loc[True, "details"] == {"note": "adjusted"}
    assert read_quality_results(store_engine, adjusted=True)["details"].tolist() == [{"note": "adjusted"}]
    assert read_quality_results(store_engine, adjusted=False)["details"].tolist() == [{"note": "raw again"}]
    assert read_quality_results(store_engine, instrument="MSFT").empty
    assert read_quality_results(store_engine, failed_only=True).empty


def test_the_series_comes_from_the_frame_or_the_argument(store_engine):
    rows = pd.DataFrame(
        {"check_name": ["gaps"], "instrument": ["SPY"], "partition_key": ["p"], "passed": [True], "severity": ["warn"]}
    )
    record_quality_results(store_engine, rows)  # no column, no argument: raw bars
    record_quality_results(store_engine, rows, adjusted=True)
    assert read_quality_results(store_engine)["adjusted"].tolist() == [False, True]
    with pytest.raises(ValueError, match="adjusted=False but"):
        record_quality_results(store_engine, rows.assign(adjusted=True), adjusted=False)
    assert QUALITY_KEY == ["check_name", "instrument", "partition_key", "adjusted"]
    assert [c.name for c in quality_results.primary_key] == QUALITY_KEY


def _primary_key(engine) -> list[str]:
    return sa.inspect(engine).get_pk_constraint("tt_quality_results")["constrained_columns"]


def test_migration_0002_keeps_old_results_as_raw_and_downgrades(fresh_schema_url):
    config = alembic_config(fresh_schema_url)
    engine = create_store_engine(fresh_schema_url)
    try:
        command.upgrade(config, "0001")
        assert _primary_key(engine) == ["check_name", "instrument", "partition_key"]
        insert = "INSERT INTO tt_quality_results (check_name, instrument, partition_key, passed, severity{extra}) VALUES ('coverage', 'AAPL', 'p', {passed}, 'error'{value})"
        with engine.begin() as conn:
            conn.exec_driver_sql(insert.format(extra="", passed="false", value=""))
        command.upgrade(config, "0002")
        assert _primary_key(engine) == QUALITY_KEY
        with engine.begin() as conn:
            # the adjusted result of the same check sits next to the raw one
            conn.exec_driver_sql(insert.format(extra=", adjusted", passed="true", value=", true"))
            rows = conn.exec_driver_sql("SELECT adjusted, passed FROM tt_quality_results ORDER BY adjusted").all()
        assert [tuple(r) for r in rows] == [(False, False), (True, True)]
        command.downgrade(config, "0001")
        assert _primary_key(engine) == ["check_name", "instrument", "partition_key"]
        assert "adjusted" not in {c["name"] for c in sa.inspect(engine).get_columns("tt_quality_results")}
        with engine.begin() as conn:
            rows = conn.exec_driver_sql("SELECT check_name, passed FROM tt_quality_results").all()
        assert [tuple(r) for r in rows] == [("coverage", False)]  # the raw result is kept
        command.upgrade(config, "0002")
        assert _primary_key(engine) == QUALITY_KEY
    finally:
        engine.dispose()


def test_results_frame_rows_round_trip(store_engine):
    from tt_platform.data.quality import run_checks_by_symbol
    from tt_platform.data.synthetic import generate_bars

    bars = generate_bars(["AAA"], pd.Timestamp("2021-03-01"), pd.Timestamp("2021-03-31"), interval="1d")
    checked = run_checks_by_symbol(bars, start=date(2021, 3, 1), end=date(2021, 3, 31))
    for adjusted in (False, True):
        record_quality_results(store_engine, results_frame(checked, partition_key="2021-03", adjusted=adjusted))
    stored = read_quality_results(store_engine, partition_key="2021-03")
    assert len(stored) == 2 * len(checked["AAA"])
    coverage = stored[stored["check_name"] == "coverage"]
    assert coverage["passed"].all() and coverage["details"].map(lambda d: d["expected"]).tolist() == [23, 23]
