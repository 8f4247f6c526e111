"""The watchlist asset: the universe snapshot every downstream asset reads.

When the watchlist gains symbols, the month partitions of bars that do not hold them yet become
missing again, so the UI shows the new symbols' history as missing and the next backfill fetches
only those symbols. Dagster's storage cannot unmark single partitions, so the asset's record is
wiped and the months that stay complete for the new universe (per tt_bar_coverage) are recorded
again with their own metadata; features depend on the whole universe and are all reopened.
"""

import dagster as dg
import pandas as pd

from tt_platform.defs.market_data.resources import MarketClockResource
from tt_platform.defs.platform.lineage import handle_from_metadata
from tt_platform.defs.platform.presentation import DATA_TEAM, MARKET_DATA
from tt_platform.defs.platform.resources import PlatformResource, RunConfigResource
from tt_platform.pipeline.handles import WatchlistSnapshot
from tt_platform.pipeline.market_data import month_statuses
from tt_platform.pipeline.universe import resolve_watchlist
from tt_platform.store.registry import record_watchlist, upsert_instruments

MONTH_ASSETS = ("bars", "features")


def _previous_symbols(instance: dg.DagsterInstance) -> set[str] | None:
    latest = instance.get_latest_materialization_event(dg.AssetKey("watchlist"))
    if latest is None or latest.asset_materialization is None:
        return None
    snapshot = handle_from_metadata(dg.AssetKey("watchlist"), dict(latest.asset_materialization.metadata))
    return set(snapshot.symbols)


def _reopen_months(context: dg.AssetExecutionContext, engine, data, universe: list[str], added: list[str], last_session) -> list[str]:
    """Mark missing the bar months that lack an added symbol; return those months."""
    instance = context.instance
    materialized = sorted(instance.get_materialized_partitions(dg.AssetKey("bars")))
    if not materialized or not added:
        return []
    months = month_statuses(engine, data, universe, materialized, last_session)
    reopened = [key for key, month in months.items() if not month.complete]
    if not reopened:
        return []
    instance.wipe_assets([dg.AssetKey(asset) for asset in MONTH_ASSETS])
    for key, month in months.items():
        if month.complete:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key="bars", partition=key,
                    metadata=month.as_metadata() | {"interval": data.interval, "recorded_by": f"watchlist run {context.run_id}"},
                )
            )
    return reopened


@dg.asset(
    group_name=MARKET_DATA,
    kinds={"postgres"},
    owners=[DATA_TEAM],
    io_manager_key="lineage_io_manager",
    description="The traded universe: a snapshot (hash and symbols) that bars, features and training read.",
)
def watchlist(
    context: dg.AssetExecutionContext, platform: PlatformResource, run_config: RunConfigResource, market_clock: MarketClockResource
) -> dg.Output[WatchlistSnapshot]:
    config = run_config.load(last_session=market_clock.last_session())
    current = resolve_watchlist(config)
    engine = platform.engine()
    record_watchlist(engine, current.snapshot_hash, current.symbols, current.source)
    previous = _previous_symbols(context.instance)
    added = [s for s in current.symbols if previous is not None and s not in previous]
    removed = sorted(previous - set(current.symbols)) if previous is not None else []
    upsert_instruments(
        engine,
        pd.DataFrame([{"symbol": e.symbol, "exchange": e.exchange, "currency": e.currency, "active": True} for e in current.entries]),
    )
    if removed:
        # removed symbols keep their history but are no longer traded or ingested
        upsert_instruments(engine, pd.DataFrame({"symbol": removed, "active": False}))
    reopened = _reopen_months(context, engine, config.data, list(current.symbols), added, market_clock.last_session())
    if reopened:
        context.log.info(
            f"{len(added)} symbol(s) added ({', '.join(added[:10])}): {len(reopened)} months of bars and all months "
            "of features are missing again; the next backfill fetches only the added symbols"
        )
    if current.duplicates_dropped:
        context.log.warning(f"watchlist duplicates dropped: {', '.join(current.duplicates_dropped)}")
    snapshot = WatchlistSnapshot(current.snapshot_hash, tuple(current.symbols), current.source)
    return dg.Output(
        snapshot,
        metadata={
            "snapshot_hash": current.snapshot_hash,
            "symbols": dg.MetadataValue.text(", ".join(current.symbols)),
            "count": len(current.symbols),
            "added": ", ".join(added),
            "removed": ", ".join(removed),
            "months_reopened": len(reopened),
            "source": current.source,
            "config_hash": config.config_hash,
        },
    )
