from datetime import date

import dagster as dg
import pytest

from tt_platform.defs.market_data.partitions import BAR_PARTITIONS, SYMBOLS, range_tags, requested_windows


def test_range_tags_follow_registration_order():
    tags = range_tags(["CCC", "AAA", "BBB"], ["AAA", "BBB", "CCC"], date(2021, 1, 4), date(2021, 1, 8))
    assert tags["dagster/asset_partition_range_start"] == "2021-01-04|CCC"
    assert tags["dagster/asset_partition_range_end"] == "2021-01-08|BBB"
    weekend = range_tags(["AAA"], ["AAA"], date(2021, 3, 6), date(2021, 3, 14))
    assert weekend["dagster/asset_partition_range_start"] == "2021-03-08|AAA"  # Saturday -> Monday
    assert weekend["dagster/asset_partition_range_end"] == "2021-03-12|AAA"  # Sunday -> Friday
    with pytest.raises(ValueError, match="no weekday"):
        range_tags(["AAA"], ["AAA"], date(2021, 3, 6), date(2021, 3, 7))
    with pytest.raises(ValueError, match="not registered"):
        range_tags(["AAA"], ["AAA", "ZZZ"], date(2021, 1, 4), date(2021, 1, 8))


def test_one_run_covers_every_day_and_symbol_of_the_range():
    seen = {}

    @dg.asset(partitions_def=BAR_PARTITIONS, backfill_policy=dg.BackfillPolicy.single_run())
    def probe(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        seen.update(requested_windows(context))
        seen["_only_spy"] = requested_windows(context, ["SPY"])
        seen["_count"] = len(context.partition_keys)
        return dg.MaterializeResult()

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(SYMBOLS.name, ["SPY", "QQQ"])
        registered = instance.get_dynamic_partitions(SYMBOLS.name)
        tags = range_tags(registered, ["SPY", "QQQ"], date(2021, 3, 1), date(2021, 3, 31))
        assert dg.materialize([probe], instance=instance, tags=tags).success
    assert seen["_count"] == 23 * 2  # March 2021 has 23 weekdays
    assert seen["SPY"] == (date(2021, 3, 1), date(2021, 3, 31))
    assert seen["QQQ"] == (date(2021, 3, 1), date(2021, 3, 31))
    assert list(seen["_only_spy"]) == ["SPY"]  # registered symbols outside the run's universe are left out
