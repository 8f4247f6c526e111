"""A small real policy for live-session tests: PPO trained for a few steps on synthetic minute bars
that the emulator serves too, registered in tt_policy with the lineage training records."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tt_platform.config import RunConfig
from tt_platform.ib.emulator.sources import SyntheticBarSource
from tt_platform.pipeline.local_policy import LocalPolicy, train_registered_policy
from tt_platform.store.prices import write_bars

SYMBOLS = ("AAA", "BBB", "CCC")
SEED = 7
# a Monday: the store holds the week before, the emulator replays from here
REPLAY_START = pd.Timestamp("2024-03-11 13:30", tz="UTC")
HISTORY_START = pd.Timestamp("2024-03-06 00:00", tz="UTC")


def synthetic_source(symbols=SYMBOLS, seed: int = SEED) -> SyntheticBarSource:
    return SyntheticBarSource(list(symbols), seed=seed, last_session="2024-03-29")


def minute_bars(symbols=SYMBOLS, start=HISTORY_START, end=REPLAY_START, seed: int = SEED) -> pd.DataFrame:
    source = synthetic_source(symbols, seed)
    frames = [source.bars(s, start, end, "1min") for s in symbols]
    bars = pd.concat(frames, ignore_index=True)
    return bars[bars["ts"] < end].reset_index(drop=True)


def run_config(**overrides: object) -> RunConfig:
    values = {
        "universe.symbols": list(SYMBOLS), "data.interval": "1min", "env.window_size": 5,
        "training.total_timesteps": 64, "training.n_steps": 32, "training.batch_size": 32, "training.n_envs": 1,
        "training.seed": SEED, "training.net_arch": [16],
    }
    values.update(overrides)
    return RunConfig().with_overrides(**values)


def train_tiny_policy(engine, folder: Path, *, policy_id: str = "ppo-tiny-live-s7", store_bars: bool = True,
                      config: RunConfig | None = None) -> LocalPolicy:
    config = config or run_config()
    bars = minute_bars()
    if store_bars:
        write_bars(engine, bars, source="synthetic", interval="1min", adjusted=False)
    return train_registered_policy(engine, bars, config, folder, policy_id=policy_id, code_version="test")
