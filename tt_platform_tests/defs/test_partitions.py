"""The month partition scheme: key counts at real-universe scale, and what each key stands for."""

from datetime import date, datetime

import dagster as dg
import pandas as pd
import pytest

from tt_platform.data.sessions import last_completed_session, sessions_between
from tt_platform.defs.market_data.partitions import BAR_PARTITIONS, build_month_partitions, range_tags
from tt_platform.pipeline.months import month_days, requested_days

MAX_KEYS = 20_000


def keys_at(partitions: dg.PartitionsDefinition, now: datetime) -> list[str]:
    return partitions.get_partition_keys(current_time=now)


def test_500_symbols_by_20_years_of_daily_bars_stay_far_below_the_key_budget():
    keys = keys_at(build_month_partitions("2006-01-01"), datetime(2026, 1, 15))
    # months, whatever the universe: 500 symbols add no keys
    assert len(keys) == 20 * 12 + 1 <= MAX_KEYS
    assert keys[0] == "2006-01" and keys[-1] == "2026-01"


def test_50_symbols_by_5_years_of_minute_bars_stay_far_below_the_key_budget():
    keys = keys_at(build_month_partitions("2021-01"), datetime(2025, 12, 31))
    assert len(keys) == 60 <= MAX_KEYS


def test_the_axis_ends_with_the_month_of_the_last_completed_session():
    now = datetime(2026, 12, 4, 23, 0)
    keys = keys_at(build_month_partitions("2024-01"), now)
    assert keys[-1] == "2026-12"
    assert last_completed_session(now=pd.Timestamp("2026-12-04 23:00", tz="UTC")) == date(2026, 12, 4)
    # before the close the session in progress is not complete
    assert last_completed_session(now=pd.Timestamp("2026-12-04 15:00", tz="UTC")) == date(2026, 12, 3)
    # a Sunday: Friday's session is the last complete one
    assert last_completed_session(now=pd.Timestamp("2026-12-06 12:00", tz="UTC")) == date(2026, 12, 4)


def test_no_partition_is_an_exchange_holiday():
    # every month holds sessions, so no key stands for a day the exchange was shut
    for key in keys_at(build_month_partitions("2006-01"), datetime(2026, 11, 30)):
        first, last = month_days(key)
        assert len(sessions_between(first, last)) >= 15, key


def test_one_run_covers_every_month_of_the_range():
    seen = {}

    @dg.asset(partitions_def=BAR_PARTITIONS, backfill_policy=dg.BackfillPolicy.single_run())
    def probe(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        seen["keys"] = list(context.partition_keys)
        for key in context.partition_keys:
            context.add_asset_metadata({"own_key": key}, partition_key=key)
        return dg.MaterializeResult()

    with dg.instance_for_test() as instance:
        tags = range_tags(date(2021, 1, 4), date(2021, 3, 31))
        assert dg.materialize([probe], instance=instance, tags=tags).success
        assert seen["keys"] == ["2021-01", "2021-02", "2021-03"]
        assert requested_days(seen["keys"]) == (date(2021, 1, 1), date(2021, 3, 31))
        # each partition's materialization carries its own metadata, not the run's
        records = instance.fetch_materializations(dg.AssetKey("probe"), limit=10).records
        assert {r.partition_key: r.asset_materialization.metadata["own_key"].value for r in records} == {k: k for k in seen["keys"]}


def test_range_tags_refuse_an_empty_range():
    with pytest.raises(ValueError, match="no partition"):
        range_tags(date(2021, 3, 31), date(2021, 3, 1))
