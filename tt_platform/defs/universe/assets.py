"""The watchlist asset: the universe snapshot, and the symbol partitions that follow it."""


import dagster as dg
import pandas as pd

from tt_platform.defs.market_data.partitions import SYMBOLS
from tt_platform.defs.platform.resources import PlatformResource, RunConfigResource
from tt_platform.pipeline.universe import resolve_watchlist
from tt_platform.store.registry import record_watchlist, upsert_instruments


@dg.asset(group_name="universe", description="The traded universe; its snapshot hash is carried downstream.")
def watchlist(context: dg.AssetExecutionContext, platform: PlatformResource, run_config: RunConfigResource) -> dg.MaterializeResult:
    current = resolve_watchlist(run_config.load())
    record_watchlist(platform.engine(), current.snapshot_hash, current.symbols, current.source)
    registered = set(context.instance.get_dynamic_partitions(SYMBOLS.name))
    added = [s for s in current.symbols if s not in registered]
    removed = sorted(registered - set(current.symbols))
    engine = platform.engine()
    # removed symbols keep their history but are no longer traded or ingested
    upsert_instruments(
        engine,
        pd.DataFrame([{"symbol": e.symbol, "exchange": e.exchange, "currency": e.currency, "active": True} for e in current.entries]),
    )
    if removed:
        upsert_instruments(engine, pd.DataFrame({"symbol": removed, "active": False}))
    if added:
        context.instance.add_dynamic_partitions(SYMBOLS.name, added)
    for symbol in removed:
        context.instance.delete_dynamic_partition(SYMBOLS.name, symbol)
    if current.duplicates_dropped:
        context.log.warning(f"watchlist duplicates dropped: {', '.join(current.duplicates_dropped)}")
    return dg.MaterializeResult(
        metadata={
            "snapshot_hash": current.snapshot_hash,
            "symbols": dg.MetadataValue.text(", ".join(current.symbols)),
            "count": len(current.symbols),
            "added": ", ".join(added),
            "removed": ", ".join(removed),
            "source": current.source,
        }
    )
