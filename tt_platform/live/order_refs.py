"""Idempotency keys for orders: the text every order carries as IB's ``orderRef``.

IB order ids are not safe as keys (after a gateway restart ``nextValidId`` can roll back and ids
be reused), but ``orderRef`` comes back on open orders and on executions. A ref is built only
from what the decision knows -- session, bar, symbol, side and a sequence number -- so a
restarted job recomputes the same ref for the same decision and can see that the broker already
has it.

Format: ``tt:<session>:<bar time, epoch seconds in base 36>:<symbol>:<B|S>:<sequence, base 36>``,
e.g. ``tt:3f9a01bc:s0x3k0:AAPL:B:0`` (at most ``MAX_REF_LENGTH`` characters).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

PREFIX = "tt"
SEPARATOR = ":"
# IB documents no limit; 40 characters keeps refs readable in TWS and in log lines.
MAX_REF_LENGTH = 40
SESSION_KEY_LENGTH = 8

_SESSION_PATTERN = re.compile(r"[A-Za-z0-9]{1,8}")
_BASE36_PATTERN = re.compile(r"[0-9a-z]+")
_SIDES = {"BUY": "B", "SELL": "S"}
_SIDE_NAMES = {code: name for name, code in _SIDES.items()}
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def session_key(session_id: str) -> str:
    """A short, stable key for a long session or run id (8 hex characters of its SHA-1)."""
    if not session_id:
        raise ValueError("session_key: session_id is empty")
    return hashlib.sha1(session_id.encode()).hexdigest()[:SESSION_KEY_LENGTH]


@dataclass(frozen=True)
class OrderRef:
    """The fields an order ref is made of.

    session: 1-8 letters or digits (``session_key`` shortens a run id).
    bar_time: the decision bar, tz-aware, whole seconds.
    side: ``"BUY"`` or ``"SELL"``.
    sequence: 0 for the decision's first order of this symbol and side; a resubmission (an
        unfilled limit converted to market) takes the next number, so it is a new order.
    """

    session: str
    bar_time: datetime
    symbol: str
    side: str
    sequence: int = 0

    def __post_init__(self) -> None:
        if not _SESSION_PATTERN.fullmatch(self.session):
            raise ValueError(f"OrderRef.session must be 1-8 letters or digits, got "
                             f"{self.session!r}")
        if not isinstance(self.bar_time, datetime) or self.bar_time.tzinfo is None:
            raise ValueError(f"OrderRef.bar_time must be a tz-aware datetime, got "
                             f"{self.bar_time!r}")
        if self.bar_time.microsecond or getattr(self.bar_time, "nanosecond", 0):
            raise ValueError(f"OrderRef.bar_time must be whole seconds, got {self.bar_time!r}")
        if self.bar_time.timestamp() < 0:
            raise ValueError(f"OrderRef.bar_time must not precede 1970, got {self.bar_time!r}")
        if (not self.symbol or SEPARATOR in self.symbol or not self.symbol.isprintable()
                or self.symbol != self.symbol.strip()):
            raise ValueError(f"OrderRef.symbol must be printable text without {SEPARATOR!r} or "
                             f"surrounding spaces, got {self.symbol!r}")
        if self.side not in _SIDES:
            raise ValueError(f"OrderRef.side must be 'BUY' or 'SELL', got {self.side!r}")
        if isinstance(self.sequence, bool) or not isinstance(self.sequence, int) \
                or self.sequence < 0:
            raise ValueError(f"OrderRef.sequence must be an int >= 0, got {self.sequence!r}")
        if len(self.text) > MAX_REF_LENGTH:
            raise ValueError(f"OrderRef {self.text!r} is {len(self.text)} characters; the limit "
                             f"is {MAX_REF_LENGTH} (shorten the symbol or the session)")

    @property
    def text(self) -> str:
        """The ``orderRef`` string."""
        seconds = int(self.bar_time.timestamp())
        return SEPARATOR.join((PREFIX, self.session, _to_base36(seconds), self.symbol,
                               _SIDES[self.side], _to_base36(self.sequence)))

    def next(self) -> OrderRef:
        """The ref of a resubmission of this order (same decision, next sequence number)."""
        return OrderRef(self.session, self.bar_time, self.symbol, self.side, self.sequence + 1)

    def __str__(self) -> str:
        return self.text


def order_ref(session: str, bar_time: datetime, symbol: str, side: str,
              sequence: int = 0) -> str:
    """The ``orderRef`` text for one order; the same inputs always give the same text."""
    return OrderRef(session, bar_time, symbol, side, sequence).text


def parse_order_ref(text: str) -> OrderRef:
    """The fields of a ref made by ``order_ref``; ValueError for any other text (an order
    placed by hand or by another tool)."""
    parts = text.split(SEPARATOR) if isinstance(text, str) else []
    if len(parts) != 6 or parts[0] != PREFIX:
        raise ValueError(f"not a tt order ref: {text!r}")
    _, session, bar, symbol, side, sequence = parts
    if not (_BASE36_PATTERN.fullmatch(bar) and _BASE36_PATTERN.fullmatch(sequence)) \
            or side not in _SIDE_NAMES:
        raise ValueError(f"not a tt order ref: {text!r}")
    ref = OrderRef(session, datetime.fromtimestamp(int(bar, 36), UTC), symbol,
                   _SIDE_NAMES[side], int(sequence, 36))
    if ref.text != text:  # e.g. leading zeros: two texts must never name one order
        raise ValueError(f"not a canonical tt order ref: {text!r}")
    return ref


def is_order_ref(text: str) -> bool:
    """True when ``text`` is a ref made by ``order_ref`` (any session)."""
    try:
        parse_order_ref(text)
    except ValueError:
        return False
    return True


def already_sent(ref: str, known_refs: Collection[str]) -> bool:
    """True when the broker already knows this order: ``known_refs`` are the ``orderRef``s of
    its open orders and of its executions (filled, partly filled or cancelled after a fill).

    Such an order is never sent again. ``known_refs`` must come from requests that completed:
    a failed or timed-out request is not "nothing open", and the caller must not decide on it.
    """
    if not isinstance(ref, str) or not ref:
        raise ValueError(f"already_sent: ref must be a non-empty string, got {ref!r}")
    return ref in known_refs


def _to_base36(value: int) -> str:
    if value == 0:
        return "0"
    digits = []
    while value:
        value, rest = divmod(value, 36)
        digits.append(_DIGITS[rest])
    return "".join(reversed(digits))
