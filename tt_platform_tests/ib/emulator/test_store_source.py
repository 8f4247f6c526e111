import pandas as pd

from tt_platform.data.synthetic import generate_bars
from tt_platform.ib.client import IBMarketData
from tt_platform.ib.emulator.faults import FaultPlan
from tt_platform.ib.emulator.server import GatewayEmulator, serve_in_thread
from tt_platform.ib.emulator.sources import StoreBarSource
from tt_platform.store.prices import write_bars


def test_emulator_replays_the_platform_store_through_ib_insync(store_engine):
    stored = generate_bars(["AAA", "BBB"], "2021-01-04", "2021-06-30", seed=9)
    write_bars(store_engine, stored, source="csv", interval="1d", adjusted=False)
    source = StoreBarSource(store_engine)
    assert source.symbols() == ["AAA", "BBB"]
    emulator = GatewayEmulator(source, faults=FaultPlan(enforce_pacing=False))
    with serve_in_thread(emulator) as gateway:
        with IBMarketData("127.0.0.1", gateway.port, client_id=61, request_timeout=20) as client:
            result = client.historical_bars("BBB", "2021-02-01", "2021-04-01", interval="1d")  # end exclusive
    expected = stored[(stored.symbol == "BBB") & (stored.ts >= "2021-02-01") & (stored.ts < "2021-04-01")]
    assert not result.refused
    assert len(result.bars) == len(expected) == 42
    pd.testing.assert_series_equal(
        result.bars["close"].reset_index(drop=True), expected["close"].reset_index(drop=True), check_exact=False, rtol=1e-9
    )
