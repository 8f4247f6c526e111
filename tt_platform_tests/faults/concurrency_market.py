"""One gateway emulator for everything that runs at once: daily bars for the IB backfill and a
minute-bar replay for the paper session, on a scaled clock."""

from __future__ import annotations

import pandas as pd

from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator import FrameBarSource, GatewayEmulator, ReplayConfig
from tt_platform.ib.emulator.sources import SyntheticBarSource
from tt_platform_tests.live.policy_factory import HISTORY_START, REPLAY_START, SEED, SYMBOLS

# the training's and the backfill's universe (one watchlist: the store's, whoever writes it); the
# backfill fetches a range the training does not read. The paper policy trades other symbols.
BACKFILL_SYMBOLS = ["DDD", "EEE", "FFF"]
BACKFILL_RANGE = ("2022-01-03", "2022-06-30")  # six month partitions per symbol


def concurrency_emulator(scale: float, replay_days: int = 10) -> GatewayEmulator:
    """Daily bars of ``BACKFILL_SYMBOLS`` (2021-2022) and minute bars of the live policy's symbols
    from the policy factory's history start through ``replay_days`` sessions of replay."""
    daily_source = SyntheticBarSource(BACKFILL_SYMBOLS, seed=SEED, last_session="2022-12-30")
    daily = pd.concat([daily_source.bars(s, pd.Timestamp("2021-01-01", tz="UTC"), pd.Timestamp("2023-01-01", tz="UTC"),
                                         "1d") for s in BACKFILL_SYMBOLS], ignore_index=True)
    last = REPLAY_START + pd.tseries.offsets.BDay(replay_days)
    minute_source = SyntheticBarSource(list(SYMBOLS), seed=SEED, last_session=last.normalize())
    minutes = pd.concat([minute_source.bars(s, HISTORY_START, last + pd.Timedelta(days=1), "1min") for s in SYMBOLS],
                        ignore_index=True)
    return GatewayEmulator(FrameBarSource({"1d": daily, "1min": minutes}), clock=ScaledClock(scale),
                           replay=ReplayConfig(start=REPLAY_START, interval="1min", step_seconds=5.0))
