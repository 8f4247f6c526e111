from __future__ import annotations

import pytest

from tt_platform.ib.errors import ErrorKind, IBError, classify_error, refusal


@pytest.mark.parametrize(
    "code, message, kind",
    [
        (
            162,
            "Historical Market Data Service error message:Historical data request pacing violation",
            ErrorKind.PACING,
        ),
        (
            162,
            "Historical Market Data Service error message:HMDS query returned no data: AAPL@SMART Trades",
            ErrorKind.NO_DATA,
        ),
        (162, "Historical Market Data Service error message:Time length exceed max.", ErrorKind.INVALID_REQUEST),
        (200, "No security definition has been found for the request", ErrorKind.NO_SECURITY),
        (321, "Error validating request", ErrorKind.INVALID_REQUEST),
        (354, "Requested market data is not subscribed", ErrorKind.NO_PERMISSION),
        (1100, "Connectivity between IB and Trader Workstation has been lost.", ErrorKind.CONNECTIVITY),
        (
            1102,
            "Connectivity between IB and Trader Workstation has been restored - data maintained.",
            ErrorKind.CONNECTIVITY,
        ),
        (2104, "Market data farm connection is OK:usfarm", ErrorKind.INFO),
        (-1, "no answer within 5 s", ErrorKind.TIMEOUT),
        (10182, "Failed to request live updates (disconnected).", ErrorKind.OTHER),
    ],
)
def test_error_classification(code, message, kind):
    assert classify_error(code, message) is kind
    assert IBError(3, code, message).kind is kind


def test_no_data_is_not_a_refusal_but_everything_else_is():
    no_data = IBError(1, 162, "HMDS query returned no data")
    assert not refusal([no_data])
    assert not refusal([])
    assert refusal([no_data, IBError(1, 200, "No security definition")])
    assert refusal([IBError(1, -1, "no answer within 5 s")])
    assert "error 200 (reqId 1)" in str(IBError(1, 200, "No security definition"))
