"""Two runs on one machine never connect to a gateway with the same IB client id."""

import signal
import subprocess
import sys
import threading
from datetime import date

import pytest

from tt_platform.data.sources.base import BarRequest
from tt_platform.data.sources.emulator import EmulatedIBBarSource
from tt_platform.data.sources.ib import IBBarSource, IBSourceConfig
from tt_platform.ib.client_ids import ClientIdLease, ClientIdsInUse

HOLDER = """
import sys, time
from tt_platform.ib.client_ids import ClientIdLease
lease = ClientIdLease(sys.argv[1], "127.0.0.1", 4002, 17)
print(lease.acquire(), flush=True)
time.sleep(120)
"""


def test_a_second_lease_on_the_same_gateway_takes_the_next_id_and_a_released_one_is_reused(tmp_path):
    first = ClientIdLease(tmp_path, "127.0.0.1", 4002, 17)
    second = ClientIdLease(tmp_path, "127.0.0.1", 4002, 17)
    other_gateway = ClientIdLease(tmp_path, "127.0.0.1", 4001, 17)
    assert (first.acquire(), second.acquire(), other_gateway.acquire()) == (17, 18, 17)
    first.release()
    assert ClientIdLease(tmp_path, "127.0.0.1", 4002, 17).acquire() == 17


def test_a_lease_held_by_another_process_is_skipped_and_freed_when_it_is_killed(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "17"
        mine = ClientIdLease(tmp_path, "127.0.0.1", 4002, 17)
        assert mine.acquire() == 18
        mine.release()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        assert ClientIdLease(tmp_path, "127.0.0.1", 4002, 17).acquire() == 17
    finally:
        if holder.poll() is None:
            holder.kill()


def test_when_every_id_is_taken_the_error_says_which_and_what_to_do(tmp_path):
    held = [ClientIdLease(tmp_path, "127.0.0.1", 4002, 17, span=2) for _ in range(2)]
    assert [lease.acquire() for lease in held] == [17, 18]
    with pytest.raises(ClientIdsInUse, match=r"IB client ids 17\.\.18 at 127\.0\.0\.1:4002 are all in use.*IB_CLIENT_ID"):
        ClientIdLease(tmp_path, "127.0.0.1", 4002, 17, span=2).acquire()


def test_two_sources_with_the_same_client_id_fetch_from_one_gateway_at_once(tmp_path):
    with EmulatedIBBarSource(seed=3) as gateway_owner:
        config = IBSourceConfig(port=gateway_owner.port, client_id=17, client_id_locks=str(tmp_path), connect_attempts=2)
        results, errors = {}, []

        def fetch(name: str) -> None:
            try:
                with IBBarSource(config) as source:
                    answers = []
                    report = source.fetch(
                        [BarRequest("AAA", date(2021, 3, 1), date(2021, 3, 31))], interval="1d", adjusted=False, on_bars=answers.append
                    )
                    results[name] = (sum(len(a.bars) for a in answers), report.failed)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(repr(exc))

        threads = [threading.Thread(target=fetch, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    # without the lease the second connection is refused (error 326, client id in use)
    assert errors == []
    assert sorted(results) == ["a", "b"]
    assert all(bars == 23 and not failed for bars, failed in results.values())
