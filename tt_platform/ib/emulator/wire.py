"""TWS socket framing: 4-byte big-endian length, then NUL-terminated UTF-8 fields.

Field text follows what ib_insync's decoder can parse: ints and bools as ``0``/``1`` (never
``1.0`` or ``False``), None as the empty string, floats in their shortest round-trip form with
no arithmetic noise (callers round to the tick or precision first).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence

HEADER = struct.Struct(">I")
API_PREFIX = b"API\0"
MAX_FRAME = 16 * 1024 * 1024


class ProtocolError(ValueError):
    """A client sent bytes that are not a valid TWS API message."""


def format_field(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "Infinite" if value > 0 else "-Infinite"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return str(value)


def encode_fields(fields: Sequence[object]) -> bytes:
    payload = "".join(format_field(f) + "\0" for f in fields).encode("utf-8")
    return HEADER.pack(len(payload)) + payload


def encode_raw(payload: bytes) -> bytes:
    return HEADER.pack(len(payload)) + payload


def decode_payload(payload: bytes) -> list[str]:
    text = payload.decode("utf-8", errors="backslashreplace")
    if not text.endswith("\0"):
        raise ProtocolError(f"message does not end with a NUL field terminator: {text[:60]!r}")
    return text[:-1].split("\0")


def round_to_tick(price: float, tick: float) -> float:
    """Nearest multiple of ``tick``, as the shortest float (no 474.59000000000003)."""
    if tick <= 0:
        raise ValueError(f"tick must be > 0, got {tick}")
    decimals = max(0, 2 - math.floor(math.log10(tick)))
    return round(round(price / tick) * tick, decimals)


class FrameReader:
    """Incremental splitter of a byte stream into frames (lists of fields)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[list[str]]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buffer)
            if size > MAX_FRAME:
                raise ProtocolError(f"frame of {size} bytes exceeds the {MAX_FRAME} byte limit")
            end = HEADER.size + size
            if len(self._buffer) < end:
                break
            frames.append(decode_payload(bytes(self._buffer[HEADER.size : end])))
            del self._buffer[:end]
        return frames

    @property
    def pending(self) -> int:
        return len(self._buffer)


def join_frames(frames: Iterable[Sequence[object]]) -> bytes:
    return b"".join(encode_fields(f) for f in frames)
