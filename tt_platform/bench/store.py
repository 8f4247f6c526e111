"""Storage benchmark: bar upserts into PostgreSQL against ``DataFrame.to_sql``.

Measured side by side in one run, on one server (``TT_BENCH_DATABASE_URL`` or a private
embedded server in a temporary folder), inside a throwaway schema:

- write throughput of ``write_bars`` (validation + binary COPY + ON CONFLICT upsert into the
  keyed ``tt_prices``) vs ``to_sql(method="multi", chunksize=1000)`` into a plain table without
  keys, on the same bars;
- read throughput of ``read_bars`` vs ``pandas.read_sql`` of the same rows;
- a 1M-bar upsert into an empty ``tt_prices`` and the idempotent re-run of the same 1M bars.

``quick=True`` (smoke test) compares on 5k bars and upserts 20k; the absolute targets are for
1M bars, so they are only checked in the full run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from tt_platform.bench.harness import BenchResult, stopwatch
from tt_platform.data.bars import normalize_bars
from tt_platform.store.embedded import EmbeddedPostgres
from tt_platform.store.engine import create_store_engine, ensure_schema, normalize_url
from tt_platform.store.prices import read_bars, write_bars

BENCH_URL_ENV = "TT_BENCH_DATABASE_URL"
TO_SQL_CHUNK = 1_000
WRITE = {"source": "bench", "interval": "1d", "adjusted": False}


def bench_bars(n_symbols: int, n_days: int, seed: int = 0) -> pd.DataFrame:
    """Canonical daily bars for ``n_symbols`` x ``n_days`` (random walks, realistic digits)."""
    rng = np.random.default_rng(seed)
    n = n_symbols * n_days
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_symbols, n_days)), axis=1)).ravel()
    open_ = close * (1 + rng.normal(0, 0.003, n))
    spread = rng.random(n) / 100
    frame = pd.DataFrame(
        {
            "symbol": np.repeat([f"S{i:04d}" for i in range(n_symbols)], n_days),
            "ts": np.tile(pd.date_range("1990-01-01", periods=n_days, freq="D", tz="UTC"), n_symbols),
            "open": open_,
            "high": np.maximum(open_, close) * (1 + spread),
            "low": np.minimum(open_, close) * (1 - spread),
            "close": close,
            "volume": rng.integers(100, 10**8, n).astype("float64"),
        }
    )
    return normalize_bars(frame, origin="bench_bars")


@contextmanager
def _bench_schema(quick: bool) -> Iterator[Engine]:
    """An engine on a fresh, migrated schema that is dropped afterwards."""
    folder = None
    server = None
    configured = os.environ.get(BENCH_URL_ENV)
    if configured:
        server_url = normalize_url(configured).render_as_string(hide_password=False)
    else:
        folder = tempfile.mkdtemp(prefix="tt-bench-pg-")
        # the full run measures a durable server, as deployed; quick runs only smoke-test
        server = EmbeddedPostgres(os.path.join(folder, "pg"), durable=not quick).start()
        server_url = server.url()
    schema = f"tt_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_store_engine(server_url, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = create_store_engine(url)
    try:
        ensure_schema(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()
        if server is not None:
            server.stop()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _empty_prices(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE tt_prices")


def _write_comparison(engine: Engine, bars: pd.DataFrame) -> list[BenchResult]:
    _empty_prices(engine)
    with stopwatch() as elapsed:
        written = write_bars(engine, bars, **WRITE)
    ours = written / elapsed()

    plain = bars.rename(columns={"symbol": "instrument"}).assign(interval="1d", adjusted=False, source="bench")
    plain.head(0).to_sql("bench_plain_prices", engine, index=False, if_exists="replace")
    with stopwatch() as elapsed:
        plain.to_sql(
            "bench_plain_prices", engine, index=False, if_exists="append", method="multi", chunksize=TO_SQL_CHUNK
        )
    baseline = len(plain) / elapsed()

    with stopwatch() as elapsed:
        back = read_bars(engine)
    read_ours = len(back) / elapsed()
    with stopwatch() as elapsed:
        with engine.connect() as conn:
            frame = pd.read_sql("SELECT * FROM tt_prices ORDER BY instrument, ts", conn)
    read_baseline = len(frame) / elapsed()
    ratio = ours / baseline
    return [
        BenchResult(
            name="store.bar_upsert_throughput",
            value=ours,
            unit="rows/s",
            target=">= 10x to_sql(method='multi')",
            baseline=baseline,
            ratio=ratio,
            passed=ratio >= 10,
        ),
        BenchResult(
            name="store.bar_read_throughput",
            value=read_ours,
            unit="rows/s",
            target="faster than pandas.read_sql",
            baseline=read_baseline,
            ratio=read_ours / read_baseline,
            passed=read_ours > read_baseline,
        ),
    ]


def _bulk_upserts(engine: Engine, bars: pd.DataFrame, full_size: bool) -> list[BenchResult]:
    label = f"{len(bars) / 1e6:g}M" if len(bars) >= 1_000_000 else f"{len(bars) // 1000}k"
    _empty_prices(engine)
    with stopwatch() as elapsed:
        write_bars(engine, bars, **WRITE)
    fresh = elapsed()
    with stopwatch() as elapsed:
        rewritten = write_bars(engine, bars, **WRITE)
    rerun = elapsed()
    if rewritten != 0:
        raise RuntimeError(f"the idempotent re-run rewrote {rewritten} rows; expected none")
    return [
        BenchResult(
            name=f"store.upsert_{label}_bars",
            value=fresh,
            unit="s",
            target="<= 10 s for 1M bars",
            passed=fresh <= 10 if full_size else None,
        ),
        BenchResult(
            name=f"store.rerun_{label}_bars",
            value=rerun,
            unit="s",
            target="<= 5 s for 1M bars",
            passed=rerun <= 5 if full_size else None,
        ),
    ]


def run(quick: bool = False) -> list[BenchResult]:
    compare_bars = bench_bars(10, 500) if quick else bench_bars(20, 2_500)
    bulk_bars = bench_bars(20, 1_000) if quick else bench_bars(400, 2_500)
    with _bench_schema(quick) as engine:
        results = _write_comparison(engine, compare_bars)
        results += _bulk_upserts(engine, bulk_bars, full_size=len(bulk_bars) >= 1_000_000)
    return results

