"""A straightforward decoder of PostgreSQL binary COPY, used to check the vectorised encoder."""

from __future__ import annotations

import struct

from tt_platform.store.copy_binary import HEADER, TRAILER


def decode_rows(data: bytes) -> list[tuple[bytes | None, ...]]:
    assert data.startswith(HEADER), "missing binary COPY header"
    assert data.endswith(TRAILER), "missing binary COPY trailer"
    pos, end = len(HEADER), len(data) - len(TRAILER)
    rows = []
    while pos < end:
        (count,) = struct.unpack_from(">h", data, pos)
        pos += 2
        fields: list[bytes | None] = []
        for _ in range(count):
            (length,) = struct.unpack_from(">i", data, pos)
            pos += 4
            if length == -1:
                fields.append(None)
            else:
                fields.append(data[pos : pos + length])
                pos += length
        rows.append(tuple(fields))
    assert pos == end, "trailing bytes after the last row"
    return rows
