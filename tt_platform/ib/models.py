"""Plain results of the IB client layer (no ib_insync types leak past the client)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from tt_platform.data.bars import empty_bars
from tt_platform.ib.errors import ErrorKind, IBError

# IBError.code used for "no answer within the request timeout"
TIMEOUT_CODE = -1


@dataclass(frozen=True)
class ResolvedContract:
    symbol: str
    con_id: int
    sec_type: str
    exchange: str  # routing exchange (SMART)
    primary_exchange: str
    currency: str
    local_symbol: str = ""
    trading_class: str = ""
    min_tick: float = 0.01
    long_name: str = ""


@dataclass(frozen=True)
class Unresolved:
    symbol: str
    reason: str
    code: int | None = None


@dataclass
class HistoricalResult:
    """Bars of one symbol/range and why some may be missing.

    ``refused`` is True when IB declined at least one request of the range (unknown contract,
    invalid request, timeout, pacing not resolved by retries). Empty bars with ``refused`` False
    mean IB answered "no data" for that range.
    """

    bars: pd.DataFrame = field(default_factory=empty_bars)
    refused: bool = False
    errors: list[IBError] = field(default_factory=list)
    requests: int = 0
    pacing_violations: int = 0

    @property
    def no_data(self) -> bool:
        return self.bars.empty and not self.refused

    @property
    def error_kinds(self) -> set[ErrorKind]:
        return {e.kind for e in self.errors}
