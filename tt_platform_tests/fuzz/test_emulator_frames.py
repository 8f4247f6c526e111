"""Fuzzing the IB Gateway emulator from a hostile client: bytes that are no handshake, broken
version ranges, length prefixes beyond the frame limit, frames cut short, payloads that are not
UTF-8 or lack their terminator, and real requests (as ib_insync 0.9.86 encodes them) with fields
garbled, lost or added.

Property: the emulator answers a bad request with an error and goes on serving that connection,
or drops the connection; it never hangs on it, never logs an unhandled exception, forgets the
connection once it is gone, and keeps serving a well-behaved client connected all along.
"""

from __future__ import annotations

import itertools
import logging
import socket
import time
from collections.abc import Callable

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tt_platform.data.synthetic import generate_bars
from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator import FrameBarSource, GatewayEmulator, serve_in_thread
from tt_platform.ib.emulator.wire import (
    API_PREFIX,
    HEADER,
    MAX_FRAME,
    FrameReader,
    ProtocolError,
    decode_payload,
    encode_fields,
)
from tt_platform_tests.fuzz.properties import FUZZ

pytestmark = pytest.mark.timeout(300)

VERSIONS = b"v157..176"
READ_SECONDS = 5.0
# requests as ib_insync 0.9.86 encodes them (its Client with server version 176) for symbol AAA
CONTRACT = ["0", "AAA", "STK", "", "0.0", "", "", "SMART", "", "USD", "", ""]
REQUESTS = [
    ["3", "5", *CONTRACT, "", "", "BUY", "3", "LMT", "101.5", "", "", "", "", "O", "0", "", "1", "0", "0", "0", "0", "0",
     "0", "0", "", "0.0", "", "", "", "", "", "", "", "0", "", "-1", "0", "", "", "0", "", "", "0", "0", "", "0", "", "", "",
     "", "", "0", "", "", "", "", "0", "", "", "", "", "", "", "", "", "", "", "0", "", "", "0", "0", "", "", "0", "", "0",
     "0", "0", "0", "", "", "", "", "", "", "0", "", "", "", "", "", "", "", "", "0", "0", "0", "0", "", "", "0", "", ""],
    ["20", "7", *CONTRACT, "0", "", "1 day", "1 M", "1", "TRADES", "1", "0", ""],
    ["1", "11", "8", *CONTRACT, "0", "", "0", "0", ""],
    ["50", "3", "9", *CONTRACT, "5", "TRADES", "0", ""],
    ["87", "10", *CONTRACT, "0", "1", "TRADES", "1"],
    ["9", "8", "11", *CONTRACT, "0", "", "", ""],
    ["7", "3", "12", "0", "", "", "", "", "", ""],
    ["4", "1", "5", ""],
    ["6", "2", "1", ""],
    ["62", "1", "13", "All", "NetLiquidation"],
    ["76", "1", "14", "", "", "0"],
    ["2", "2", "8"], ["25", "1", "7"], ["51", "1", "9"], ["77", "1", "14"],
    ["61", "1"], ["64", "1"], ["49", "1"], ["8", "1", "1"], ["5", "1"], ["16", "1"], ["99", "0"], ["58", "1"],
    ["17", "1"], ["71", "2", "3", ""],
]
FIELDS = st.one_of(
    st.sampled_from([
        "", " ", "x", "-1", "0", "1", "1.5", "1e400", "1.e400", "-1.e400", "nan", "inf", "-inf", "1.7976931348623157e308",
        "99999999999999999999999", "9" * 5000, "٣", "AAA", "BAG", "MKT", "LMT", "SELL", "20210201 00:00:00 UTC",
        "99999 Y", "-5 D", "1 secs", "0 S", "MIDPOINT", "USD", "EUR", "é", "\U0001f4a5",
    ]),
    st.text(max_size=8).filter(lambda text: "\x00" not in text),
)


@st.composite
def garbled_request(draw) -> bytes:
    """A real request with a few fields garbled, lost or added, as one frame."""
    fields = list(draw(st.sampled_from(REQUESTS)))
    for _ in range(draw(st.integers(1, 4))):
        change = draw(st.sampled_from(["garble", "garble", "garble", "garble", "cut", "add", "message id"]))
        if change == "garble" and len(fields) > 1:
            fields[draw(st.integers(1, len(fields) - 1))] = draw(FIELDS)
        elif change == "message id" and fields:
            fields[0] = draw(st.one_of(FIELDS, st.integers(-5, 200).map(str)))
        elif change == "cut":
            fields = fields[: draw(st.integers(0, len(fields)))]
        elif change == "add":
            fields.insert(draw(st.integers(0, len(fields))), draw(FIELDS))
    return encode_fields(fields)


RAW_FRAMES = st.one_of(
    st.binary(max_size=64).map(lambda payload: HEADER.pack(len(payload)) + payload),  # no NUL terminator, not UTF-8
    st.binary(max_size=64).map(lambda payload: HEADER.pack(len(payload) + 1) + payload + b"\0"),
    st.just(HEADER.pack(0)),
)
OVERSIZED = st.integers(MAX_FRAME + 1, 2**32 - 1).map(HEADER.pack)
HANDSHAKES = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"", b"v", b"v157", b"v..", b"v157..", b"vabc..def", b"v157..1" + b"9" * 5000, b"v1..2",
                     b"\xff\xfe..\x00", b" v157..176", b"v157..176 extra"])
    .map(lambda versions: API_PREFIX + HEADER.pack(len(versions)) + versions),
    st.sampled_from([API_PREFIX + HEADER.pack(2**32 - 1), API_PREFIX + HEADER.pack(10) + b"v157", b"API", b"API\0\0\0"]),
)


def _well_formed(frame: bytes) -> bool:
    """A frame with its terminator and a numeric message id: a request, however wrong, that
    gets an answer; anything else may end the connection."""
    try:
        fields = decode_payload(frame[HEADER.size:])
        int(fields[0])
    except (ProtocolError, ValueError):
        return False
    return True


class RawClient:
    """A client speaking the socket protocol by hand: the handshake, then frames."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=READ_SECONDS)
        self.reader = FrameReader()

    def start(self, client_id: int) -> None:
        self.sock.sendall(API_PREFIX + HEADER.pack(len(VERSIONS)) + VERSIONS)
        assert self.read_until(lambda fields: len(fields) == 2 and fields[0] == "176") == "answered", "no handshake"
        self.send(encode_fields(["71", "2", client_id, ""]))
        assert self.read_until(lambda fields: fields[0] == "9") == "answered", "no next valid id"

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # dropped already: what the reads say next

    def stop_sending(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # dropped already

    def read_until(self, wanted: Callable[[list[str]], bool]) -> str:
        """"answered" once a frame ``wanted`` arrives, "dropped" when the server closes first,
        "silent" when neither happens within READ_SECONDS."""
        deadline = time.monotonic() + READ_SECONDS
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return "silent"
            except ConnectionResetError:
                return "dropped"
            if not data:
                return "dropped"
            try:
                frames = self.reader.feed(data)
            except ProtocolError as exc:
                raise AssertionError(f"the emulator sent a broken frame: {exc}") from None
            if any(wanted(fields) for fields in frames):
                return "answered"
        return "silent"

    def close(self) -> None:
        self.sock.close()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def gateway():
    bars = generate_bars(["AAA", "BBB"], "2021-01-04", "2021-03-31", interval="1d", seed=7)
    with serve_in_thread(GatewayEmulator(FrameBarSource(bars), clock=ScaledClock(100.0))) as thread:
        yield thread


@pytest.fixture(scope="module")
def errors_logged():
    """Every ERROR the emulator or asyncio logs (an unhandled exception in a connection)."""
    handler = _Collect()
    loggers = [logging.getLogger("asyncio"), logging.getLogger("tt_platform.ib.emulator")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler.records
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture(scope="module")
def bystander(gateway):
    """A well-behaved client connected through the whole fuzzing."""
    client = RawClient(gateway.port)
    client.start(client_id=1)
    yield client
    client.close()


CLIENT_IDS = itertools.count(100)


def assert_still_serving(gateway, bystander: RawClient, errors_logged: list) -> None:
    bystander.send(encode_fields(["49", "1"]))
    assert bystander.read_until(lambda fields: fields[0] == "49") == "answered", "the bystander is no longer served"
    deadline = time.monotonic() + READ_SECONDS
    while set(gateway.emulator.sessions) != {1} and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(gateway.emulator.sessions) == {1}, f"a gone connection is still registered: {gateway.emulator.sessions}"
    assert not errors_logged, [record.getMessage() for record in errors_logged]


@FUZZ
@given(HANDSHAKES)
def test_a_client_that_fails_the_handshake_is_dropped(gateway, bystander, errors_logged, raw):
    errors_logged.clear()
    client = RawClient(gateway.port)
    try:
        client.send(raw)
        client.stop_sending()
        outcome = client.read_until(lambda fields: False)
    finally:
        client.close()
    event(outcome)
    assert outcome == "dropped", "the emulator kept a connection that never completed the handshake"
    assert_still_serving(gateway, bystander, errors_logged)


@FUZZ
@given(st.lists(st.one_of(garbled_request(), garbled_request(), RAW_FRAMES), min_size=1, max_size=4),
       st.sampled_from(["marker", "marker", "oversized", "cut"]))
def test_bad_frames_get_an_answer_or_the_connection_is_dropped(gateway, bystander, errors_logged, frames, ending):
    errors_logged.clear()
    client = RawClient(gateway.port)
    try:
        client.start(client_id=next(CLIENT_IDS))
        for frame in frames:
            client.send(frame)
        if ending == "marker":  # reqCurrentTime: a connection still served answers it
            client.send(encode_fields(["49", "1"]))
            outcome = client.read_until(lambda fields: fields[0] == "49")
            if all(_well_formed(frame) for frame in frames):
                assert outcome == "answered", "the emulator dropped a connection over requests it can answer with an error"
            assert outcome in ("answered", "dropped"), "the emulator neither answered nor dropped the connection"
        else:
            client.send(b"\x00\x00\x00" if ending == "cut" else HEADER.pack(MAX_FRAME + 1))
            client.stop_sending()
            outcome = client.read_until(lambda fields: False)
            assert outcome == "dropped", "the emulator kept a connection after a cut or oversized frame"
    finally:
        client.close()
    event(f"{ending}: {outcome}")
    assert_still_serving(gateway, bystander, errors_logged)


def test_an_empty_version_range_drops_the_client_without_an_unhandled_error(gateway, bystander, errors_logged):
    errors_logged.clear()
    client = RawClient(gateway.port)
    client.send(API_PREFIX + HEADER.pack(0))
    outcome = client.read_until(lambda fields: False)
    client.close()
    assert outcome == "dropped"
    assert_still_serving(gateway, bystander, errors_logged)


@pytest.mark.parametrize("frame, problem", [
    (["25", "1", "1.e400"], "cancel: field 2 is not an integer: '1.e400'"),
    (["4", "1", "-1.e400", ""], "cancelOrder: field 2 is not an integer: '-1.e400'"),
])
def test_an_infinite_number_in_an_integer_field_is_answered_as_a_bad_field(gateway, bystander, errors_logged, frame,
                                                                          problem):
    errors_logged.clear()
    client = RawClient(gateway.port)
    client.start(client_id=next(CLIENT_IDS))
    client.send(encode_fields(frame))
    outcome = client.read_until(lambda fields: fields[0] == "4" and fields[3] == "321" and problem in fields[4])
    client.close()
    assert outcome == "answered"
    assert_still_serving(gateway, bystander, errors_logged)
