"""Parsing of the client -> server requests the emulator serves (ib_insync 0.9.86 layouts)."""

from __future__ import annotations

from dataclasses import dataclass

from tt_platform.ib.emulator.wire import ProtocolError


@dataclass(frozen=True)
class ContractRef:
    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str

    def __str__(self) -> str:
        return f"{self.symbol or self.con_id} {self.sec_type or '?'} @{self.exchange or '?'}"


class Fields:
    """Typed access to a received frame with errors that name the message and the field."""

    def __init__(self, fields: list[str], name: str) -> None:
        self.fields, self.name = fields, name

    def text(self, i: int) -> str:
        if i >= len(self.fields):
            raise ProtocolError(f"{self.name}: expected at least {i + 1} fields, got {len(self.fields)}")
        return self.fields[i]

    def int(self, i: int, default: int = 0) -> int:
        raw = self.text(i)
        if raw == "":
            return default
        try:
            return int(float(raw)) if "." in raw else int(raw)
        except (ValueError, OverflowError):  # OverflowError: "1.e400" is an infinite float
            raise ProtocolError(f"{self.name}: field {i} is not an integer: {raw[:60]!r}") from None

    def float(self, i: int) -> float | None:
        raw = self.text(i)
        if raw == "":
            return None
        try:
            value = float(raw)
        except ValueError:
            raise ProtocolError(f"{self.name}: field {i} is not a number: {raw[:60]!r}") from None
        return None if value >= 1.7e308 else value  # ib_insync's UNSET_DOUBLE

    def bool(self, i: int) -> bool:
        return self.int(i) != 0 if i < len(self.fields) else False

    def contract(self, i: int) -> ContractRef:
        """The 12 contract fields ib_insync sends: conId, symbol, secType, lastTradeDate,
        strike, right, multiplier, exchange, primaryExchange, currency, localSymbol, tradingClass."""
        return ContractRef(
            con_id=self.int(i),
            symbol=self.text(i + 1).upper(),
            sec_type=self.text(i + 2).upper(),
            exchange=self.text(i + 7).upper(),
            primary_exchange=self.text(i + 8).upper(),
            currency=self.text(i + 9).upper(),
        )


@dataclass(frozen=True)
class HistoricalRequest:
    req_id: int
    contract: ContractRef
    end: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool


def parse_historical(raw: list[str]) -> HistoricalRequest:
    f = Fields(raw, "reqHistoricalData")
    return HistoricalRequest(
        req_id=f.int(1),
        contract=f.contract(2),
        end=f.text(15),
        bar_size=f.text(16),
        duration=f.text(17),
        use_rth=f.bool(18),
        what_to_show=f.text(19).upper(),
        format_date=f.int(20, 1),
        keep_up_to_date=f.bool(21),
    )


@dataclass(frozen=True)
class HeadTimestampRequest:
    req_id: int
    contract: ContractRef
    what_to_show: str
    format_date: int


def parse_head_timestamp(raw: list[str]) -> HeadTimestampRequest:
    f = Fields(raw, "reqHeadTimeStamp")
    return HeadTimestampRequest(
        req_id=f.int(1), contract=f.contract(2), what_to_show=f.text(16).upper(), format_date=f.int(17, 1)
    )


@dataclass(frozen=True)
class MarketDataRequest:
    req_id: int
    contract: ContractRef
    generic_ticks: str
    snapshot: bool


def parse_market_data(raw: list[str]) -> MarketDataRequest:
    f = Fields(raw, "reqMktData")
    contract = f.contract(3)
    i = 15
    if contract.sec_type == "BAG":
        raise ProtocolError("reqMktData: combo (BAG) contracts are not served by the emulator")
    if f.bool(i):  # delta-neutral contract present
        i += 3
    return MarketDataRequest(req_id=f.int(2), contract=contract, generic_ticks=f.text(i + 1), snapshot=f.bool(i + 2))


@dataclass(frozen=True)
class RealTimeBarsRequest:
    req_id: int
    contract: ContractRef
    bar_size: int
    what_to_show: str


def parse_realtime_bars(raw: list[str]) -> RealTimeBarsRequest:
    f = Fields(raw, "reqRealTimeBars")
    return RealTimeBarsRequest(
        req_id=f.int(2), contract=f.contract(3), bar_size=f.int(15), what_to_show=f.text(16).upper()
    )


@dataclass(frozen=True)
class PlaceOrderRequest:
    order_id: int
    contract: ContractRef
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    account: str
    order_ref: str
    transmit: bool
    parent_id: int
    outside_rth: bool
    what_if: bool


def _what_if_flag(f: Fields, sec_type: str) -> bool:
    """Walk placeOrder's variable-length middle (combo legs, delta-neutral, scale, hedge, algo
    parameters are sent only when used) to the whatIf field."""
    i = 35
    if sec_type == "BAG":
        i += 1 + 8 * f.int(i)  # combo legs
        i += 1 + f.int(i)  # order combo leg prices
        i += 1 + 2 * f.int(i)  # smart combo routing params
    i += 30  # '' (shares allocation) .. volatilityType
    i += 2 + (8 if f.text(i) else 0)  # deltaNeutralOrderType, deltaNeutralAuxPrice [+ 8]
    scale_increment = f.float(i + 6) or 0.0
    i += 7 + (7 if scale_increment > 0 else 0)
    i += 4 + (1 if f.text(i + 3) else 0)  # scaleTable .. hedgeType [+ hedgeParam]
    i += 4  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    i += 1 + (3 if f.bool(i) else 0)  # delta-neutral contract
    algo = f.text(i)
    i += 1 + (1 + 2 * f.int(i + 1) if algo else 0)
    return f.bool(i + 1)  # after algoId


def parse_place_order(raw: list[str]) -> PlaceOrderRequest:
    f = Fields(raw, "placeOrder")
    contract = f.contract(2)
    return PlaceOrderRequest(
        order_id=f.int(1),
        contract=contract,
        action=f.text(16).upper(),
        quantity=f.float(17) or 0.0,
        order_type=f.text(18).upper(),
        lmt_price=f.float(19),
        aux_price=f.float(20),
        tif=f.text(21),
        account=f.text(23),
        order_ref=f.text(26),
        transmit=f.bool(27),
        parent_id=f.int(28),
        outside_rth=f.bool(33),
        what_if=_what_if_flag(f, contract.sec_type),
    )


def parse_contract_details(raw: list[str]) -> tuple[int, ContractRef]:
    f = Fields(raw, "reqContractDetails")
    return f.int(2), f.contract(3)
