"""The market a soak replays: the live tests' synthetic symbols over enough trading days, held in
memory so the emulator can release a minute per step at a high clock scale (the synthetic source
generates a whole day of minute bars per request, too slow for thousands of steps)."""

from __future__ import annotations

import pandas as pd

from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator import FrameBarSource, GatewayEmulator, ReplayConfig
from tt_platform.ib.emulator.sources import SyntheticBarSource
from tt_platform_tests.live.policy_factory import HISTORY_START, REPLAY_START, SEED, SYMBOLS

# a minute of market per 5 s of the emulator's clock, twelve 5-second sub-bars in each
STEP_SECONDS = 5.0
MINUTES_PER_SESSION = 390


def soak_source(trading_days: int, symbols=SYMBOLS, seed: int = SEED) -> FrameBarSource:
    """Minute bars from the week before the replay start through ``trading_days`` sessions after
    it: the policy factory's synthetic bars (same seed, same prices), precomputed."""
    last = REPLAY_START + pd.tseries.offsets.BDay(trading_days + 10)
    synthetic = SyntheticBarSource(list(symbols), seed=seed, last_session=last.normalize())
    minutes = pd.concat([synthetic.bars(s, HISTORY_START, last + pd.Timedelta(days=1), "1min") for s in symbols],
                        ignore_index=True)
    return FrameBarSource(minutes, interval="1min")


def soak_emulator(bars: int, scale: float, symbols=SYMBOLS) -> GatewayEmulator:
    """An emulator replaying minute bars from the policy factory's replay start, with room for
    ``bars`` decisions and the bars lost while faults keep the session away (or cut the
    backlog of a session that lags the replay)."""
    days = int(bars * 2.5 / MINUTES_PER_SESSION) + 10
    return GatewayEmulator(soak_source(days, symbols), clock=ScaledClock(scale),
                           replay=ReplayConfig(start=REPLAY_START, interval="1min", step_seconds=STEP_SECONDS))
