"""IB error events, what they mean for a request, and the exceptions of the IB layer.

Error 162 is overloaded by IB: "pacing violation" (retry later), "HMDS query returned no data"
(the answer is: nothing there) and "Time length exceed max" (invalid request) all share it, so
the message decides. Error 322 "Only 50 simultaneous API historical data requests allowed" is,
like a pacing violation, a reason to wait and ask again. ib_insync ends a request with an empty
list on any error, which is why a caller must look at the error events to tell "refused" from
"no data".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ErrorKind(str, Enum):
    PACING = "pacing"
    TOO_MANY_OPEN = "too_many_open"  # error 322: more than 50 simultaneous historical requests
    NO_DATA = "no_data"
    NO_SECURITY = "no_security"
    INVALID_REQUEST = "invalid_request"
    NO_PERMISSION = "no_permission"
    CONNECTIVITY = "connectivity"
    TIMEOUT = "timeout"
    INFO = "info"
    OTHER = "other"


CONNECTIVITY_CODES = {1100, 1101, 1102, 2110}
# data-farm status notices and other warnings that do not end a request
INFO_CODES = {202, 399, 2104, 2106, 2107, 2108, 2119, 2158}


@dataclass(frozen=True)
class IBError:
    req_id: int
    code: int
    message: str

    @property
    def kind(self) -> ErrorKind:
        return classify_error(self.code, self.message)

    def __str__(self) -> str:
        return f"error {self.code} (reqId {self.req_id}): {self.message}"


def classify_error(code: int, message: str) -> ErrorKind:
    text = message.lower()
    if code == 162:
        if "pacing violation" in text:
            return ErrorKind.PACING
        if "returned no data" in text or "no data" in text:
            return ErrorKind.NO_DATA
        if "time length exceed" in text or "invalid" in text:
            return ErrorKind.INVALID_REQUEST
        return ErrorKind.OTHER
    if code == 200:
        return ErrorKind.NO_SECURITY
    if code == 322 and "simultaneous" in text:
        return ErrorKind.TOO_MANY_OPEN
    if code in (321, 10314, 10315):
        return ErrorKind.INVALID_REQUEST
    if code in (354, 10089, 10090, 10167, 10168):
        return ErrorKind.NO_PERMISSION
    if code in CONNECTIVITY_CODES or code in (502, 504, 1300):
        return ErrorKind.CONNECTIVITY
    if code == -1:
        return ErrorKind.TIMEOUT
    if code in INFO_CODES or 2100 <= code < 2200:
        return ErrorKind.INFO
    return ErrorKind.OTHER


def refusal(errors: list[IBError]) -> bool:
    """Whether these errors mean the request was refused (as opposed to answered, maybe empty)."""
    return any(e.kind not in (ErrorKind.NO_DATA, ErrorKind.INFO, ErrorKind.CONNECTIVITY) for e in errors)


# answers that mean "ask again later": the pacer backs off and the request is retried
RETRY_KINDS = frozenset({ErrorKind.PACING, ErrorKind.TOO_MANY_OPEN})


class IBConnectionLost(ConnectionError):
    """The socket to TWS / IB Gateway dropped (or was never up) while a request needed it."""


class IBRequestTimeout(TimeoutError):
    """IB did not answer a request in time (neither data nor an error)."""
