"""Feature library speed: full feature set on 500 symbols x 10 years, features with their
storage for 500 symbols x 20 years, and tick -> bar aggregation.

Side by side in one run:
* ``compute_features`` (full set, >= 30 columns) against the 5 s budget; for scale, Qlib's
  published Alpha-style feature extraction takes 7.4 s for 800 stocks x 14 features.
* the basic set against the same features written the usual pandas way (per-symbol groupby with
  rolling windows and a rolling z-score), on the same bars.
* vectorised tick aggregation (target >= 1M ticks/s) against ``pandas.resample().ohlc()``, plus
  the streaming aggregator the live loop uses.
* storage (``storage_results``), on a PostgreSQL server (``TT_BENCH_DATABASE_URL`` or a private
  embedded one, durable in the full run): ``build_features`` for the full set on 500 symbols x
  20 years of daily bars stored in ``tt_prices`` (read bars, compute, write the wide rows in one
  transaction) against the 5 min budget on 2 cores, its parts, the re-run of the same window,
  ``load_feature_matrix`` of the whole universe, and, on a 50-symbol slice, the wide rows against
  the long table (one row per value) they replaced: write, read back as a matrix, bytes per value.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tt_platform.bench.harness import BenchResult
from tt_platform.data.aggregation import TickBarAggregator, aggregate_ticks
from tt_platform.features.compute import compute_features
from tt_platform.features.sets import basic_feature_set, full_feature_set

TARGET_SECONDS = 5.0
TARGET_TICKS_PER_SECOND = 1_000_000
QLIB_CONTEXT = "Qlib: 7.4 s for 800 stocks x 14 features"
STORAGE_TARGET_SECONDS = 300.0


def _bars(n_symbols: int, years: int) -> pd.DataFrame:
    from tt_platform.data.synthetic import generate_bars

    symbols = ["SPY"] + [f"S{i:03d}" for i in range(n_symbols - 1)]
    end = pd.Timestamp("2021-12-31")
    return generate_bars(symbols, end - pd.DateOffset(years=years) + pd.Timedelta(days=1), end, seed=1)


def _timed(function, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def pandas_basic_features(bars: pd.DataFrame, window: int = 60) -> pd.DataFrame:
    """The basic set the conventional way: groupby symbol, rolling windows, rolling z-score."""
    frame = bars.set_index("ts")
    close = frame.groupby("symbol")["close"]
    out = pd.DataFrame(
        {
            "symbol": frame["symbol"],
            "ret_1": close.pct_change(1),
            "ret_5": close.pct_change(5),
            "ret_20": close.pct_change(20),
            "log_ret_1": np.log(frame["close"] / close.shift(1)),
        }
    )
    out["vol_20"] = out.groupby("symbol")["log_ret_1"].transform(lambda s: s.rolling(20).std(ddof=0))
    features = ["ret_1", "ret_5", "ret_20", "log_ret_1", "vol_20"]
    grouped = out.groupby("symbol")[features]
    mean = grouped.transform(lambda s: s.rolling(window).mean())
    std = grouped.transform(lambda s: s.rolling(window).std(ddof=0))
    return ((out[features] - mean) / std).fillna(0.0)


def _ticks(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One New York session of trade ticks with bursts of same-millisecond prints."""
    rng = np.random.default_rng(seed)
    open_ns = pd.Timestamp("2021-03-01 09:30", tz="America/New_York").value
    ms = np.sort(rng.integers(0, 6.5 * 3600 * 1000, n))
    ts = open_ns + ms * 1_000_000
    price = np.round(400 * np.exp(np.cumsum(rng.normal(0, 2e-5, n))), 2)
    size = rng.integers(1, 500, n).astype(np.float64)
    return ts, price, size


def _stream(ts: np.ndarray, price: np.ndarray, size: np.ndarray) -> int:
    aggregator = TickBarAggregator("1min", "America/New_York")
    bars = 0
    for t, p, s in zip(ts.tolist(), price.tolist(), size.tolist()):
        bars += len(aggregator.push(t, p, s))
    return bars + len(aggregator.flush())


def run(quick: bool = False) -> list[BenchResult]:
    n_symbols, years = (50, 2) if quick else (500, 10)
    tag = " [quick]" if quick else ""
    bars = _bars(n_symbols, years)
    full = full_feature_set()
    compute_features(bars[bars["symbol"].isin(["SPY", "S000"])], full)  # warm imports and TA-Lib
    # best of two: the machine is shared, the minimum is the least disturbed measurement
    runs = [_timed(compute_features, bars, full) for _ in range(1 if quick else 2)]
    matrix, wall, cpu = min(runs, key=lambda run: run[1])
    del runs
    n_t, n_s, n_f = matrix.shape
    label = f"{n_s} symbols x {n_t} days x {n_f} features"
    results = [
        BenchResult(
            name=f"features: full set, {label}{tag}",
            value=wall,
            unit="s",
            target=f"<= {TARGET_SECONDS:.0f} s on one core ({QLIB_CONTEXT})",
            baseline=TARGET_SECONDS,
            ratio=TARGET_SECONDS / wall,
            passed=wall <= TARGET_SECONDS,
        ),
        BenchResult(
            name=f"features: full set CPU time (one thread){tag}",
            value=cpu,
            unit="s",
            target="CPU ~ wall: single-threaded",
        ),
    ]

    del matrix
    basic = basic_feature_set()
    ours = min(_timed(compute_features, bars, basic)[1] for _ in range(2))
    conventional = min(_timed(pandas_basic_features, bars, basic.normalize_window)[1] for _ in range(2))
    results.append(
        BenchResult(
            name=f"features: basic set vs pandas groupby-rolling, {n_s} symbols{tag}",
            value=ours,
            unit="s",
            target="faster than pandas groupby",
            baseline=conventional,
            ratio=conventional / ours,
            passed=ours < conventional,
        )
    )

    n_ticks = 200_000 if quick else 2_000_000
    ts, price, size = _ticks(n_ticks)
    aggregate_ticks(ts[:1000], price[:1000], size[:1000])
    vectorised, seconds, _ = min(
        (_timed(aggregate_ticks, ts, price, size, "1min", tz="America/New_York") for _ in range(3)),
        key=lambda run: run[1],
    )
    frame = pd.DataFrame({"price": price, "size": size}, index=pd.DatetimeIndex(ts, tz="UTC"))
    pandas_seconds = min(
        _timed(lambda: frame["price"].resample("1min").ohlc().join(frame["size"].resample("1min").sum()).dropna())[1]
        for _ in range(3)
    )
    rate = n_ticks / seconds
    results.append(
        BenchResult(
            name=f"tick->bar vectorised, {n_ticks:,} ticks -> {len(vectorised)} bars{tag}",
            value=rate,
            unit="ticks/s",
            target=f">= {TARGET_TICKS_PER_SECOND:,} ticks/s (baseline: pandas resample)",
            baseline=n_ticks / pandas_seconds,
            ratio=pandas_seconds / seconds,
            passed=rate >= TARGET_TICKS_PER_SECOND,
        )
    )
    n_stream = 50_000 if quick else 500_000
    streamed, stream_seconds, _ = _timed(_stream, ts[:n_stream], price[:n_stream], size[:n_stream])
    results.append(
        BenchResult(
            name=f"tick->bar streaming (live path), {n_stream:,} ticks -> {streamed} bars{tag}",
            value=n_stream / stream_seconds,
            unit="ticks/s",
            target="reported (one Python call per tick)",
        )
    )
    del ts, price, size, frame, vectorised, bars
    return results + storage_results(quick)


# -- storage ------------------------------------------------------------------------------------

# The long table features were stored in before the wide rows (revision 0001), for the comparison.
_long_metadata = sa.MetaData()
LONG_TABLE = sa.Table(
    "bench_features_long",
    _long_metadata,
    sa.Column("instrument", sa.Text(collation="C"), nullable=False),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("feature_set_hash", sa.Text(collation="C"), nullable=False),
    sa.Column("feature", sa.Text(collation="C"), nullable=False),
    sa.Column("value", sa.Double(), nullable=True),
    sa.Column("valid", sa.Boolean, nullable=False),
    sa.PrimaryKeyConstraint("feature_set_hash", "instrument", "ts", "feature"),
    sa.Index("ix_bench_features_long_instrument_ts", "instrument", "ts"),
)
LONG_KEY = ["feature_set_hash", "instrument", "ts", "feature"]
SLICE_HASH = "bench-slice"


def _write_long(engine, matrix) -> int:
    """The previous ``build_features`` write: long rows, window deleted then upserted."""
    from tt_platform.store.transaction import transaction
    from tt_platform.store.upsert import upsert_frame

    long = matrix.to_long().astype({"instrument": str, "feature": str})
    long = long.assign(feature_set_hash=matrix.feature_set_hash, instrument=long["instrument"].str.upper())
    with transaction(engine) as conn:
        conn.execute(
            sa.delete(LONG_TABLE).where(
                LONG_TABLE.c.feature_set_hash == matrix.feature_set_hash,
                LONG_TABLE.c.instrument.in_(matrix.symbols),
            )
        )
        return upsert_frame(conn, LONG_TABLE, long[[c.name for c in LONG_TABLE.columns]], LONG_KEY)


def _read_long(engine, feature_set, symbols):
    """The previous ``load_feature_matrix``: long rows read back and pivoted into a matrix."""
    from tt_platform.features.matrix import FeatureMatrix
    from tt_platform.store.query import read_frame

    columns = [LONG_TABLE.c[c] for c in ("instrument", "ts", "feature", "value", "valid")]
    statement = (
        sa.select(*columns)
        .where(LONG_TABLE.c.feature_set_hash == SLICE_HASH, LONG_TABLE.c.instrument.in_(symbols))
        .order_by(LONG_TABLE.c.instrument, LONG_TABLE.c.ts, LONG_TABLE.c.feature)
    )
    return FeatureMatrix.from_long(read_frame(engine, statement), feature_set)


def _relation_bytes(engine, name: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_total_relation_size(:name)"), {"name": name}).scalar_one())


def _identical(a, b) -> bool:
    return (
        a.timestamps.equals(b.timestamps)
        and a.symbols == b.symbols
        and np.array_equal(a.values.view(np.uint32), b.values.view(np.uint32))
        and np.array_equal(a.mask, b.mask)
    )


def storage_results(quick: bool = False) -> list[BenchResult]:
    """Features with their storage in PostgreSQL (see the module docstring)."""
    import dataclasses

    from tt_platform.bench.store import _bench_schema
    from tt_platform.pipeline.features import build_features, load_feature_matrix
    from tt_platform.store.features import read_feature_matrix, write_feature_matrix
    from tt_platform.store.prices import read_bars, write_bars

    n_symbols, years, n_slice = (50, 2, 10) if quick else (500, 20, 50)
    tag = " [quick]" if quick else ""
    full = full_feature_set()
    daily = {"interval": "1d", "adjusted": False}
    bars = _bars(n_symbols, years)
    symbols = sorted(bars["symbol"].unique())
    start, end = bars["ts"].min().date(), bars["ts"].max().date()
    results: list[BenchResult] = []
    with _bench_schema(quick) as engine:
        write_bars(engine, bars, source="bench", **daily)
        del bars
        summary, wall, _ = _timed(
            build_features, engine, symbols, start, end, feature_set=full, context_symbols=symbols, **daily
        )
        wide_bytes = _relation_bytes(engine, "tt_feature_values") / summary.values  # before any re-write
        label = f"{len(symbols)} symbols x {years} years ({summary.rows:,} rows, {summary.values:,} values)"
        results.append(
            BenchResult(
                name=f"features + storage: full set, {label}{tag}",
                value=wall,
                unit="s",
                target=f"<= {STORAGE_TARGET_SECONDS:.0f} s on 2 cores (build_features: read bars, compute, store)",
                baseline=STORAGE_TARGET_SECONDS,
                ratio=STORAGE_TARGET_SECONDS / wall,
                passed=wall <= STORAGE_TARGET_SECONDS,
            )
        )
        # its parts, measured again on their own; storing is the rest of the build
        stored_bars, read_seconds, _ = _timed(read_bars, engine, symbols, **daily)
        matrix, compute_seconds, _ = _timed(compute_features, stored_bars, full)
        del stored_bars
        # training's read right after the build, then the re-run of the same window
        loaded, load_seconds, _ = _timed(load_feature_matrix, engine, symbols, start, end, full)
        exact = _identical(loaded, matrix)
        del loaded
        rewrite, rewrite_seconds, _ = _timed(write_feature_matrix, engine, matrix, definition=full.canonical())
        if rewrite.rows != summary.rows or rewrite.deleted != summary.rows:
            raise RuntimeError(
                f"the re-run wrote {rewrite.rows} rows and deleted {rewrite.deleted}, expected {summary.rows}"
            )
        parts = (
            ("read bars from tt_prices", read_seconds),
            ("compute_features", compute_seconds),
            ("store the wide rows (the rest of the build)", max(wall - read_seconds - compute_seconds, 0.0)),
        )
        for name, seconds in parts:
            results.append(
                BenchResult(
                    name=f"features + storage: {name}, {len(symbols)} symbols{tag}",
                    value=seconds,
                    unit="s",
                    target="part of the above",
                )
            )
        results += [
            BenchResult(
                name=f"features + storage: re-run of the window (replaces {rewrite.rows:,} rows){tag}",
                value=rewrite_seconds,
                unit="s",
                target="reported (delete + insert, one transaction)",
                passed=rewrite_seconds <= STORAGE_TARGET_SECONDS,
            ),
            BenchResult(
                name=f"features + storage: load_feature_matrix, {len(symbols)} symbols x {years} years{tag}",
                value=load_seconds,
                unit="s",
                target="values and masks bit-identical (float32) to the computed matrix",
                passed=exact,
            ),
        ]

        # the same slice stored both ways: wide rows vs the long table they replaced
        part = dataclasses.replace(matrix.select_symbols(symbols[:n_slice]), feature_set_hash=SLICE_HASH)
        del matrix
        _long_metadata.create_all(engine)
        wide_write, wide_seconds, _ = _timed(write_feature_matrix, engine, part)
        _, long_seconds, _ = _timed(_write_long, engine, part)
        wide_back, wide_read_seconds, _ = _timed(
            read_feature_matrix, engine, SLICE_HASH, part.symbols, feature_names=full.feature_names
        )
        long_back, long_read_seconds, _ = _timed(_read_long, engine, full, part.symbols)
        exact = _identical(wide_back, part) and _identical(long_back, part)
        del wide_back, long_back
        long_bytes = _relation_bytes(engine, LONG_TABLE.name) / wide_write.values
        slice_label = f"{n_slice} symbols x {years} years, {wide_write.values:,} values{tag}"
        results += [
            BenchResult(
                name=f"features storage write: wide rows vs long table, {slice_label}",
                value=wide_seconds,
                unit="s",
                target="faster than the long table",
                baseline=long_seconds,
                ratio=long_seconds / wide_seconds,
                passed=wide_seconds < long_seconds,
            ),
            BenchResult(
                name=f"features storage read as a matrix: wide rows vs long table, {slice_label}",
                value=wide_read_seconds,
                unit="s",
                target="faster than the long table; both exact",
                baseline=long_read_seconds,
                ratio=long_read_seconds / wide_read_seconds,
                passed=wide_read_seconds < long_read_seconds and exact,
            ),
            BenchResult(
                name=f"features storage size: wide rows vs long table (with indexes){tag}",
                value=wide_bytes,
                unit="bytes/value",
                target="smaller than the long table",
                baseline=long_bytes,
                ratio=long_bytes / wide_bytes,
                passed=wide_bytes < long_bytes,
            ),
        ]
    return results


if __name__ == "__main__":
    from tt_platform.bench.harness import format_table

    print(format_table(run()))
