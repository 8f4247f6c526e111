"""Performance metrics of a return series, from empyrical-reloaded.

One function for every consumer (training logs, evaluation reports, the live loop's dashboards)
so a Sharpe ratio means the same thing everywhere. Conventions: simple returns net of costs,
``max_drawdown`` a positive fraction (0.25 = a 25 % fall from the peak), and undefined values (a
Sharpe ratio of a flat line) None rather than NaN, so they survive JSON and MLflow unchanged.
"""

from __future__ import annotations

import math

import empyrical as ep
import numpy as np
import pandas as pd

RETURN_METRICS = (
    "total_return", "annual_return", "annual_volatility", "sharpe", "sortino", "calmar", "max_drawdown", "win_ratio",
)


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def return_metrics(returns: np.ndarray, periods_per_year: float) -> dict[str, float | None]:
    """Total and annual return, volatility, Sharpe, Sortino, Calmar, max drawdown, win ratio."""
    returns = np.asarray(returns, dtype=np.float64)
    if len(returns) == 0:
        return {name: None for name in RETURN_METRICS}
    kwargs = {"annualization": periods_per_year}
    moved = returns[returns != 0.0]
    return {
        "total_return": float(np.prod(1.0 + returns) - 1.0),
        "annual_return": _finite_or_none(ep.annual_return(returns, **kwargs)),
        "annual_volatility": _finite_or_none(ep.annual_volatility(returns, **kwargs)),
        "sharpe": _finite_or_none(ep.sharpe_ratio(returns, **kwargs)),
        "sortino": _finite_or_none(ep.sortino_ratio(returns, **kwargs)),
        "calmar": _finite_or_none(ep.calmar_ratio(returns, **kwargs)),
        "max_drawdown": float(-ep.max_drawdown(returns)),
        "win_ratio": float(np.mean(moved > 0.0)) if len(moved) else None,
    }


def returns_from_equity(equity: pd.Series) -> np.ndarray:
    values = equity.to_numpy(dtype=np.float64)
    return values[1:] / values[:-1] - 1.0


def performance_summary(equity: pd.Series, periods_per_year: float) -> dict[str, float | None]:
    """``return_metrics`` of an equity curve, plus the number of periods."""
    if len(equity) < 2:
        raise ValueError(f"need at least 2 equity points to compute metrics, got {len(equity)}")
    returns = returns_from_equity(equity)
    return return_metrics(returns, periods_per_year) | {"periods": float(len(returns))}


def drawdown_series(equity: pd.Series) -> pd.Series:
    return equity / equity.cummax() - 1.0
