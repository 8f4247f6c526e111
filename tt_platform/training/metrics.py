"""Episode performance metrics (pure): ratios from empyrical-reloaded, the rest by definition.

Undefined values (a Sharpe ratio of a flat equity line, a Sortino ratio without losing steps)
are reported as None rather than NaN or infinity, so they survive JSON and MLflow unchanged.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import empyrical
import numpy as np

if TYPE_CHECKING:
    from tt_platform.env.rollout import EpisodeRecord

METRIC_NAMES = (
    "reward_sum", "total_return", "sharpe", "sortino", "max_drawdown", "turnover",
    "exposure_utilisation", "win_ratio", "steps", "total_cost",
)


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def episode_metrics(*, returns: np.ndarray, rewards: np.ndarray, turnover: np.ndarray,
                    gross_exposure: np.ndarray, periods_per_year: float, leverage_cap: float,
                    costs: np.ndarray | None = None) -> dict[str, float | None]:
    """Metrics of one episode from per-step arrays (simple returns net of costs).

    turnover: mean traded value / equity per step. exposure_utilisation: mean gross exposure
    as a fraction of the leverage cap. win_ratio: share of winning steps among steps that
    moved equity.
    """
    returns = np.asarray(returns, dtype=np.float64)
    n = len(returns)
    if n == 0:
        return {name: None for name in METRIC_NAMES} | {"steps": 0.0}
    moved = returns[returns != 0.0]
    return {
        "reward_sum": float(np.sum(rewards)),
        "total_return": float(np.prod(1.0 + returns) - 1.0),
        "sharpe": _finite_or_none(empyrical.sharpe_ratio(returns, annualization=periods_per_year)),
        "sortino": _finite_or_none(empyrical.sortino_ratio(returns, annualization=periods_per_year)),
        "max_drawdown": float(-empyrical.max_drawdown(returns)),
        "turnover": float(np.mean(turnover)),
        "exposure_utilisation": float(np.mean(gross_exposure) / leverage_cap),
        "win_ratio": float(np.mean(moved > 0.0)) if len(moved) else None,
        "steps": float(n),
        "total_cost": float(np.sum(costs)) if costs is not None else None,
    }


def record_metrics(record: EpisodeRecord) -> dict[str, float | None]:
    """``episode_metrics`` of an ``EpisodeRecord``."""
    return episode_metrics(returns=record.returns(), rewards=record.rewards,
                           turnover=record.turnover, gross_exposure=record.gross_exposure,
                           periods_per_year=record.periods_per_year,
                           leverage_cap=record.leverage_cap, costs=record.cost)
