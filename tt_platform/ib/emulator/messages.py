"""Builders of the server -> client messages, laid out as ib_insync 0.9.86 decodes them at
server version 176 (see docs/ib-wire-protocol.md). Each returns the field list of one frame.

ib_insync drops a frame with the wrong number of fields silently, so every builder here has a
field-count test through ib_insync's own decoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tt_platform.ib.emulator.contracts import ContractSpec

if TYPE_CHECKING:
    from tt_platform.ib.emulator.broker import Execution, OrderTicket, WhatIf

SERVER_VERSION = 176
Fields = list[object]


@dataclass(frozen=True)
class BarRow:
    date: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: int


def handshake(connection_time: str, server_version: int = SERVER_VERSION) -> Fields:
    return [server_version, connection_time]


def next_valid_id(order_id: int) -> Fields:
    return [9, 1, order_id]


def managed_accounts(accounts: Sequence[str]) -> Fields:
    return [15, 1, ",".join(accounts)]


def error(req_id: int, code: int, message: str, advanced_reject_json: str = "") -> Fields:
    return [4, 2, req_id, code, message, advanced_reject_json]


def current_time(epoch_seconds: int) -> Fields:
    return [49, 1, epoch_seconds]


def contract_details(req_id: int, spec: ContractSpec, trading_hours: str = "", liquid_hours: str = "") -> Fields:
    return [
        10,
        req_id,
        spec.symbol,
        spec.sec_type,
        "",  # lastTradeDate
        0.0,  # strike
        "",  # right
        "SMART",  # exchange
        spec.currency,
        spec.symbol,  # localSymbol
        spec.trading_class,  # marketName
        spec.trading_class,
        spec.con_id,
        spec.min_tick,
        "",  # multiplier
        "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,COND,DAY,GTC,LMT,MKT,STP,STPLMT,TRAIL",  # orderTypes
        f"SMART,{spec.primary_exchange}",  # validExchanges
        1,  # priceMagnifier
        0,  # underConId
        spec.long_name,
        spec.primary_exchange,
        "",  # contractMonth
        "",  # industry
        "",  # category
        "",  # subcategory
        spec.time_zone,
        trading_hours,
        liquid_hours,
        "",  # evRule
        "",  # evMultiplier
        0,  # number of secIds (no tag/value pairs follow)
        1,  # aggGroup
        "",  # underSymbol
        "",  # underSecType
        "26",  # marketRuleIds
        "",  # realExpirationDate
        spec.stock_type,
        0.0001,  # minSize
        0.0001,  # sizeIncrement
        100,  # suggestedSizeIncrement
    ]


def contract_details_end(req_id: int) -> Fields:
    return [52, 1, req_id]


def historical_data(req_id: int, start: str, end: str, rows: Sequence[BarRow]) -> Fields:
    fields: Fields = [17, req_id, start, end, len(rows)]
    for r in rows:
        fields += [r.date, r.open, r.high, r.low, r.close, r.volume, r.wap, r.count]
    return fields


def historical_data_update(req_id: int, row: BarRow) -> Fields:
    # note IB's order here: open, close, high, low, wap, volume
    return [90, req_id, row.count, row.date, row.open, row.close, row.high, row.low, row.wap, row.volume]


def realtime_bar(req_id: int, epoch_seconds: int, row: BarRow) -> Fields:
    return [50, 3, req_id, epoch_seconds, row.open, row.high, row.low, row.close, row.volume, row.wap, row.count]


def head_timestamp(req_id: int, text: str) -> Fields:
    return [88, req_id, text]


def tick_price(req_id: int, tick_type: int, price: float, size: float, attr_mask: int = 0) -> Fields:
    return [1, 6, req_id, tick_type, price, size, attr_mask]


def tick_size(req_id: int, tick_type: int, size: float) -> Fields:
    return [2, 6, req_id, tick_type, size]


def market_data_type(req_id: int, data_type: int) -> Fields:
    return [58, 1, req_id, data_type]


def tick_snapshot_end(req_id: int) -> Fields:
    return [57, 1, req_id]


def order_status(ticket: OrderTicket) -> Fields:
    return [
        3,
        ticket.order_id,
        ticket.status,
        ticket.filled,
        ticket.remaining,
        ticket.avg_fill_price,
        ticket.perm_id,
        ticket.parent_id,
        ticket.last_fill_price,
        ticket.client_id,
        "",  # whyHeld
        0.0,  # mktCapPrice
    ]


def _money(value: float) -> str:
    return f"{value:.2f}"


def open_order(ticket: OrderTicket, spec: ContractSpec, what_if: WhatIf | None = None) -> Fields:
    """openOrder at version 176 with deltaNeutralOrderType empty (no 8 extra fields).

    With ``what_if`` it is the answer to a what-if order: whatIf set and the OrderState's margin
    and commission fields filled in (IB sends the margin values as text).
    """
    state = ("",) * 9 if what_if is None else tuple(
        _money(v)
        for v in (
            what_if.init_margin_before,
            what_if.maint_margin_before,
            what_if.equity_with_loan_before,
            what_if.init_margin_change,
            what_if.maint_margin_change,
            what_if.equity_with_loan_change,
            what_if.init_margin_after,
            what_if.maint_margin_after,
            what_if.equity_with_loan_after,
        )
    )
    commission = None if what_if is None else what_if.commission
    named: list[tuple[str, object]] = [
        ("msgId", 5),
        ("orderId", ticket.order_id),
        ("conId", spec.con_id),
        ("symbol", spec.symbol),
        ("secType", spec.sec_type),
        ("lastTradeDate", ""),
        ("strike", 0.0),
        ("right", ""),
        ("multiplier", ""),
        ("exchange", ticket.exchange),
        ("currency", spec.currency),
        ("localSymbol", spec.symbol),
        ("tradingClass", spec.trading_class),
        ("action", ticket.action),
        ("totalQuantity", ticket.quantity),
        ("orderType", ticket.order_type),
        ("lmtPrice", ticket.lmt_price),
        ("auxPrice", ticket.aux_price),
        ("tif", ticket.tif),
        ("ocaGroup", ""),
        ("account", ticket.account),
        ("openClose", ""),
        ("origin", 0),
        ("orderRef", ticket.order_ref),
        ("clientId", ticket.client_id),
        ("permId", ticket.perm_id),
        ("outsideRth", ticket.outside_rth),
        ("hidden", False),
        ("discretionaryAmt", 0.0),
        ("goodAfterTime", ""),
        ("sharesAllocation", ""),
        ("faGroup", ""),
        ("faMethod", ""),
        ("faPercentage", ""),
        ("faProfile", ""),
        ("modelCode", ""),
        ("goodTillDate", ""),
        ("rule80A", ""),
        ("percentOffset", None),
        ("settlingFirm", ""),
        ("shortSaleSlot", 0),
        ("designatedLocation", ""),
        ("exemptCode", -1),
        ("auctionStrategy", 0),
        ("startingPrice", None),
        ("stockRefPrice", None),
        ("delta", None),
        ("stockRangeLower", None),
        ("stockRangeUpper", None),
        ("displaySize", 0),
        ("blockOrder", False),
        ("sweepToFill", False),
        ("allOrNone", False),
        ("minQty", None),
        ("ocaType", 3),
        ("eTradeOnly", False),
        ("firmQuoteOnly", False),
        ("nbboPriceCap", None),
        ("parentId", ticket.parent_id),
        ("triggerMethod", 0),
        ("volatility", None),
        ("volatilityType", 0),
        ("deltaNeutralOrderType", ""),
        ("deltaNeutralAuxPrice", None),
        ("continuousUpdate", False),
        ("referencePriceType", 0),
        ("trailStopPrice", None),
        ("trailingPercent", None),
        ("basisPoints", None),
        ("basisPointsType", None),
        ("comboLegsDescrip", ""),
        ("numComboLegs", 0),
        ("numOrderComboLegs", 0),
        ("numSmartComboRoutingParams", 0),
        ("scaleInitLevelSize", None),
        ("scaleSubsLevelSize", None),
        ("scalePriceIncrement", None),
        ("hedgeType", ""),
        ("optOutSmartRouting", False),
        ("clearingAccount", ""),
        ("clearingIntent", "IB"),
        ("notHeld", False),
        ("deltaNeutralContractPresent", False),
        ("algoStrategy", ""),
        ("solicited", False),
        ("whatIf", what_if is not None),
        ("status", ticket.status),
        ("initMarginBefore", state[0]),
        ("maintMarginBefore", state[1]),
        ("equityWithLoanBefore", state[2]),
        ("initMarginChange", state[3]),
        ("maintMarginChange", state[4]),
        ("equityWithLoanChange", state[5]),
        ("initMarginAfter", state[6]),
        ("maintMarginAfter", state[7]),
        ("equityWithLoanAfter", state[8]),
        ("commission", commission),
        ("minCommission", commission),
        ("maxCommission", commission),
        ("commissionCurrency", "" if what_if is None else "USD"),
        ("warningText", ""),
        ("randomizeSize", False),
        ("randomizePrice", False),
        ("numConditions", 0),
        ("adjustedOrderType", "None"),
        ("triggerPrice", None),
        ("trailStopPrice2", None),
        ("lmtPriceOffset", None),
        ("adjustedStopPrice", None),
        ("adjustedStopLimitPrice", None),
        ("adjustedTrailingAmount", None),
        ("adjustableTrailingUnit", 0),
        ("softDollarTierName", ""),
        ("softDollarTierValue", ""),
        ("softDollarTierDisplayName", ""),
        ("cashQty", None),
        ("dontUseAutoPriceForHedge", True),
        ("isOmsContainer", False),
        ("discretionaryUpToLimitPrice", False),
        ("usePriceMgmtAlgo", False),
        ("duration", None),  # version >= 159
        ("postToAts", None),  # version >= 160
        ("autoCancelParent", False),  # version >= 162
        ("minTradeQty", None),
        ("minCompeteSize", None),
        ("competeAgainstBestOffset", None),
        ("midOffsetAtWhole", None),
        ("midOffsetAtHalf", None),  # version >= 170
    ]
    return [value for _, value in named]


OPEN_ORDER_FIELD_COUNT = 128


def open_order_end() -> Fields:
    return [53, 1]


def exec_details(req_id: int, execution: Execution, spec: ContractSpec) -> Fields:
    return [
        11,
        req_id,  # -1 for a live execution
        execution.order_id,
        spec.con_id,
        spec.symbol,
        spec.sec_type,
        "",  # lastTradeDate
        0.0,  # strike
        "",  # right
        "",  # multiplier
        execution.exchange,
        spec.currency,
        spec.symbol,  # localSymbol
        spec.trading_class,
        execution.exec_id,
        execution.time_text,
        execution.account,
        execution.exchange,
        execution.side,
        execution.shares,
        execution.price,
        execution.perm_id,
        execution.client_id,
        0,  # liquidation
        execution.cum_qty,
        execution.avg_price,
        execution.order_ref,
        "",  # evRule
        None,  # evMultiplier
        "",  # modelCode
        1,  # lastLiquidity: 1 = added liquidity
    ]


def exec_details_end(req_id: int) -> Fields:
    return [55, 1, req_id]


def commission_report(execution: Execution) -> Fields:
    return [59, 1, execution.exec_id, execution.commission, "USD", execution.realized_pnl, None, None]


def position(account: str, spec: ContractSpec, quantity: float, avg_cost: float) -> Fields:
    return [
        61,
        3,
        account,
        spec.con_id,
        spec.symbol,
        spec.sec_type,
        "",  # lastTradeDate
        0.0,  # strike
        "",  # right
        "",  # multiplier
        spec.primary_exchange,  # exchange
        spec.currency,
        spec.symbol,
        spec.trading_class,
        quantity,
        avg_cost,
    ]


def position_end() -> Fields:
    return [62, 1]


def account_value(key: str, value: str, currency: str, account: str) -> Fields:
    return [6, 2, key, value, currency, account]


def portfolio_value(
    spec: ContractSpec,
    quantity: float,
    market_price: float,
    market_value: float,
    avg_cost: float,
    unrealized_pnl: float,
    realized_pnl: float,
    account: str,
) -> Fields:
    return [
        7,
        8,
        spec.con_id,
        spec.symbol,
        spec.sec_type,
        "",  # lastTradeDate
        0.0,  # strike
        "",  # right
        "",  # multiplier
        spec.primary_exchange,
        spec.currency,
        spec.symbol,
        spec.trading_class,
        quantity,
        market_price,
        market_value,
        avg_cost,
        unrealized_pnl,
        realized_pnl,
        account,
    ]


def account_time(hh_mm: str) -> Fields:
    return [8, 1, hh_mm]


def account_download_end(account: str) -> Fields:
    return [54, 1, account]


def account_update_multi(
    req_id: int, account: str, key: str, value: str, currency: str, model_code: str = ""
) -> Fields:
    return [73, 1, req_id, account, model_code, key, value, currency]


def account_update_multi_end(req_id: int) -> Fields:
    return [74, 1, req_id]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> Fields:
    return [63, 1, req_id, account, tag, value, currency]


def account_summary_end(req_id: int) -> Fields:
    return [64, 1, req_id]


def completed_orders_end() -> Fields:
    return [102]
