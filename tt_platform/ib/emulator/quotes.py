"""Bid and ask around the last trade price: the emulator's quote model (pure).

The source holds trades only, so quotes are made up around the last price: a spread of
``spread_bps`` of the price, at least one tick either side, on the tick grid. Market orders take
these quotes (buys at the ask, sells at the bid) and market-data ticks show them.
"""

from __future__ import annotations

from dataclasses import dataclass

from tt_platform.ib.emulator.wire import round_to_tick

DEFAULT_SPREAD_BPS = 2.0


@dataclass(frozen=True)
class Quote:
    bid: float
    ask: float

    def taking(self, sign: int) -> float:
        """The price a marketable order of this side pays (buy: ask) or gets (sell: bid)."""
        return self.ask if sign > 0 else self.bid


@dataclass(frozen=True)
class QuoteModel:
    spread_bps: float = DEFAULT_SPREAD_BPS

    def __post_init__(self) -> None:
        if not self.spread_bps >= 0:
            raise ValueError(f"spread_bps must be >= 0, got {self.spread_bps!r}")

    def around(self, last: float, tick: float) -> Quote:
        half = max(tick, round_to_tick(last * self.spread_bps / 2e4, tick))
        return Quote(round_to_tick(last - half, tick), round_to_tick(last + half, tick))
