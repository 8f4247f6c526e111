"""Random canonical bars with awkward values (many digits, microseconds) for storage tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tt_platform.data.bars import normalize_bars


def random_bars(symbols, n: int, *, start: str = "2020-01-01", freq: str = "D", seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    frames = []
    for symbol in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        open_ = close * (1 + rng.normal(0, 0.002, n))
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "ts": stamps,
                    "open": open_,
                    "high": np.maximum(open_, close) * (1 + rng.random(n) / 100),
                    "low": np.minimum(open_, close) * (1 - rng.random(n) / 100),
                    "close": close,
                    "volume": rng.integers(1, 10**9, n).astype(float),
                }
            )
        )
    return normalize_bars(pd.concat(frames, ignore_index=True), origin="random_bars")
