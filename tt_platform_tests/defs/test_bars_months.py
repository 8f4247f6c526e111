"""The bars asset in Dagster: a month is materialized only when complete, each month carries its
own rows, an added symbol reopens the months that lack it and the next run fetches only it."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from tt_platform.config.run_config import RunConfig
from tt_platform.data.sources.base import BarSource, FetchReport
from tt_platform.data.sources.factory import source_for
from tt_platform.defs.market_data.partitions import range_tags
from tt_platform.defs.market_data.resources import BarSourceResource, MarketClockResource
from tt_platform.defs.platform.lineage import LineageIOManager
from tt_platform.defs.platform.resources import PlatformResource, RunConfigResource, dagster_run_config
from tt_platform.defs.market_data.assets import bars
from tt_platform.defs.universe.assets import watchlist
from tt_platform.settings import PlatformSettings

ASKED: list[tuple[str, date, date]] = []
FAILING: dict[str, str] = {}


class RecordingSource(BarSource):
    name = "synthetic"

    def __init__(self, data) -> None:
        self.inner = source_for(data)

    def fetch(self, requests, *, interval, adjusted, on_bars):
        ASKED.extend((r.symbol, r.start, r.end) for r in requests)
        failing = [r for r in requests if r.end >= date(2021, 3, 1) and FAILING]
        served = [r for r in requests if r not in failing]
        self.inner.fetch(served, interval=interval, adjusted=adjusted, on_bars=on_bars)
        return FetchReport(requests=len(served), failed={r.symbol: FAILING["why"] for r in failing})


class RecordingSourceResource(BarSourceResource):
    def build(self, data, settings):
        return RecordingSource(data)


@pytest.fixture
def home(tmp_path, store_url):
    ASKED.clear()
    FAILING.clear()
    return PlatformSettings(TT_HOME=str(tmp_path / "home"), TT_DB_URL=store_url)


def resources(home: PlatformSettings, bar_source: BarSourceResource) -> dict:
    return {
        "platform": PlatformResource(tt_home=str(home.home)),
        "run_config": RunConfigResource(),
        "bar_source": bar_source,
        "market_clock": MarketClockResource(as_of="2021-12-31"),
        "lineage_io_manager": LineageIOManager(),
    }


def run(instance, home: PlatformSettings, symbols: list[str], start: date, end: date, selection=(watchlist, bars)):
    config = RunConfig.model_validate(
        {"universe": {"symbols": symbols}, "data": {"source": "synthetic", "start": start.isoformat(), "end": end.isoformat()}}
    )
    return dg.materialize(
        list(selection),
        instance=instance,
        resources=resources(home, RecordingSourceResource()),
        run_config=dagster_run_config(config),
        tags=range_tags(start, end) if bars in selection else {},
        raise_on_error=False,
        selection=[a.key for a in selection],
    )


def materialized(instance) -> list[str]:
    return sorted(instance.get_materialized_partitions(dg.AssetKey("bars")))


def month_metadata(instance, key: str) -> dict:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey("bars"), asset_partitions=[key]), limit=1).records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def test_months_carry_their_own_rows_and_an_added_symbol_is_fetched_alone(home, monkeypatch):
    monkeypatch.setenv("TT_DB_URL", home.db_url)
    with dg.instance_for_test() as instance:
        assert run(instance, home, ["AAA", "BBB"], date(2021, 1, 4), date(2021, 3, 31)).success
        assert materialized(instance) == ["2021-01", "2021-02", "2021-03"]
        assert month_metadata(instance, "2021-01")["rows"] == 2 * 19
        assert month_metadata(instance, "2021-03")["rows"] == 2 * 23

        # a new symbol in the watchlist: every month lacking it shows as missing again
        assert run(instance, home, ["AAA", "BBB", "CCC"], date(2021, 1, 4), date(2021, 3, 31), selection=(watchlist,)).success
        assert materialized(instance) == []
        ASKED.clear()
        assert run(instance, home, ["AAA", "BBB", "CCC"], date(2021, 1, 4), date(2021, 3, 31)).success
        assert {symbol for symbol, _, _ in ASKED} == {"CCC"}
        assert materialized(instance) == ["2021-01", "2021-02", "2021-03"]
        assert month_metadata(instance, "2021-02")["rows"] == 3 * 19

        # dropping a symbol keeps the months complete
        assert run(instance, home, ["AAA", "BBB"], date(2021, 1, 4), date(2021, 3, 31), selection=(watchlist,)).success
        assert materialized(instance) == ["2021-01", "2021-02", "2021-03"]


def test_an_incomplete_month_stays_missing_and_the_run_names_the_cause(home, monkeypatch):
    monkeypatch.setenv("TT_DB_URL", home.db_url)
    with dg.instance_for_test() as instance:
        assert run(instance, home, ["AAA"], date(2021, 1, 4), date(2021, 2, 26)).success
        FAILING["why"] = "cannot connect to IB at 127.0.0.1:4199"
        result = run(instance, home, ["AAA"], date(2021, 1, 4), date(2021, 3, 31))
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure)
        assert "AAA 2021-03: cannot connect to IB at 127.0.0.1:4199" in failure.step_failure_data.error.message
        assert materialized(instance) == ["2021-01", "2021-02"]


def test_a_delisted_symbol_leaves_its_later_months_complete_with_the_reason(home, monkeypatch, tmp_path):
    from tt_platform.data.synthetic import generate_bars

    monkeypatch.setenv("TT_DB_URL", home.db_url)
    for symbol, start, end in (("AAA", "2021-01-04", "2021-03-31"), ("OLD", "2021-01-04", "2021-01-29")):
        generated = generate_bars([symbol], start, end, seed=3)
        frame = generated.assign(date=generated["ts"].dt.strftime("%Y-%m-%d"))[["date", "open", "high", "low", "close", "volume"]]
        frame.to_csv(tmp_path / f"{symbol}.csv", index=False)
    config = RunConfig.model_validate({
        "universe": {"symbols": ["AAA", "OLD"]},
        "data": {"source": "csv", "csv_dir": str(tmp_path), "start": "2021-01-04", "end": "2021-03-31"},
    })
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [watchlist, bars],
            instance=instance,
            resources=resources(home, BarSourceResource()),
            run_config=dagster_run_config(config),
            tags=range_tags(date(2021, 1, 4), date(2021, 3, 31)),
            raise_on_error=False,
        )
        assert result.success
        assert materialized(instance) == ["2021-01", "2021-02", "2021-03"]
        march = month_metadata(instance, "2021-03")
        assert march["symbols_stored"] == 1 and march["symbols_absent"] == 1
        assert march["absent"] == "OLD: no data after 2021-01-29 (delisted)"
        assert month_metadata(instance, "2021-01")["rows"] == 19 + 19


def write_csv(folder, bars) -> None:
    frame = bars.assign(date=bars["ts"].dt.strftime("%Y-%m-%d"))[["date", "open", "high", "low", "close", "volume"]]
    frame.to_csv(folder / f"{bars['symbol'].iloc[0]}.csv", index=False)


def csv_run(instance, home, folder, start: date, end: date):
    config = RunConfig.model_validate({
        "universe": {"symbols": ["AAA"]},
        "data": {"source": "csv", "csv_dir": str(folder), "start": start.isoformat(), "end": end.isoformat()},
    })
    return dg.materialize(
        [watchlist, bars], instance=instance, resources=resources(home, BarSourceResource()),
        run_config=dagster_run_config(config), tags=range_tags(start, end), raise_on_error=False,
    )


def failure_message(result) -> str:
    return next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message


def test_an_answer_failing_a_blocking_check_is_never_written_and_the_run_says_why(home, monkeypatch, tmp_path):
    from tt_platform.data.synthetic import generate_bars
    from tt_platform.store.prices import read_bars

    monkeypatch.setenv("TT_DB_URL", home.db_url)
    generated = generate_bars(["AAA"], "2021-03-01", "2021-03-31", seed=3)
    write_csv(tmp_path, generated[generated["ts"] != "2021-03-10"])  # the vendor file lost a session
    with dg.instance_for_test() as instance:
        result = csv_run(instance, home, tmp_path, date(2021, 3, 1), date(2021, 3, 31))
        assert not result.success
        message = failure_message(result)
        assert "AAA 2021-03: AAA: 1 of 23 sessions missing" in message and "2021-03-10" in message
        assert "nothing of it was stored" in message
        assert materialized(instance) == []
    assert read_bars(create_engine_for(home), ["AAA"]).empty


def test_an_impossible_bar_leaves_the_good_bars_stored_before_it_untouched(home, monkeypatch, tmp_path):
    from tt_platform.data.synthetic import generate_bars
    from tt_platform.store.prices import read_bars

    monkeypatch.setenv("TT_DB_URL", home.db_url)
    good = generate_bars(["AAA"], "2021-01-04", "2021-01-29", seed=3)
    write_csv(tmp_path, good)
    with dg.instance_for_test() as instance:
        assert csv_run(instance, home, tmp_path, date(2021, 1, 4), date(2021, 1, 29)).success
        stored = read_bars(create_engine_for(home), ["AAA"])
        bad = good.copy()
        bad.loc[bad["ts"] == "2021-01-07", ["high", "low"]] = [98.80, 100.10]  # high < low
        write_csv(tmp_path, bad)
        # a re-fetch of January (e.g. a corrected vendor file) is validated before it replaces anything
        from tt_platform.config.run_config import DataConfig
        from tt_platform.data.sources.factory import source_for
        from tt_platform.pipeline.market_data import ingest_months

        data = DataConfig(source="csv", csv_dir=tmp_path, start=date(2021, 1, 4), end=date(2021, 1, 29))
        outcome = ingest_months(create_engine_for(home), source_for(data), data, ["AAA"], ["2021-01"], last_session=date(2021, 12, 31), refetch=True)
        assert not outcome.complete
        assert "high" in outcome.months["2021-01"].missing["AAA"] and "2021-01-07" in outcome.months["2021-01"].missing["AAA"]
        after = read_bars(create_engine_for(home), ["AAA"])
        assert after.equals(stored)


def create_engine_for(home: PlatformSettings):
    from tt_platform.store.engine import create_store_engine

    return create_store_engine(home.db_url)


def test_a_subset_run_fetches_only_its_symbols_and_never_changes_the_universe(home, monkeypatch):
    from tt_platform.store.registry import read_instruments

    monkeypatch.setenv("TT_DB_URL", home.db_url)

    def subset_run(instance, symbols, subset):
        config = RunConfig.model_validate({
            "universe": {"symbols": symbols},
            "data": {"source": "synthetic", "start": "2021-01-04", "end": "2021-02-26", "symbols": subset},
        })
        return dg.materialize(
            [watchlist, bars], instance=instance, resources=resources(home, RecordingSourceResource()),
            run_config=dagster_run_config(config), tags=range_tags(date(2021, 1, 4), date(2021, 2, 26)), raise_on_error=False,
        )

    with dg.instance_for_test() as instance:
        # the universe is SPY, QQQ; a run asked for QQQ only ends well and leaves the months waiting
        assert subset_run(instance, ["SPY", "QQQ"], ["QQQ"]).success
        assert {s for s, _, _ in ASKED} == {"QQQ"}
        assert materialized(instance) == []
        active = read_instruments(create_engine_for(home))
        assert set(active[active["active"]]["symbol"]) == {"SPY", "QQQ"}
        ASKED.clear()
        # the rest of the universe arrives in a second subset run: the months are complete now
        assert subset_run(instance, ["SPY", "QQQ"], ["SPY"]).success
        assert {s for s, _, _ in ASKED} == {"SPY"}
        assert materialized(instance) == ["2021-01", "2021-02"]
        assert month_metadata(instance, "2021-01")["rows"] == 2 * 19
