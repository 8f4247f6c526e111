"""On-disk cache of whole feature matrices (uncompressed ``.npz``: loads at disk speed).

An entry is addressed by (feature_set_hash, symbols, start, end, benchmark symbol): a changed
feature set has a new hash and so misses. The entry also records a digest of the bar data it was
computed from; when the same range is asked for with different bars (a corrected or extended
history), the digest differs, the entry is recomputed and replaced. Writes go to a temporary file
renamed into place, so a reader never sees half an entry and repeating a write is harmless.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tt_platform.data.bars import BAR_COLUMNS, BarValidationError
from tt_platform.features.compute import compute_features
from tt_platform.features.matrix import FeatureMatrix
from tt_platform.features.spec import FeatureSet

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


@dataclass(frozen=True)
class CacheKey:
    feature_set_hash: str
    symbols: tuple[str, ...]
    start: pd.Timestamp
    end: pd.Timestamp
    benchmark_symbol: str | None

    @property
    def digest(self) -> str:
        text = json.dumps(
            [self.feature_set_hash, list(self.symbols), self.start.isoformat(), self.end.isoformat(), self.benchmark_symbol]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:24]


def bars_digest(bars: pd.DataFrame) -> str:
    """Content hash of canonical bars (independent of row order and index)."""
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise BarValidationError(f"bars: missing columns {missing}")
    codes, symbols = pd.factorize(bars["symbol"].astype(str), sort=True)
    ts = pd.DatetimeIndex(bars["ts"]).tz_convert("UTC").as_unit("ns").asi8
    order = np.lexsort((ts, codes))
    digest = hashlib.blake2b(digest_size=16)
    digest.update("\x1f".join(symbols).encode())
    digest.update(np.ascontiguousarray(codes[order]).tobytes())
    digest.update(np.ascontiguousarray(ts[order]).tobytes())
    for column in BAR_COLUMNS[2:]:
        digest.update(np.ascontiguousarray(bars[column].to_numpy(dtype=np.float64)[order]).tobytes())
    return digest.hexdigest()


def cache_key(bars: pd.DataFrame, feature_set: FeatureSet, benchmark_symbol: str | None) -> CacheKey:
    ts = pd.DatetimeIndex(bars["ts"])
    return CacheKey(
        feature_set_hash=feature_set.hash,
        symbols=tuple(sorted(bars["symbol"].astype(str).unique())),
        start=ts.min().tz_convert("UTC"),
        end=ts.max().tz_convert("UTC"),
        benchmark_symbol=benchmark_symbol,
    )


class FeatureCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def path_for(self, key: CacheKey) -> Path:
        return self.root / key.feature_set_hash / f"{key.digest}.npz"

    def get_or_compute(
        self, bars: pd.DataFrame, feature_set: FeatureSet, *, benchmark_symbol: str | None = "SPY"
    ) -> FeatureMatrix:
        if bars.empty:
            raise BarValidationError("bars: no bars to compute features from")
        key = cache_key(bars, feature_set, benchmark_symbol)
        content = bars_digest(bars)
        cached = self.get(key, content)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        matrix = compute_features(bars, feature_set, benchmark_symbol=benchmark_symbol)
        self.put(key, content, matrix)
        return matrix

    def get(self, key: CacheKey, bars_content: str) -> FeatureMatrix | None:
        """The cached matrix, or None when absent, computed from other bars, or unreadable."""
        path = self.path_for(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta.get("format") != CACHE_FORMAT or meta.get("bars_digest") != bars_content:
                    return None
                return FeatureMatrix(
                    timestamps=pd.DatetimeIndex(data["timestamps"].view("datetime64[ns]"), tz="UTC"),
                    symbols=list(meta["symbols"]),
                    feature_names=list(meta["feature_names"]),
                    values=data["values"],
                    raw=data["raw"],
                    mask=data["mask"],
                    feature_set_hash=meta["feature_set_hash"],
                    present=data["present"],
                    benchmark=meta["benchmark"],
                )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("feature cache entry %s is unreadable (%s); recomputing", path, exc)
            return None

    def put(self, key: CacheKey, bars_content: str, matrix: FeatureMatrix) -> Path:
        if matrix.feature_set_hash != key.feature_set_hash:
            raise ValueError(
                f"matrix has feature_set_hash {matrix.feature_set_hash}, key has {key.feature_set_hash}"
            )
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": CACHE_FORMAT,
            "bars_digest": bars_content,
            "feature_set_hash": matrix.feature_set_hash,
            "symbols": matrix.symbols,
            "feature_names": matrix.feature_names,
            "benchmark": matrix.benchmark,
            "start": key.start.isoformat(),
            "end": key.end.isoformat(),
        }
        handle, tmp_name = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as tmp:
                np.savez(
                    tmp,
                    meta=np.array(json.dumps(meta)),
                    timestamps=matrix.timestamps.as_unit("ns").asi8,
                    values=matrix.values,
                    raw=matrix.raw,
                    mask=matrix.mask,
                    present=matrix.present,
                )
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return path

    def invalidate(self, feature_set_hash: str | None = None) -> int:
        """Delete the entries of one feature set (or all); returns how many files were removed."""
        targets = [self.root / feature_set_hash] if feature_set_hash else [p for p in self.root.glob("*") if p.is_dir()]
        removed = 0
        for folder in targets:
            if folder.is_dir():
                removed += sum(1 for _ in folder.glob("*.npz"))
                shutil.rmtree(folder)
        return removed
