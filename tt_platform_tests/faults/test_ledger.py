"""The ledger counts what fired and what was checked, and its table says so."""

from tt_platform_tests.faults.ledger import FaultLedger


def test_the_table_counts_faults_and_invariants(tmp_path):
    ledger = FaultLedger()
    ledger.injected("socket drop", 3)
    ledger.checked("socket drop", "0 bars lost", "no duplicate rows")
    ledger.checked("socket drop", "0 bars lost")
    ledger.measured("soak", "RSS slope MiB/1000 bars", 0.25)
    table = ledger.table()
    assert "socket drop" in table and "0 bars lost ×2" in table and "no duplicate rows" in table
    assert "RSS slope MiB/1000 bars: 0.25" in table
    assert table.splitlines()[-1].split()[1:3] == ["3", "3"]
    ledger.write(tmp_path / "faults.json")
    assert '"injected": 3' in (tmp_path / "faults.json").read_text()
