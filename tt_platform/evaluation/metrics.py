"""Performance metrics of a return series, from empyrical-reloaded.

One function for every consumer (training logs, evaluation reports, the live loop's dashboards)
so a Sharpe ratio means the same thing everywhere. Conventions: simple returns net of costs,
``max_drawdown`` a positive fraction (0.25 = a 25 % fall from the peak), and undefined values (a
Sharpe ratio of a flat line) None rather than NaN, so they survive JSON and MLflow unchanged.

``trading_metrics`` adds what needs the portfolio's exposure and trading: hit rate, turnover,
exposure; per-period series there are aligned with the returns (one value per period, marked at
``equity.index[1:]``), as ``EpisodeRecord.gross_exposure`` and ``.turnover`` are. Whether a
Sharpe ratio is more than luck is ``tt_platform.evaluation.significance``.
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


def win_ratio(returns: np.ndarray) -> float | None:
    """Share of positive returns among the periods whose return is non-zero (invested or not).

    Unlike ``hit_rate``, flat periods are left out and periods in cash count when costs or
    interest moved equity. None when no period moved equity.
    """
    moved = np.asarray(returns, dtype=np.float64)
    moved = moved[moved != 0.0]
    return float(np.mean(moved > 0.0)) if len(moved) else None


def return_metrics(returns: np.ndarray, periods_per_year: float) -> dict[str, float | None]:
    """Total and annual return, volatility, Sharpe, Sortino, Calmar, max drawdown, win ratio."""
    returns = np.asarray(returns, dtype=np.float64)
    if len(returns) == 0:
        return {name: None for name in RETURN_METRICS}
    kwargs = {"annualization": periods_per_year}
    return {
        "total_return": float(np.prod(1.0 + returns) - 1.0),
        "annual_return": _finite_or_none(ep.annual_return(returns, **kwargs)),
        "annual_volatility": _finite_or_none(ep.annual_volatility(returns, **kwargs)),
        "sharpe": _finite_or_none(ep.sharpe_ratio(returns, **kwargs)),
        "sortino": _finite_or_none(ep.sortino_ratio(returns, **kwargs)),
        "calmar": _finite_or_none(ep.calmar_ratio(returns, **kwargs)),
        "max_drawdown": float(-ep.max_drawdown(returns)),
        "win_ratio": win_ratio(returns),
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


# ---------------------------------------------------------------------------- trading metrics
TRADING_METRICS = RETURN_METRICS + (
    "periods", "cagr", "profit_factor", "hit_rate", "turnover", "annual_turnover", "exposure", "time_invested",
)


def cagr(returns: np.ndarray, periods_per_year: float) -> float | None:
    """Compound annual growth rate: empyrical's ``annual_return`` (the same number), under its usual name."""
    returns = np.asarray(returns, dtype=np.float64)
    return _finite_or_none(ep.cagr(returns, annualization=periods_per_year)) if len(returns) else None


def profit_factor(pnl: np.ndarray) -> float | None:
    """Gross gains / gross losses: sum of the positive values over minus the sum of the negative ones.

    ``pnl`` is per-period profit and loss, in currency (as ``trading_metrics`` uses, so a loss on
    a larger book weighs more) or as returns. 0.0 with losses but no gains; None without losses.
    """
    pnl = np.asarray(pnl, dtype=np.float64)
    losses = -pnl[pnl < 0.0].sum()
    return float(pnl[pnl > 0.0].sum() / losses) if losses > 0.0 else None


def hit_rate(returns: np.ndarray, gross_exposure: np.ndarray | None) -> float | None:
    """Share of invested periods whose return is positive.

    A period is invested when its gross exposure (sum of absolute weights) is above 0; a flat
    invested period counts as a miss and periods in cash are left out. So it asks "when the
    policy took risk, how often did that pay?", where ``win_ratio`` asks "when equity moved,
    how often was it up?". None when the portfolio was never invested or exposure is unknown.
    """
    if gross_exposure is None:
        return None
    returns = np.asarray(returns, dtype=np.float64)
    invested = np.asarray(gross_exposure, dtype=np.float64) > 0.0
    return float(np.mean(returns[invested] > 0.0)) if invested.any() else None


def turnover_metrics(turnover: np.ndarray | None, periods_per_year: float) -> dict[str, float | None]:
    """turnover: mean traded value / equity per period; annual_turnover: that times the periods per year.

    An annual turnover of 12 means a year's trades added up to 12 times the equity. None when not
    given or empty.
    """
    if turnover is None or len(turnover) == 0:
        return {"turnover": None, "annual_turnover": None}
    mean = float(np.mean(np.asarray(turnover, dtype=np.float64)))
    return {"turnover": mean, "annual_turnover": mean * periods_per_year}


def exposure_metrics(gross_exposure: np.ndarray | None) -> dict[str, float | None]:
    """exposure: mean gross exposure (sum of absolute weights / equity; 1.0 = fully invested,
    unlevered); time_invested: share of periods with gross exposure above 0. None when not given
    or empty."""
    if gross_exposure is None or len(gross_exposure) == 0:
        return {"exposure": None, "time_invested": None}
    gross_exposure = np.asarray(gross_exposure, dtype=np.float64)
    return {"exposure": float(np.mean(gross_exposure)), "time_invested": float(np.mean(gross_exposure > 0.0))}


def _per_period(values: pd.Series | np.ndarray | None, n_periods: int, name: str) -> np.ndarray | None:
    """A per-period series as an array, checked: one finite, non-negative value per return."""
    if values is None:
        return None
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(array) != n_periods:
        raise ValueError(f"{name} has {len(array)} values but the equity curve has {n_periods} periods: "
                         "give one value per return (aligned with equity.index[1:])")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if np.any(array < 0.0):
        raise ValueError(f"{name} has negative values: it must be gross (sums of absolute values)")
    return array


def trading_metrics(
    equity: pd.Series,
    gross_exposure: pd.Series | np.ndarray | None = None,
    turnover: pd.Series | np.ndarray | None = None,
    *,
    periods_per_year: float,
) -> dict[str, float | None]:
    """Every metric of a strategy in one flat, JSON-safe dict (names in ``TRADING_METRICS``).

    ``performance_summary`` of the equity curve plus cagr, profit_factor (on the curve's
    currency P&L), hit_rate and exposure (from ``gross_exposure``), turnover and
    annual_turnover (from ``turnover``, traded value / equity per period). The per-period
    series hold one value per return; metrics whose series is not given are None.
    """
    summary = performance_summary(equity, periods_per_year)
    returns = returns_from_equity(equity)
    exposure = _per_period(gross_exposure, len(returns), "gross_exposure")
    traded = _per_period(turnover, len(returns), "turnover")
    metrics = summary | {
        "cagr": cagr(returns, periods_per_year),
        "profit_factor": profit_factor(np.diff(equity.to_numpy(dtype=np.float64))),
        "hit_rate": hit_rate(returns, exposure),
        **exposure_metrics(exposure),
        **turnover_metrics(traded, periods_per_year),
    }
    return {name: metrics[name] for name in TRADING_METRICS}
