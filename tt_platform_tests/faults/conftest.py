"""The fault-injection suite (`make faults`): every test here is marked `faults`, records what it
injected and checked in the session's ledger, and the run ends with the ledger's table."""

from __future__ import annotations

from pathlib import Path

import pytest

from tt_platform_tests.faults.ledger import FaultLedger

_LEDGER = FaultLedger()
RESULTS = Path(__file__).resolve().parents[2] / "faults-results.json"


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on markers
def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.faults)
    # the soaks measure the session's memory over a long run, as in a run worker of its own: they
    # go first, before other tests have grown and fragmented this process's heap
    items.sort(key=lambda item: Path(item.fspath).name != "test_soak.py")


@pytest.fixture(scope="session")
def fault_ledger() -> FaultLedger:
    return _LEDGER


def pytest_terminal_summary(terminalreporter):
    if not _LEDGER.kinds:
        return
    terminalreporter.section("faults injected and invariants checked")
    terminalreporter.write_line(_LEDGER.table())
    _LEDGER.write(RESULTS)
    terminalreporter.write_line(f"(written to {RESULTS.name})")
