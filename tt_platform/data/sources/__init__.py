"""Bar sources behind one interface (``base.BarSource``): synthetic, CSV files, IB and the IB emulator."""

from tt_platform.data.sources.base import BarRequest, BarSource, FetchReport, SymbolBars

__all__ = ["BarRequest", "BarSource", "FetchReport", "SymbolBars"]
