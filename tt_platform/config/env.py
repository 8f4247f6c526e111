"""The ``env`` section of a run config: episode shape, money, costs, risk, components, reward and
stopping of the trading environment.

This is the only definition of these settings, their defaults and their bounds: ``make_env``
takes this model as is, the trainer stores it in checkpoints and evaluation derives its
whole-period variant from it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class EnvConfig(BaseModel):
    """Trading environment: episode, money and costs, risk, components, reward and stopper."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # episode
    window_size: int = Field(20, ge=1, le=1024, description="bars of features per observation")
    episode_length: int | None = Field(
        252, ge=1, description="steps per training episode; null: to the end of the data")
    random_start: bool = Field(
        True, description="draw each training episode's first bar at random (evaluation always "
                          "starts at its own cut)")

    # money, costs and execution
    initial_cash: float = Field(100_000.0, gt=0, le=1e12, description="starting capital")
    commission_bps: float = Field(1.0, ge=0, le=500, description="commission, bps of notional")
    slippage_bps: float = Field(2.0, ge=0, le=500, description="slippage, bps of notional")
    min_commission: float = Field(0.0, ge=0, description="minimum commission per order")
    min_order_value: float = Field(0.0, ge=0, description="orders below this notional are not sent")
    fill_at: Literal["close", "open"] = Field(
        "close", description="'close': fill at the decision bar's close; 'open': at the next open")

    # risk
    long_only: bool = True
    leverage_cap: float = Field(1.0, gt=0, le=10, description="max gross exposure, sum |w|")
    per_symbol_cap: float = Field(0.5, gt=0, le=10, description="max |w| per symbol")
    risk_target: float = Field(0.15, gt=0, le=5, description="annualised volatility target")
    vol_floor: float = Field(0.05, gt=0, le=5,
                             description="annualised volatility assumed at least, so a flat "
                                         "price series never asks for unbounded size")
    vol_lookback: int = Field(20, ge=2, le=2000, description="bars of returns per volatility estimate")

    # components
    action_scheme: Literal["vol_target", "discrete"] = Field(
        "vol_target", description="continuous volatility-targeted exposures, or discrete "
                                  "flat/long(/short) per symbol")
    observation: Literal["tensor", "flat"] = Field(
        "flat", description="flat vector (MlpPolicy) or a [symbols, features, window] tensor")
    include_positions: bool = Field(True, description="add current weights as a feature row")
    obs_clip: float = Field(10.0, gt=0, description="observations are clipped to +-obs_clip")

    # reward: step log return over a running volatility, minus penalties
    reward_vol_halflife: float = Field(20.0, gt=0, description="steps; EWMA of squared returns")
    reward_vol_floor: float = Field(1e-3, gt=0, description="per-step volatility floor in the ratio")
    drawdown_penalty: float = Field(1.0, ge=0, description="per unit of new drawdown")
    turnover_penalty: float = Field(0.0, ge=0, description="per unit of turnover")
    reward_scale: float = Field(1.0, gt=0)

    # stopper
    max_drawdown: float = Field(0.30, gt=0, le=1, description="stop the episode at this drawdown")
    equity_floor: float = Field(0.10, ge=0, lt=1, description="stop below this fraction of initial cash")
    stopper_warmup_steps: int = Field(0, ge=0, description="no drawdown stop during the first steps")

    periods_per_year: float | None = Field(None, gt=0, description="null: inferred from timestamps")

    @model_validator(mode="after")
    def _check(self) -> EnvConfig:
        if self.per_symbol_cap > self.leverage_cap:
            raise ValueError(
                f"per_symbol_cap {self.per_symbol_cap} exceeds leverage_cap {self.leverage_cap}")
        return self

    def whole_period(self, *, stops: bool = True) -> EnvConfig:
        """The same environment run once from its first bar to the end of the data (no random
        start, no episode length); without ``stops`` the drawdown stopper never ends it."""
        update: dict[str, object] = {"random_start": False, "episode_length": None}
        if not stops:
            update |= {"max_drawdown": 1.0, "equity_floor": 0.0}
        return self.model_validate(self.model_dump() | update)
