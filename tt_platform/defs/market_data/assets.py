"""Bars: per (day, symbol) partition, fetched from the configured source into tt_prices."""


import dagster as dg
import pandas as pd

from tt_platform.defs.market_data.checks import BAR_CHECK_SPECS, bar_check_results
from tt_platform.defs.market_data.partitions import BAR_PARTITIONS, requested_windows
from tt_platform.defs.platform.resources import PlatformResource, RunConfigResource
from tt_platform.pipeline.market_data import ingest
from tt_platform.store.registry import upsert_instruments


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
    windows = requested_windows(context)
    total_rows, refused = 0, []
    first, last = None, None
    for symbol, (start, end) in windows.items():
        summary = ingest(platform.engine(), config.data, [symbol], start, end, platform.settings)
        total_rows += summary.rows
        refused.extend(summary.refused)
        first = summary.first_ts if first is None or (summary.first_ts is not None and summary.first_ts < first) else first
        last = summary.last_ts if last is None or (summary.last_ts is not None and summary.last_ts > last) else last
        context.log.info(f"{symbol}: {summary.rows} bars {start}..{end} from {summary.source}")
    if refused:
        # the source could not resolve these: mark them so nothing downstream waits for them
        upsert_instruments(platform.engine(), pd.DataFrame({"symbol": sorted(set(refused)), "unresolved_reason": "refused by source"}))
    yield dg.MaterializeResult(
        metadata={
            "rows": total_rows,
            "symbols": len(windows),
            "first_ts": str(first or ""),
            "last_ts": str(last or ""),
            "source": config.data.source,
            "interval": config.data.interval,
            "refused_symbols": ", ".join(refused),
        }
    )
    yield from bar_check_results(platform.engine(), config, windows)
