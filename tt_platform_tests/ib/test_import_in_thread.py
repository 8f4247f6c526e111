"""A Dagster step may be the first code to import the IB client, on a thread with no event loop."""

import subprocess
import sys

PROGRAM = """
import threading
errors = []
def first_import():
    try:
        from tt_platform.data.sources.emulator import EmulatedIBBarSource
        EmulatedIBBarSource(seed=1).close()
    except Exception as exc:
        errors.append(repr(exc))
thread = threading.Thread(target=first_import)
thread.start(); thread.join()
print(errors or "ok")
"""


def test_the_ib_sources_import_and_start_on_a_thread_without_an_event_loop():
    completed = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120)
    assert completed.stdout.strip().splitlines()[-1] == "ok", completed.stderr[-2000:]
