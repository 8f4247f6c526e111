"""Live bars: 5-second real-time bars assembled into interval bars, and data-gap watching."""

from tt_platform.live_bars.assembler import AssemblerUpdate, BarSet, IntervalBarAssembler, SubBarOrderError
from tt_platform.live_bars.gaps import DataGapWatch

__all__ = ["AssemblerUpdate", "BarSet", "DataGapWatch", "IntervalBarAssembler", "SubBarOrderError"]
