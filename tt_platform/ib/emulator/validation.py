"""Contract descriptions IB refuses before looking anything up: error 321, not 200.

IB validates a request's contract description first and answers error 321 ("Error validating
request") when it is malformed: a security type IB does not know, neither a symbol nor a conId,
or no exchange where the request needs one (data requests and orders; a contract-details search
may leave it blank). A well-formed description that matches nothing is error 200 ("No security
definition has been found for the request").
"""

from __future__ import annotations

from tt_platform.ib.emulator.inbound import ContractRef

SECURITY_TYPES = frozenset(
    {"STK", "OPT", "FUT", "CONTFUT", "IND", "FOP", "CASH", "BAG", "WAR", "IOPT", "BOND", "CMDTY", "NEWS", "FUND",
     "CFD", "CRYPTO", "EC", "FIXED", "SLB", "BSK", "ICU", "ICS", "PHYSS", "BILL"}
)
INVALID = "Error validating request.-'{request}' : cause - {cause}"


def contract_problem(ref: ContractRef, request: str, *, needs_exchange: bool = True) -> str | None:
    """IB's 321 message for a malformed contract description in ``request``, or None."""
    if ref.sec_type and ref.sec_type not in SECURITY_TYPES:
        return INVALID.format(request=request, cause=f"Invalid security type {ref.sec_type}")
    if not ref.con_id and not ref.symbol:
        return INVALID.format(request=request, cause="Please enter a symbol or a contract id")
    if needs_exchange and not ref.exchange:
        cause = "Missing order exchange" if request == "placeOrder" else "Please enter exchange"
        return INVALID.format(request=request, cause=cause)
    return None
