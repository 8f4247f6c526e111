"""The one place that maps a run config's ``data.source`` to a ``BarSource`` class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tt_platform.data.sources.base import BarSource

SOURCES = ("synthetic", "csv", "ib", "emulator")


def source_for(data: Any, ib_config: Any = None) -> BarSource:
    """``data`` is the run config's data section; ``ib_config`` an ``IBSourceConfig`` for IB sources."""
    if data.source == "synthetic":
        from tt_platform.data.sources.synthetic import SyntheticBarSource, SyntheticSourceConfig

        return SyntheticBarSource(SyntheticSourceConfig(seed=data.seed))
    if data.source == "csv":
        from tt_platform.data.sources.csv import CsvBarSource, CsvSourceConfig

        return CsvBarSource(CsvSourceConfig(folder=Path(data.csv_dir)))
    if data.source == "ib":
        from tt_platform.data.sources.ib import IBBarSource

        if ib_config is None:
            raise ValueError("data.source 'ib' needs the IB connection settings (IB_HOST, IB_PORT, IB_CLIENT_ID)")
        return IBBarSource(ib_config)
    if data.source == "emulator":
        from tt_platform.data.sources.emulator import EmulatedIBBarSource

        return EmulatedIBBarSource(seed=data.seed, client=ib_config)
    raise ValueError(f"data.source: unknown bar source {data.source!r}; choose one of {', '.join(SOURCES)}")
