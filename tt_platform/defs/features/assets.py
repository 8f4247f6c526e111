"""Features per (day, symbol) partition, computed from stored bars with the warmup they need."""


import dagster as dg

from tt_platform.defs.market_data.partitions import BAR_PARTITIONS, group_by_window, requested_windows
from tt_platform.defs.platform.resources import PlatformResource, RunConfigResource
from tt_platform.features.cache import FeatureCache
from tt_platform.features.sets import get_feature_set
from tt_platform.pipeline.features import build_features
from tt_platform.pipeline.universe import resolve_watchlist


@dg.asset(
    group_name="features",
    partitions_def=BAR_PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["bars"],
    description="Normalized features (long form in tt_features), keyed by feature_set_hash.",
)
def features(context: dg.AssetExecutionContext, platform: PlatformResource, run_config: RunConfigResource) -> dg.MaterializeResult:
    config = run_config.load()
    feature_set = get_feature_set(config.training.feature_set)
    universe = resolve_watchlist(config).symbols
    windows = requested_windows(context, universe)
    rows, summaries = 0, []
    # one computation per distinct window: a range run asks every symbol for the same days
    for (start, end), symbols in group_by_window(windows).items():
        summary = build_features(
            platform.engine(),
            symbols,
            start,
            end,
            interval=config.data.interval,
            adjusted=config.data.adjusted,
            feature_set=feature_set,
            context_symbols=universe,
            cache=FeatureCache(platform.settings.home / "feature_cache"),
        )
        rows += summary.rows
        summaries.append(summary)
    firsts = [s.first_ts for s in summaries if s.first_ts]
    lasts = [s.last_ts for s in summaries if s.last_ts]
    return dg.MaterializeResult(
        metadata={
            "rows": rows,
            "feature_set_hash": feature_set.hash,
            "feature_set": f"{feature_set.name} v{feature_set.version}",
            "features": len(feature_set.features),
            "symbols": len(windows),
            "first_ts": min(firsts) if firsts else "",
            "last_ts": max(lasts) if lasts else "",
        }
    )
