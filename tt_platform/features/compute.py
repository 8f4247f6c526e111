"""``compute_features``: canonical bars + a ``FeatureSet`` -> ``FeatureMatrix``.

Pure and deterministic: the same bars and set give the same matrix, tagged with the set's hash.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from tt_platform.features.context import FeatureContext
from tt_platform.features.cross_section import EQUAL_WEIGHT_BENCHMARK
from tt_platform.features.matrix import FeatureMatrix
from tt_platform.features.normalize import normalize_feature
from tt_platform.features.panel import BarPanel
from tt_platform.features.spec import FeatureSet

log = logging.getLogger(__name__)

# Functions whose values depend on which series is the benchmark.
BENCHMARK_FUNCTIONS = frozenset({"relative_strength_benchmark"})


def compute_features(
    bars: pd.DataFrame, feature_set: FeatureSet, *, benchmark_symbol: str | None = "SPY"
) -> FeatureMatrix:
    """Compute every feature of ``feature_set`` for every symbol in ``bars``.

    ``bars`` is the canonical frame (``tt_platform.data.bars``). Rows of the result are the union
    of bar timestamps; a symbol without a bar at t is masked there. Relative-strength features
    compare against ``benchmark_symbol``; when it is not among the symbols they fall back to the
    equal-weight universe (logged, and recorded in ``FeatureMatrix.benchmark``).
    """
    return compute_panel_features(BarPanel.from_bars(bars), feature_set, benchmark_symbol=benchmark_symbol)


def compute_panel_features(
    panel: BarPanel, feature_set: FeatureSet, *, benchmark_symbol: str | None = "SPY"
) -> FeatureMatrix:
    """``compute_features`` on bars already laid out as a ``BarPanel``."""
    if benchmark_symbol is not None:
        benchmark_symbol = benchmark_symbol.upper()  # canonical bars carry upper-case symbols
    benchmark = _resolve_benchmark(panel, feature_set, benchmark_symbol)
    ctx = FeatureContext(panel=panel, benchmark_symbol=benchmark_symbol)
    layout = panel.layout

    raw_columns: list[np.ndarray] = []
    normalized_columns: list[np.ndarray] = []
    mask_columns: list[np.ndarray] = []
    compact_valid = None if layout.dense else layout.compact_valid
    for spec in feature_set.features:
        values = spec.feature_function.compute(ctx, **spec.resolved_params)
        if compact_valid is not None:
            # padding rows after a symbol's last bar hold no bar, whatever the function returned
            values = np.where(compact_valid, values, np.nan)
        z, valid = normalize_feature(
            values,
            warmup=spec.warmup_bars,
            window=feature_set.normalize_window,
            scaling=spec.scaling,
        )
        z[~valid] = 0.0
        raw_columns.append(layout.to_grid(values))
        normalized_columns.append(layout.to_grid(z, fill=0.0))
        mask_columns.append(layout.to_grid(valid))
    raw = stack_features(raw_columns, np.float64)
    normalized = stack_features(normalized_columns, np.float32)
    mask = stack_features(mask_columns, np.bool_)
    return FeatureMatrix(
        timestamps=panel.timestamps,
        symbols=panel.symbols,
        feature_names=feature_set.feature_names,
        values=normalized,
        raw=raw,
        mask=mask,
        feature_set_hash=feature_set.hash,
        present=layout.present.copy(),
        benchmark=benchmark,
    )


def stack_features(
    columns: list[np.ndarray], dtype: type, block_rows: int = 256, block_symbols: int = 16
) -> np.ndarray:
    """F arrays of [T, N] (any memory order) -> one C-ordered [T, N, F] array.

    Filled tile by tile so the interleaving writes stay in cache (writing one feature at a time
    across the whole array is several times slower).
    """
    n_t, n_s = columns[0].shape
    out = np.empty((n_t, n_s, len(columns)), dtype=dtype)
    for t0 in range(0, n_t, block_rows):
        for j0 in range(0, n_s, block_symbols):
            tile = out[t0 : t0 + block_rows, j0 : j0 + block_symbols]
            for f, column in enumerate(columns):
                tile[:, :, f] = column[t0 : t0 + block_rows, j0 : j0 + block_symbols]
    return out


def _resolve_benchmark(
    panel: BarPanel, feature_set: FeatureSet, benchmark_symbol: str | None
) -> str | None:
    uses_benchmark = any(s.function in BENCHMARK_FUNCTIONS for s in feature_set.features)
    if not uses_benchmark:
        return None
    if benchmark_symbol is not None and benchmark_symbol in panel.symbols:
        return benchmark_symbol
    log.warning(
        "benchmark symbol %r is not in the universe (%d symbols): relative strength uses the "
        "equal-weight universe mean instead",
        benchmark_symbol,
        len(panel.symbols),
    )
    return EQUAL_WEIGHT_BENCHMARK
