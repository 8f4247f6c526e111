"""Episode performance metrics (pure): the return metrics every consumer shares
(``tt_platform.evaluation.metrics.return_metrics``) plus what only an episode knows: rewards,
turnover, exposure and costs. Undefined values are None, as there."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tt_platform.evaluation.metrics import return_metrics

if TYPE_CHECKING:
    from tt_platform.env.rollout import EpisodeRecord

METRIC_NAMES = (
    "reward_sum", "total_return", "sharpe", "sortino", "max_drawdown", "turnover",
    "exposure_utilisation", "win_ratio", "steps", "total_cost",
)


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
    shared = return_metrics(returns, periods_per_year)
    return {
        "reward_sum": float(np.sum(rewards)),
        "total_return": shared["total_return"],
        "sharpe": shared["sharpe"],
        "sortino": shared["sortino"],
        "max_drawdown": shared["max_drawdown"],
        "turnover": float(np.mean(turnover)),
        "exposure_utilisation": float(np.mean(gross_exposure) / leverage_cap),
        "win_ratio": shared["win_ratio"],
        "steps": float(n),
        "total_cost": float(np.sum(costs)) if costs is not None else None,
    }


def record_metrics(record: EpisodeRecord) -> dict[str, float | None]:
    """``episode_metrics`` of an ``EpisodeRecord``."""
    return episode_metrics(returns=record.returns(), rewards=record.rewards,
                           turnover=record.turnover, gross_exposure=record.gross_exposure,
                           periods_per_year=record.periods_per_year,
                           leverage_cap=record.leverage_cap, costs=record.cost)
