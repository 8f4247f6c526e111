"""Environment configuration (pydantic): episode shape, risk, costs, reward and stopping."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class EnvConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # episode
    window_size: int = Field(30, ge=1, le=1024, description="bars of features per observation")
    episode_length: int | None = Field(None, ge=1, description="steps per episode; None = to the end")
    random_start: bool = Field(False, description="draw the first bar uniformly from the data")

    # portfolio, risk and costs
    initial_cash: float = Field(100_000.0, gt=0)
    long_only: bool = True
    leverage_cap: float = Field(1.0, gt=0, le=10, description="max gross exposure, sum |w|")
    per_symbol_cap: float = Field(0.5, gt=0, le=10, description="max |w| per symbol")
    risk_target: float = Field(0.15, gt=0, le=5, description="annualised volatility target")
    vol_floor: float = Field(0.05, gt=0, le=5,
                             description="annualised volatility assumed at least, so a flat "
                                         "price series never asks for unbounded size")
    vol_lookback: int = Field(20, ge=2, le=2000, description="bars of returns per volatility estimate")
    commission_bps: float = Field(1.0, ge=0, le=500)
    slippage_bps: float = Field(2.0, ge=0, le=500)
    min_commission: float = Field(0.0, ge=0)
    min_order_value: float = Field(0.0, ge=0, description="orders below this notional are not sent")
    fill_at: Literal["close", "open"] = Field(
        "close", description="'close': fill at the decision bar's close; 'open': at the next open")

    # components
    action_scheme: Literal["vol_target", "discrete"] = "vol_target"
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

    periods_per_year: float | None = Field(None, gt=0, description="None: inferred from timestamps")

    @model_validator(mode="after")
    def _check(self) -> EnvConfig:
        if self.per_symbol_cap > self.leverage_cap:
            raise ValueError(
                f"per_symbol_cap {self.per_symbol_cap} exceeds leverage_cap {self.leverage_cap}")
        return self
