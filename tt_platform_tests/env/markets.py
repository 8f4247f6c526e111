"""Small hand-made markets for env and training tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tt_platform.env import MarketData


def random_market(t: int = 120, n: int = 3, f: int = 4, seed: int = 0, vol: float = 0.01,
                  **kwargs) -> MarketData:
    rng = np.random.default_rng(seed)
    timestamps = pd.date_range("2020-01-01", periods=t, freq="B", tz="UTC")
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol, (t, n)), axis=0))
    features = rng.normal(size=(t, n, f)).astype(np.float32)
    return MarketData.from_close(timestamps, [f"S{i}" for i in range(n)], close, features,
                                 **kwargs)


def price_market(close: np.ndarray, f: int = 2, **kwargs) -> MarketData:
    """Market with given closes [T, N] and features equal to the bar index (easy to trace)."""
    close = np.asarray(close, dtype=np.float64)
    t, n = close.shape
    timestamps = pd.date_range("2021-01-04", periods=t, freq="B", tz="UTC")
    features = np.broadcast_to(np.arange(t, dtype=np.float32)[:, None, None], (t, n, f)).copy()
    return MarketData.from_close(timestamps, [f"S{i}" for i in range(n)], close, features,
                                 **kwargs)
