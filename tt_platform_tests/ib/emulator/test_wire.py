from __future__ import annotations

import math

import pytest

from tt_platform.ib.emulator.wire import (
    FrameReader,
    ProtocolError,
    encode_fields,
    format_field,
    join_frames,
    round_to_tick,
)


def test_field_text_follows_what_ib_insync_parses():
    assert [format_field(v) for v in (None, True, False, 7, -1, 10.0, 0.1, 1e20, math.nan, math.inf, "x")] == [
        "",
        "1",
        "0",
        "7",
        "-1",
        "10",
        "0.1",
        "1e+20",
        "",
        "Infinite",
        "x",
    ]


def test_prices_are_rounded_to_the_tick_without_float_noise():
    assert round_to_tick(474.59000000000003, 0.01) == 474.59
    assert format_field(round_to_tick(0.1 + 0.2, 0.01)) == "0.3"
    assert round_to_tick(10.126, 0.05) == 10.15
    with pytest.raises(ValueError):
        round_to_tick(1.0, 0.0)


def test_frames_split_correctly_however_the_bytes_arrive():
    stream = join_frames([[9, 1, 5], [15, 1, "DU1"], [4, 2, -1, 2104, "ok", ""]])
    reader = FrameReader()
    frames = []
    for i in range(0, len(stream), 3):  # dribble 3 bytes at a time
        frames += reader.feed(stream[i : i + 3])
    assert frames == [["9", "1", "5"], ["15", "1", "DU1"], ["4", "2", "-1", "2104", "ok", ""]]
    assert reader.pending == 0


def test_malformed_frames_are_rejected():
    frame = encode_fields([1, 2])
    bad = frame[:-1] + b"x"  # last field without its NUL terminator
    with pytest.raises(ProtocolError, match="NUL"):
        FrameReader().feed(bad)
    with pytest.raises(ProtocolError, match="exceeds"):
        FrameReader().feed(b"\xff\xff\xff\xff")
