"""The Dagster layer at real-universe scale: backfills through the real asset path.

Every run here goes through Dagster (the ``bars`` asset in a job run recorded in a PostgreSQL
instance, the embedded server under a temporary TT_HOME) with the platform's resources:
- 500 symbols x 20 years of daily bars from the synthetic source, side by side with the same
  run against a source that answers every request with no bars (what Dagster and the partition
  bookkeeping cost by themselves);
- 50 symbols x 20 years through the bundled IB Gateway emulator with pacing on;
- a nightly update (one new session) for 500 symbols through the emulator;
- the UI's partition-status GraphQL query for ``bars`` after the 500-symbol backfill.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date
from pathlib import Path

import dagster as dg

from tt_platform.bench.harness import BenchResult
from tt_platform.config.run_config import RunConfig
from tt_platform.data.sessions import last_completed_session
from tt_platform.data.sources.base import BarRequest, BarSource, FetchReport, OnBars, SymbolBars
from tt_platform.data.bars import empty_bars
from tt_platform.defs.market_data.partitions import range_tags
from tt_platform.defs.market_data.resources import BarSourceResource, MarketClockResource
from tt_platform.defs.platform.resources import PlatformResource, RunConfigResource, dagster_run_config
from tt_platform.settings import PlatformSettings
from tt_platform.store.engine import database_url

BACKFILL_TARGET_S = 300.0
BOOKKEEPING_SHARE = 0.20
NIGHTLY_TARGET_S = 60.0
STATUS_QUERY_TARGET_S = 2.0

PARTITION_STATUS_QUERY = """
query PartitionHealthQuery($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      id
      partitionKeysByDimension { name type partitionKeys }
      assetPartitionStatuses {
        ... on TimePartitionStatuses { ranges { status startTime endTime startKey endKey } }
        ... on DefaultPartitionStatuses { materializedPartitions materializingPartitions failedPartitions }
      }
    }
  }
}
"""


class SilentSource(BarSource):
    """Answers every request at once with no bars (no symbol is listed yet): the run then costs
    only Dagster's and the partitions' bookkeeping."""

    name = "silent"

    def fetch(self, requests: Sequence[BarRequest], *, interval: str, adjusted: bool, on_bars: OnBars) -> FetchReport:
        nothing = empty_bars()
        for request in requests:
            on_bars(SymbolBars(request.symbol, request.start, request.end, nothing, listed_from=date(2200, 1, 1)))
        return FetchReport()


class SilentSourceResource(BarSourceResource):
    def build(self, data, settings) -> BarSource:
        return SilentSource()


@contextmanager
def platform_home() -> Iterator[tuple[PlatformSettings, dg.DagsterInstance]]:
    """A temporary TT_HOME whose embedded PostgreSQL also holds the Dagster instance's storage."""
    with tempfile.TemporaryDirectory(prefix="tt-bench-dagster-") as folder:
        home = Path(folder)
        settings = PlatformSettings(TT_HOME=str(home))
        from tt_platform.pipeline.store_access import open_store

        open_store(settings)  # starts the embedded server and migrates the tt_ schema
        url = database_url(settings) + "&options=-csynchronous_commit%3Doff"
        dagster_home = home / "dagster"
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text(
            f"storage:\n  postgres:\n    postgres_url: \"{url}\"\ntelemetry:\n  enabled: false\n"
        )
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            yield settings, instance


def _symbols(n: int) -> list[str]:
    return [f"S{i:03d}" for i in range(n)]


def backfill(
    settings: PlatformSettings,
    instance: dg.DagsterInstance,
    symbols: list[str],
    start: date,
    end: date,
    *,
    source: str = "synthetic",
    source_resource: BarSourceResource | None = None,
    as_of: date | None = None,
) -> tuple[float, dg.ExecuteInProcessResult]:
    """Materialize watchlist and bars for [start, end] as one run; returns (seconds, result)."""
    from tt_platform.definitions import defs

    config = RunConfig.model_validate(
        {"universe": {"symbols": symbols}, "data": {"source": source, "start": start.isoformat(), "end": end.isoformat()}}
    )
    resources = {
        "platform": PlatformResource(tt_home=str(settings.home)),
        "bar_source": source_resource or BarSourceResource(),
        "market_clock": MarketClockResource(as_of=(as_of or end).isoformat()),
    }
    started = time.perf_counter()
    result = dg.materialize(
        [a for a in defs.assets if getattr(a, "key", None) in (dg.AssetKey("watchlist"), dg.AssetKey("bars"))],
        instance=instance,
        resources={**{k: v for k, v in defs.resources.items() if k in ("run_config", "lineage_io_manager")}, **resources},
        run_config=dagster_run_config(config),
        tags=range_tags(start, end),
        raise_on_error=False,
    )
    elapsed = time.perf_counter() - started
    if not result.success:
        failures = [e.step_failure_data.error.message for e in result.all_events if e.is_step_failure]
        raise RuntimeError(f"backfill failed: {failures[:1]}")
    return elapsed, result


def partition_status_seconds(instance: dg.DagsterInstance) -> tuple[float, int]:
    """Time of the UI's partition-status query for ``bars`` (as the Partitions tab asks it), and
    the number of materialized keys it reported."""
    from dagster._core.test_utils import in_process_test_workspace
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster_graphql.test.utils import execute_dagster_graphql

    origin = LoadableTargetOrigin(module_name="tt_platform.definitions", attribute="defs")
    with in_process_test_workspace(instance, origin) as context:
        execute_dagster_graphql(context, PARTITION_STATUS_QUERY, {"assetKey": {"path": ["bars"]}})  # warm the code location
        started = time.perf_counter()
        answer = execute_dagster_graphql(context, PARTITION_STATUS_QUERY, {"assetKey": {"path": ["bars"]}})
        elapsed = time.perf_counter() - started
    if answer.errors:
        raise RuntimeError(f"partition status query failed: {answer.errors[0]}")
    node = answer.data["assetNodeOrError"]
    materialized = 0
    for status in node["assetPartitionStatuses"].get("ranges", []):
        if status["status"] == "MATERIALIZED":
            keys = node["partitionKeysByDimension"][0]["partitionKeys"]
            materialized += keys.index(status["endKey"]) - keys.index(status["startKey"]) + 1
    return elapsed, materialized


def measure(quick: bool = False) -> list[BenchResult]:
    years = 2 if quick else 20
    big, ib_symbols = (50, 10) if quick else (500, 50)
    last = last_completed_session()
    start = history_start(quick)
    results: list[BenchResult] = []
    label = f"{big} symbols x {years} y daily"

    with platform_home() as (settings, instance):
        bookkeeping, _ = backfill(settings, instance, _symbols(big), start, last, source_resource=SilentSourceResource())
    with platform_home() as (settings, instance):
        full, _ = backfill(settings, instance, _symbols(big), start, last)
        query_s, materialized = partition_status_seconds(instance)
    share = bookkeeping / full
    results += [
        BenchResult(f"Dagster backfill {label}, synthetic", full, "s", f"<= {BACKFILL_TARGET_S:.0f} s", passed=full <= BACKFILL_TARGET_S),
        BenchResult(
            f"  bookkeeping share (same run, silent source: {bookkeeping:.1f} s)", share * 100, "%",
            f"<= {BOOKKEEPING_SHARE * 100:.0f} %", baseline=full, passed=share <= BOOKKEEPING_SHARE,
        ),
        BenchResult(
            f"UI partition-status query, bars {label} ({materialized} months materialized)", query_s, "s",
            f"<= {STATUS_QUERY_TARGET_S:.0f} s", passed=query_s <= STATUS_QUERY_TARGET_S,
        ),
    ]

    with platform_home() as (settings, instance):
        ib_bookkeeping, _ = backfill(settings, instance, _symbols(ib_symbols), start, last, source_resource=SilentSourceResource())
    with platform_home() as (settings, instance):
        ib_s, _ = backfill(settings, instance, _symbols(ib_symbols), start, last, source="emulator")
    ib_share = ib_bookkeeping / ib_s
    results += [
        BenchResult(
            f"Dagster backfill {ib_symbols} symbols x {years} y daily, IB emulator, pacing on", ib_s, "s",
            f"<= {BACKFILL_TARGET_S:.0f} s", passed=ib_s <= BACKFILL_TARGET_S,
        ),
        BenchResult(
            f"  bookkeeping share (same run, silent source: {ib_bookkeeping:.1f} s)", ib_share * 100, "%",
            f"<= {BOOKKEEPING_SHARE * 100:.0f} %", baseline=ib_s, passed=ib_share <= BOOKKEEPING_SHARE,
        ),
    ]

    with platform_home() as (settings, instance):
        from tt_platform.data.sessions import sessions_between

        previous = sessions_between(date(last.year, 1, 1), last)[-2].date()
        month_start = previous.replace(day=1)
        backfill(settings, instance, _symbols(big), month_start, previous, source="synthetic", as_of=previous)
        nightly, _ = backfill(settings, instance, _symbols(big), month_start, last, source="emulator", as_of=last)
    results.append(
        BenchResult(
            f"nightly update, {big} symbols, one new session, IB emulator", nightly, "s",
            f"<= {NIGHTLY_TARGET_S:.0f} s", passed=nightly <= NIGHTLY_TARGET_S,
        )
    )
    return results


def history_start(quick: bool) -> date:
    last = last_completed_session()
    return date(last.year - (2 if quick else 20), last.month, 1)


def run(quick: bool = False) -> list[BenchResult]:
    """Measure in a child process whose partitions start where the 20-year history does: the
    first partition month is a deployment setting, read when the code location loads."""
    from tt_platform.runtime import PLANNED_EVENTS_FLAG

    # the Dagster environment tt and `make ui` run with (see tt_platform.runtime)
    env = dict(os.environ, TT_PARTITION_START=history_start(quick).strftime("%Y-%m"), **{PLANNED_EVENTS_FLAG: "1"})
    command = [sys.executable, "-m", "tt_platform.bench.dagster_layer"] + (["--quick"] if quick else [])
    with tempfile.TemporaryDirectory(prefix="tt-bench-dagster-out-") as folder:
        out = Path(folder) / "results.json"
        completed = subprocess.run(command + ["--output", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"Dagster-layer benchmark failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
        return [BenchResult(**row) for row in json.loads(out.read_text())]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tt_platform.bench.dagster_layer")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.WARNING)
    rows = measure(quick=args.quick)
    Path(args.output).write_text(json.dumps([asdict(r) for r in rows]))
