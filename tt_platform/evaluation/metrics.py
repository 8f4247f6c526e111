"""Performance metrics of an equity curve, from empyrical-reloaded.

One function for every consumer (evaluation reports, training logs, the live loop's dashboards)
so a Sharpe ratio means the same thing everywhere.
"""

from __future__ import annotations

import empyrical as ep
import numpy as np
import pandas as pd

PERIODS_PER_YEAR = {"1d": 252, "1h": 252 * 7, "30min": 252 * 13, "5min": 252 * 78, "1min": 252 * 390}


def returns_from_equity(equity: pd.Series) -> pd.Series:
    return equity.pct_change().dropna()


def _finite(value: float) -> float:
    value = float(value)
    return value if np.isfinite(value) else 0.0


def performance_summary(equity: pd.Series, interval: str = "1d") -> dict[str, float]:
    """Total return, CAGR, volatility, Sharpe, Sortino, Calmar, max drawdown, win ratio."""
    if len(equity) < 2:
        raise ValueError(f"need at least 2 equity points to compute metrics, got {len(equity)}")
    returns = returns_from_equity(equity)
    periods = PERIODS_PER_YEAR.get(interval, 252)
    kwargs = {"period": "daily", "annualization": periods}
    return {
        "total_return": _finite(equity.iloc[-1] / equity.iloc[0] - 1.0),
        "annual_return": _finite(ep.annual_return(returns, **kwargs)),
        "annual_volatility": _finite(ep.annual_volatility(returns, **kwargs)),
        "sharpe": _finite(ep.sharpe_ratio(returns, **kwargs)),
        "sortino": _finite(ep.sortino_ratio(returns, **kwargs)),
        "calmar": _finite(ep.calmar_ratio(returns, **kwargs)),
        "max_drawdown": _finite(ep.max_drawdown(returns)),
        "win_ratio": _finite((returns > 0).sum() / max(int((returns != 0).sum()), 1)),
        "periods": float(len(returns)),
    }


def drawdown_series(equity: pd.Series) -> pd.Series:
    return equity / equity.cummax() - 1.0
