"""Features per month partition, computed from stored bars (with the warmup they need) for the
universe of the watchlist snapshot."""

import dagster as dg

from tt_platform.defs.market_data.partitions import BAR_PARTITIONS, month_days
from tt_platform.defs.market_data.resources import MarketClockResource
from tt_platform.defs.platform.presentation import RESEARCH, RESEARCH_TEAM
from tt_platform.defs.platform.resources import PlatformResource, RunConfigResource
from tt_platform.features.cache import FeatureCache
from tt_platform.features.sets import get_feature_set
from tt_platform.pipeline.features import build_features
from tt_platform.pipeline.handles import WatchlistSnapshot


@dg.asset(
    group_name=RESEARCH,
    kinds={"pandas", "postgres"},
    owners=[RESEARCH_TEAM],
    # features follow bars, month by month, whoever materialized the bars (the nightly schedule,
    # a backfill, tt): the default automation sensor requests them; runs that compute both
    # together handle them in the same run
    automation_condition=dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window()),
    partitions_def=BAR_PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["bars"],
    description="Normalized features with validity masks, keyed by feature_set_hash; one partition per month.",
)
def features(
    context: dg.AssetExecutionContext,
    watchlist: WatchlistSnapshot,
    platform: PlatformResource,
    run_config: RunConfigResource,
    market_clock: MarketClockResource,
) -> dg.MaterializeResult:
    config = run_config.load(last_session=market_clock.last_session())
    feature_set = get_feature_set(config.training.feature_set)
    universe = list(watchlist.symbols)
    keys = sorted(context.partition_keys)
    start = month_days(keys[0])[0]
    end = min(month_days(keys[-1])[1], market_clock.last_session())
    summary = None
    if start <= end:
        summary = build_features(
            platform.engine(),
            universe,
            start,
            end,
            interval=config.data.interval,
            adjusted=config.data.adjusted,
            feature_set=feature_set,
            context_symbols=universe,
            cache=FeatureCache(platform.settings.home / "feature_cache"),
        )
        context.log.info(f"{summary.rows} feature rows for {len(universe)} symbols {start}..{end}")
    rows_by_month = getattr(summary, "rows_by_month", {}) if summary is not None else {}
    for key in keys:
        context.add_asset_metadata({"rows": int(rows_by_month.get(key, 0))}, partition_key=key)
    return dg.MaterializeResult(
        metadata={
            "feature_set_hash": feature_set.hash,
            "feature_set": f"{feature_set.name} v{feature_set.version}",
            "features": len(feature_set.features),
            "symbols": len(universe),
            "watchlist_snapshot": watchlist.snapshot_hash,
        }
    )
