"""Bars: per (day, symbol) partition, fetched from the configured source into tt_prices."""

import dagster as dg
import pandas as pd

from tt_platform.defs.market_data.checks import BAR_CHECK_SPECS, bar_check_results
from tt_platform.defs.market_data.partitions import BAR_PARTITIONS, group_by_window, requested_windows
from tt_platform.defs.platform.resources import PlatformResource, RunConfigResource
from tt_platform.pipeline.market_data import IngestSummary, ingest
from tt_platform.pipeline.universe import resolve_watchlist
from tt_platform.store.registry import upsert_instruments


def _combined(summaries: list[IngestSummary], source: str) -> IngestSummary:
    firsts = [s.first_ts for s in summaries if s.first_ts is not None]
    lasts = [s.last_ts for s in summaries if s.last_ts is not None]
    return IngestSummary(
        symbols=tuple(sym for s in summaries for sym in s.symbols),
        rows=sum(s.rows for s in summaries),
        first_ts=min(firsts) if firsts else None,
        last_ts=max(lasts) if lasts else None,
        source=source,
        refused=tuple(sym for s in summaries for sym in s.refused),
    )


@dg.asset(
    group_name="market_data",
    partitions_def=BAR_PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["watchlist"],
    check_specs=BAR_CHECK_SPECS,
    description="OHLCV bars in tt_prices, one partition per day and symbol; re-runs replace their slice.",
)
def bars(context: dg.AssetExecutionContext, platform: PlatformResource, run_config: RunConfigResource):
    config = run_config.load()
    windows = requested_windows(context, resolve_watchlist(config).symbols)
    summaries = []
    # one ingest per window: an IB client (and its pacer) then serves every symbol of the run
    for (start, end), symbols in group_by_window(windows).items():
        summary = ingest(platform.engine(), config.data, symbols, start, end, platform.settings)
        summaries.append(summary)
        context.log.info(f"{len(symbols)} symbols, {summary.rows} bars {start}..{end} from {summary.source}")
    total = _combined(summaries, config.data.source)
    if total.refused:
        # record why these have no bars; the coverage check fails for them and says which
        upsert_instruments(
            platform.engine(), pd.DataFrame({"symbol": sorted(set(total.refused)), "unresolved_reason": "refused by source"})
        )
    yield dg.MaterializeResult(metadata=total.as_metadata() | {"interval": config.data.interval})
    yield from bar_check_results(platform.engine(), config, windows)
