"""Contract definitions the emulator answers with (US stocks and ETFs, SMART-routed)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Listing venues of well-known symbols; everything else defaults to NYSE.
_PRIMARY = {
    **dict.fromkeys(
        [
            "AAPL",
            "MSFT",
            "AMZN",
            "GOOGL",
            "GOOG",
            "NVDA",
            "CSCO",
            "INTC",
            "META",
            "FB",
            "TSLA",
            "QQQ",
            "ADBE",
            "NFLX",
            "PEP",
        ],
        "NASDAQ",
    ),
    **dict.fromkeys(["SPY", "IWM", "DIA", "TLT", "GLD", "XLK", "XLF", "XLE", "EEM", "USO"], "ARCA"),
}
_ETFS = {"SPY", "QQQ", "IWM", "DIA", "TLT", "GLD", "XLK", "XLF", "XLE", "EEM", "USO"}


@dataclass(frozen=True)
class ContractSpec:
    symbol: str
    con_id: int
    primary_exchange: str = "NYSE"
    currency: str = "USD"
    sec_type: str = "STK"
    min_tick: float = 0.01
    long_name: str = ""
    stock_type: str = "COMMON"
    time_zone: str = "US/Eastern"

    @property
    def trading_class(self) -> str:
        return "NMS" if self.primary_exchange == "NASDAQ" else self.symbol


def stable_con_id(symbol: str) -> int:
    """A deterministic conId per symbol, so runs and restarts agree."""
    return 100_000 + zlib.crc32(symbol.upper().encode()) % 900_000_000


def default_spec(symbol: str) -> ContractSpec:
    symbol = symbol.upper()
    return ContractSpec(
        symbol=symbol,
        con_id=stable_con_id(symbol),
        primary_exchange=_PRIMARY.get(symbol, "NYSE"),
        long_name=f"{symbol} {'ETF' if symbol in _ETFS else 'INC'}",
        stock_type="ETF" if symbol in _ETFS else "COMMON",
    )


class ContractBook:
    """Symbol -> ContractSpec for the symbols a bar source serves (with optional overrides).

    An ``open`` book defines a contract for any symbol asked for (a source serving any symbol).
    """

    def __init__(
        self, symbols: Iterable[str], overrides: Mapping[str, ContractSpec] | None = None, *, open: bool = False
    ) -> None:
        self.open = open
        self._by_symbol = {s.upper(): default_spec(s) for s in symbols}
        for symbol, spec in (overrides or {}).items():
            self._by_symbol[symbol.upper()] = spec
        self._by_con_id = {spec.con_id: spec for spec in self._by_symbol.values()}

    def _define(self, symbol: str) -> ContractSpec | None:
        symbol = symbol.upper()
        if not self.open or not symbol or symbol in self._by_symbol:
            return self._by_symbol.get(symbol)
        spec = default_spec(symbol)
        self._by_symbol[symbol] = spec
        self._by_con_id.setdefault(spec.con_id, spec)
        return spec

    def lookup(self, symbol: str = "", con_id: int = 0) -> ContractSpec | None:
        if con_id:
            spec = self._by_con_id.get(con_id)
            if spec is None and symbol:
                spec = self._define(symbol)
            if spec is None or spec.con_id != con_id or (symbol and symbol.upper() != spec.symbol):
                return None
            return spec
        return self._define(symbol) if symbol else None

    def __contains__(self, symbol: str) -> bool:
        return self.open or symbol.upper() in self._by_symbol

    def symbols(self) -> list[str]:
        return sorted(self._by_symbol)
