"""IB ingestion through ib_insync and the emulator into the store, under faults."""

import os
import signal
import subprocess
import sys
import time
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from tt_platform.ib.emulator.faults import FaultPlan
from tt_platform.ib.emulator.server import GatewayEmulator, serve_in_thread
from tt_platform.ib.emulator.sources import SyntheticBarSource
from tt_platform.pipeline.ib_source import ingest_from_ib
from tt_platform.settings import PlatformSettings
from tt_platform.store.engine import create_store_engine, ensure_schema
from tt_platform.store.prices import read_bars

SYMBOLS = ["AAA", "BBB", "CCC"]
START, END = date(2019, 1, 2), date(2021, 12, 31)

CHILD = """
import sys
from datetime import date
from tt_platform.pipeline.ib_source import ingest_from_ib
from tt_platform.settings import PlatformSettings
from tt_platform.store.engine import create_store_engine
engine = create_store_engine(sys.argv[1])
ingest_from_ib(engine, ["AAA", "BBB", "CCC"], date(2019, 1, 2), date(2021, 12, 31), interval="1d", adjusted=False,
               settings=PlatformSettings(IB_HOST="127.0.0.1", IB_PORT=int(sys.argv[2]), IB_CLIENT_ID=int(sys.argv[3])))
"""


def settings_for(port: int, client_id: int = 31) -> PlatformSettings:
    return PlatformSettings(IB_HOST="127.0.0.1", IB_PORT=port, IB_CLIENT_ID=client_id)


def stored(engine) -> pd.DataFrame:
    return read_bars(engine, SYMBOLS, interval="1d").reset_index(drop=True)


@pytest.fixture
def gateway():
    # requests run concurrently: AAA is answered after 0.6 s, BBB and CCC only after 3 s, so
    # the kill lands after AAA is stored and before the others are
    faults = FaultPlan(historical_delay_seconds=0.6, historical_delay_by_symbol={"BBB": 3.0, "CCC": 3.0})
    emulator = GatewayEmulator(SyntheticBarSource(SYMBOLS, seed=5), faults=faults)
    with serve_in_thread(emulator) as thread:
        yield thread


@pytest.mark.slow
def test_kill_9_mid_backfill_then_rerun_equals_a_clean_run(gateway, store_url, fresh_schema_url):
    engine = create_store_engine(store_url)
    child = subprocess.Popen([sys.executable, "-c", CHILD, store_url, str(gateway.port), "41"], env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        with engine.connect() as conn:
            while time.monotonic() < deadline:
                count = conn.execute(sa.text("select count(*) from tt_prices")).scalar_one()
                conn.commit()
                if count > 0:
                    break
                assert child.poll() is None, "the backfill ended before it could be killed"
                time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    partial = stored(engine)
    assert 0 < len(partial) < 3 * 757  # it really stopped half way
    assert set(partial["symbol"]) == {"AAA"} and len(partial) == 757  # AAA whole, nothing else

    ingest_from_ib(engine, SYMBOLS, START, END, interval="1d", adjusted=False, settings=settings_for(gateway.port, 42))
    rerun = stored(engine)

    clean_engine = create_store_engine(fresh_schema_url)
    ensure_schema(clean_engine)
    result = ingest_from_ib(clean_engine, SYMBOLS, START, END, interval="1d", adjusted=False, settings=settings_for(gateway.port, 43))
    clean = stored(clean_engine)

    assert result.refused == ()
    assert len(clean) == 3 * 757  # NYSE sessions 2019-2021
    pd.testing.assert_frame_equal(rerun, clean)


def test_unknown_symbol_is_refused_and_others_complete(store_engine):
    emulator = GatewayEmulator(
        SyntheticBarSource(["AAA"], seed=5), faults=FaultPlan(enforce_pacing=False, unknown_symbols=frozenset({"ZZZ"}))
    )
    with serve_in_thread(emulator) as thread:
        result = ingest_from_ib(
            store_engine, ["AAA", "ZZZ"], date(2021, 1, 4), date(2021, 3, 31), interval="1d", adjusted=False,
            settings=settings_for(thread.port),
        )
    assert result.refused == ("ZZZ",)
    bars = read_bars(store_engine, ["AAA", "ZZZ"], interval="1d")
    assert set(bars["symbol"]) == {"AAA"}
    assert len(bars) == result.rows == 61  # sessions in 2021-01-04..2021-03-31
