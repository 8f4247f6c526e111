"""Server behaviour outside the happy path, and the emulator in the caller's own event loop."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from ib_insync import IB, MarketOrder, Stock

from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator import GatewayEmulator
from tt_platform_tests.ib.conftest import wait_until

pytestmark = pytest.mark.timeout(60)


def test_a_malformed_request_gets_an_error_and_the_connection_survives(start_gateway, daily_source):
    gateway = start_gateway(daily_source)
    ib = IB()
    errors = []
    ib.errorEvent += lambda req_id, code, message, contract: errors.append((req_id, code, message))
    ib.connect("127.0.0.1", gateway.port, clientId=3, timeout=5)
    try:
        ib.client.send(20, 99)  # reqHistoricalData cut after the request id
        assert wait_until(ib, lambda: any(code == 321 for _, code, _ in errors))
        assert any("reqHistoricalData: expected at least" in m for _, code, m in errors if code == 321)
        contract = Stock("AAA", "SMART", "USD")
        assert ib.qualifyContracts(contract) == [contract]  # still served
    finally:
        ib.disconnect()


def test_a_client_that_does_not_speak_the_api_is_disconnected(start_gateway, daily_source):
    gateway = start_gateway(daily_source)
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert sock.recv(1024) == b""  # closed without an answer
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        payload = b"v100..120"  # older than any version ib_insync 0.9.86 supports
        sock.sendall(b"API\0" + struct.pack(">I", len(payload)) + payload)
        assert sock.recv(1024) == b""
    assert gateway.emulator.sessions == {}


def test_emulator_and_client_in_one_event_loop(daily_source, daily_frame):
    """``await emulator.start()`` next to ``IB.connectAsync`` in the same loop."""

    async def scenario():
        emulator = GatewayEmulator(daily_source, clock=ScaledClock(100))
        port = await emulator.start()
        ib = IB()
        await ib.connectAsync("127.0.0.1", port, clientId=4, timeout=5)
        try:
            contract = Stock("BBB", "SMART", "USD")
            await ib.qualifyContractsAsync(contract)
            bars = await ib.reqHistoricalDataAsync(
                contract, "20210201 00:00:00 UTC", "1 M", "1 day", "TRADES", False, 2
            )
            trade = ib.placeOrder(contract, MarketOrder("BUY", 1))
            while not trade.isDone():
                await asyncio.sleep(0.01)
            return bars, trade
        finally:
            ib.disconnect()
            await emulator.stop()

    bars, trade = asyncio.get_event_loop().run_until_complete(scenario())
    expected = daily_frame[(daily_frame.symbol == "BBB") & (daily_frame.ts.dt.strftime("%Y-%m") == "2021-01")]
    assert [b.close for b in bars] == list(expected["close"])
    assert trade.orderStatus.status == "Filled"


def test_account_state_survives_a_gateway_restart(start_gateway, daily_source):
    gateway = start_gateway(daily_source, scale=100.0)
    ib = IB()
    ib.connect("127.0.0.1", gateway.port, clientId=1, timeout=5)
    contract = Stock("AAA", "SMART", "USD")
    ib.qualifyContracts(contract)
    trade = ib.placeOrder(contract, MarketOrder("BUY", 7))
    assert wait_until(ib, trade.isDone)
    gateway.call(gateway.emulator.restart(down_seconds=20.0))
    with pytest.raises(ConnectionError, match="Socket disconnect"):  # how ib_insync reports the drop
        wait_until(ib, lambda: False, timeout=5)
    assert not ib.isConnected()
    ib.connect("127.0.0.1", gateway.port, clientId=1, timeout=5)
    try:
        assert [(p.contract.symbol, p.position) for p in ib.positions()] == [("AAA", 7.0)]
        assert gateway.emulator.stats.restarts == 1
    finally:
        ib.disconnect()


def test_connectivity_calls_need_a_running_emulator(daily_source):
    emulator = GatewayEmulator(daily_source)
    with pytest.raises(RuntimeError, match="not running"):
        asyncio.get_event_loop().run_until_complete(emulator.connectivity_lost())
