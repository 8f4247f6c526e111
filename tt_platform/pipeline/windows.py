"""Day windows as UTC timestamps: a run's [start, end] days, both ends inclusive."""

from __future__ import annotations

from datetime import date

import pandas as pd


def day_start(day: date) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC")


def day_end(day: date) -> pd.Timestamp:
    """The last instant of ``day`` (so intraday bars of that day are inside the window)."""
    return pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
