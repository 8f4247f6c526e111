"""Bars: one partition per month, holding the whole universe's bars of that month in tt_prices."""


from datetime import date


import dagster as dg
import pandas as pd

from tt_platform.defs.market_data.checks import BAR_CHECK_SPECS, BLOCKING, bar_check_results
from tt_platform.defs.market_data.partitions import BAR_PARTITIONS, month_days
from tt_platform.defs.market_data.resources import BarSourceResource, MarketClockResource
from tt_platform.defs.platform.presentation import DATA_TEAM, MARKET_DATA
from tt_platform.defs.platform.resources import PlatformResource, RunConfigResource
from tt_platform.pipeline.handles import WatchlistSnapshot
from tt_platform.pipeline.market_data import MonthlyIngest, ingest_months
from tt_platform.store.registry import read_instruments


def _life(engine, symbols: list[str]) -> dict[str, tuple[date | None, date | None]]:
    """What the sources reported of each symbol's listing, from tt_instruments."""
    frame = read_instruments(engine, symbols)

    def day(value) -> date | None:
        return None if value is None or pd.isna(value) else pd.Timestamp(value).date()

    return {row.symbol: (day(row.listed_at), day(row.delisted_at)) for row in frame.itertuples()}


def _failure_message(result: MonthlyIngest) -> str:
    # what went wrong with what this run fetched comes first; then what the months still lack
    reasons = result.incomplete_reasons()
    failed = result.report.failed
    first = [p for p in reasons if p.split(" ", 1)[0] in failed]
    outside = [f"{s}: {why}" for s, why in sorted(failed.items()) if not any(p.split(" ", 1)[0] == s for p in reasons)]
    problems = outside + first + [p for p in reasons if p not in first]
    shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
    incomplete = sorted(k for k, m in result.months.items() if not m.complete)
    return f"bars incomplete for {len(incomplete)} of {len(result.months)} months ({incomplete[0]}..{incomplete[-1]}): {shown}"


@dg.asset(
    group_name=MARKET_DATA,
    kinds={"ib", "postgres"},
    owners=[DATA_TEAM],
    partitions_def=BAR_PARTITIONS,
    # a subset run may leave months incomplete: they are not materialized and downstream skips
    output_required=False,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=BAR_CHECK_SPECS,
    description=(
        "OHLCV bars in tt_prices, one partition per month holding every active symbol. A month is "
        "materialized once each symbol's sessions are stored or recorded absent with a reason "
        "(tt_bar_coverage); re-runs fetch only what is missing."
    ),
)
def bars(
    context: dg.AssetExecutionContext,
    watchlist: WatchlistSnapshot,
    platform: PlatformResource,
    run_config: RunConfigResource,
    bar_source: BarSourceResource,
    market_clock: MarketClockResource,
):
    config = run_config.load(last_session=market_clock.last_session())
    engine = platform.engine()
    keys = sorted(context.partition_keys)
    last_session = market_clock.last_session()
    universe = list(watchlist.symbols)
    fetch = config.data.symbols or universe  # a subset run fetches some symbols; the universe stays
    subset = f" (fetching {len(fetch)} of them: a subset run)" if config.data.symbols else ""
    context.log.info(
        f"{len(universe)} symbols{subset} x {len(keys)} months ({keys[0]}..{keys[-1]}) from {config.data.source}, through {last_session}"
    )
    with bar_source.build(config.data, platform.settings) as source:
        result = ingest_months(engine, source, config.data, universe, keys, last_session=last_session, fetch=fetch)
    context.log.info(
        f"{len(result.requests)} requests, {result.rows_written} bars written; "
        + ", ".join(f"{k}={v}" for k, v in result.report.as_metadata().items() if v not in ("", 0))
    )
    for key, month in result.months.items():
        context.add_asset_metadata(month.as_metadata() | {"interval": config.data.interval}, partition_key=key)
    if not result.complete:
        # the complete months are materialized; the others stay missing until a run completes them
        for key, month in result.months.items():
            if month.complete:
                context.log_event(
                    dg.AssetMaterialization(asset_key=context.asset_key, partition=key, metadata=month.as_metadata() | {"interval": config.data.interval})
                )
        if result.report.failed or not config.data.symbols:
            raise dg.Failure(description=_failure_message(result))
        # a subset run did what it was asked; the months wait for the rest of the universe, and
        # downstream assets do not run on them
        context.log.warning(_failure_message(result).replace("bars incomplete", "months still incomplete for the universe", 1))
    else:
        yield dg.MaterializeResult()
    first_day = month_days(keys[0])[0]
    last_day = min(month_days(keys[-1])[1], last_session)
    if first_day <= last_day:
        label = f"{keys[0]}..{keys[-1]}"
        failed = []
        # the symbols this run fetched (a subset run checks its subset; the rest was checked when fetched)
        for check in bar_check_results(engine, config.data, fetch, first_day, last_day, _life(engine, fetch), label):
            if not check.passed and check.check_name in BLOCKING:
                failed.append(check)
            yield check
        if failed:
            # blocking: features and training must not run on these bars; the run's last line
            # says which check failed for which symbol (Dagster's own message names only the check)
            more = f" (and {len(failed) - 1} more failed checks)" if len(failed) > 1 else ""
            raise dg.Failure(description=f"bars check {failed[0].check_name} failed: {failed[0].description}{more}")
    else:
        for spec in BAR_CHECK_SPECS:
            yield dg.AssetCheckResult(check_name=spec.name, passed=True, metadata={"note": "no completed session in these months yet"})
