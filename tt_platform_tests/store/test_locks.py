"""Writers of the same symbols take turns; writers of other symbols do not wait."""

import threading

from tt_platform.store.locks import lock_symbols, symbol_key
from tt_platform.store.prices import read_bars, replace_slices
from tt_platform_tests.store.bars_factory import random_bars

DAILY = {"source": "test", "interval": "1d", "adjusted": False}
JANUARY = ("2020-01-01", "2020-01-31")


def _replace_in_thread(engine, symbols, seed):
    bars = random_bars(symbols, 31, seed=seed)
    done = threading.Event()

    def run():
        replace_slices(engine, bars, [(s, *JANUARY) for s in symbols], **DAILY)
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done, bars


def test_symbol_keys_are_stable_signed_32_bit_and_case_blind():
    assert symbol_key("spy ") == symbol_key("SPY")
    assert all(-(2**31) <= symbol_key(s) < 2**31 for s in ("SPY", "QQQ", "BRK.B", "X" * 40))


def test_a_writer_of_a_locked_symbol_waits_for_the_holder_and_then_writes_its_own_rows(store_engine):
    with store_engine.connect() as holder:
        with holder.begin():
            # another run holds QQQ and SPY (in the other order than the writer below lists them)
            lock_symbols(holder, "tt_prices", ["SPY", "QQQ"])
            waiting, waiting_done, waiting_bars = _replace_in_thread(store_engine, ["QQQ", "SPY"], seed=1)
            free, free_done, _ = _replace_in_thread(store_engine, ["IWM"], seed=2)
            assert free_done.wait(timeout=30), "a writer of other symbols waited for the holder"
            assert not waiting_done.wait(timeout=1.0), "a writer of held symbols did not wait"
        assert waiting_done.wait(timeout=30), "the writer never got the locks after the holder committed"
    waiting.join(timeout=5)
    free.join(timeout=5)
    stored = read_bars(store_engine, ["QQQ", "SPY"])
    assert len(stored) == len(waiting_bars)
