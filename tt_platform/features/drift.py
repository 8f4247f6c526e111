"""Feature drift: a JSON baseline of each feature's distribution, and PSI / KS against new data.

The baseline describes the *raw* values over valid entries when the matrix has them (normalized
values are z-scores against a rolling window and hide slow level shifts), else the normalized
values (matrices rebuilt from the store carry only those). For each feature it keeps summary
statistics, decile bin edges with the baseline share of each bin (for the Population Stability
Index), and the empirical CDF at 101 quantile points (for a Kolmogorov-Smirnov statistic without
storing the sample: the maximum CDF gap over those points, a lower bound within about 1 % of the
exact KS distance). Plain floats and lists only, so it can be stored next to a trained policy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from tt_platform.features.matrix import FeatureMatrix

BASELINE_FORMAT = 1
PSI_THRESHOLD = 0.2  # customary "significant shift" level
KS_THRESHOLD = 0.1
_PSI_FLOOR = 1e-4  # share given to an empty bin so the log stays finite


def _sorted_valid(matrix: FeatureMatrix, f: int, source: str) -> np.ndarray:
    array = matrix.raw if source == "raw" else matrix.values
    values = array[:, :, f][matrix.mask[:, :, f]].astype(np.float64)
    values = values[np.isfinite(values)]
    values.sort()
    return values


def _quantiles(ordered: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """numpy's default (linear) quantiles of an already sorted sample, without re-sorting."""
    position = probabilities * (len(ordered) - 1)
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _bin_shares(ordered: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Share of the sample in (-inf, e0), [e0, e1), ..., [e_last, inf)."""
    bounds = np.concatenate(([0], np.searchsorted(ordered, inner_edges, side="left"), [len(ordered)]))
    return np.diff(bounds) / max(len(ordered), 1)


def _cdf(ordered: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.searchsorted(ordered, points, side="right") / max(len(ordered), 1)


def _baseline_source(matrix: FeatureMatrix, source: str) -> str:
    if source not in ("auto", "raw", "values"):
        raise ValueError(f"source must be 'auto', 'raw' or 'values', got {source!r}")
    if source != "auto":
        return source
    # A matrix read back from the store has normalized values only (raw all NaN).
    return "raw" if np.isfinite(matrix.raw[matrix.mask]).any() else "values"


def feature_baseline(
    matrix: FeatureMatrix, *, bins: int = 10, cdf_points: int = 101, source: str = "auto"
) -> dict[str, Any]:
    """Per-feature distribution summary of a matrix's valid values (JSON-serialisable).

    ``source="raw"`` describes raw values, ``"values"`` the normalized ones; ``"auto"`` takes raw
    values when the matrix has them (computed matrices) and normalized ones otherwise (matrices
    rebuilt from the store). The choice is recorded and ``drift_report`` compares like with like.
    """
    source = _baseline_source(matrix, source)
    features: dict[str, Any] = {}
    summary_q = np.array([0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
    for f, name in enumerate(matrix.feature_names):
        values = _sorted_valid(matrix, f, source)
        if len(values) == 0:
            features[name] = {"count": 0}
            continue
        inner = np.unique(_quantiles(values, np.linspace(0, 1, bins + 1)[1:-1]))
        points = np.unique(_quantiles(values, np.linspace(0, 1, cdf_points)))
        features[name] = {
            "count": int(len(values)),
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values[0]),
            "max": float(values[-1]),
            "quantiles": {str(q): float(v) for q, v in zip(summary_q, _quantiles(values, summary_q))},
            "bin_edges": inner.tolist(),
            "bin_shares": _bin_shares(values, inner).tolist(),
            "cdf_points": points.tolist(),
            "cdf_values": _cdf(values, points).tolist(),
        }
    return {
        "format": BASELINE_FORMAT,
        "feature_set_hash": matrix.feature_set_hash,
        "source": source,
        "start": matrix.timestamps[0].isoformat() if len(matrix.timestamps) else None,
        "end": matrix.timestamps[-1].isoformat() if len(matrix.timestamps) else None,
        "symbols": list(matrix.symbols),
        "features": features,
    }


def population_stability_index(expected: np.ndarray, actual: np.ndarray) -> float:
    expected = np.maximum(np.asarray(expected, dtype=np.float64), _PSI_FLOOR)
    actual = np.maximum(np.asarray(actual, dtype=np.float64), _PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def drift_report(
    baseline: dict[str, Any],
    new_matrix: FeatureMatrix,
    *,
    psi_threshold: float = PSI_THRESHOLD,
    ks_threshold: float = KS_THRESHOLD,
) -> pd.DataFrame:
    """One row per baseline feature: counts, means, PSI, KS and ``drift`` (either over threshold)."""
    if baseline.get("format") != BASELINE_FORMAT or "features" not in baseline:
        raise ValueError(f"not a feature baseline (format {baseline.get('format')!r}, expected {BASELINE_FORMAT})")
    if baseline["feature_set_hash"] != new_matrix.feature_set_hash:
        raise ValueError(
            f"baseline is for feature set {baseline['feature_set_hash']}, matrix for {new_matrix.feature_set_hash}"
        )
    source = baseline.get("source", "raw")
    if source == "raw" and not np.isfinite(new_matrix.raw[new_matrix.mask]).any() and new_matrix.mask.any():
        raise ValueError("baseline describes raw values but the matrix has none (rebuilt from the store?)")
    missing = [name for name in baseline["features"] if name not in new_matrix.feature_names]
    if missing:
        raise ValueError(f"features in the baseline but not in the matrix: {missing}")
    rows = []
    for name, reference in baseline["features"].items():
        values = _sorted_valid(new_matrix, new_matrix.feature_index(name), source)
        row: dict[str, Any] = {
            "feature": name,
            "baseline_count": reference["count"],
            "new_count": int(len(values)),
            "baseline_mean": reference.get("mean", math.nan),
            "new_mean": float(values.mean()) if len(values) else math.nan,
            "psi": math.nan,
            "ks": math.nan,
        }
        if reference["count"] and len(values):
            edges = np.asarray(reference["bin_edges"], dtype=np.float64)
            row["psi"] = population_stability_index(reference["bin_shares"], _bin_shares(values, edges))
            points = np.asarray(reference["cdf_points"], dtype=np.float64)
            row["ks"] = float(np.max(np.abs(_cdf(values, points) - np.asarray(reference["cdf_values"]))))
        rows.append(row)
    report = pd.DataFrame(rows)
    report["drift"] = (report["psi"] > psi_threshold) | (report["ks"] > ks_threshold)
    return report
