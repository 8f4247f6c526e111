from __future__ import annotations

import json

import pytest

from tt_platform.ib.emulator import FaultPlan
from tt_platform.ib.emulator.contracts import ContractBook, stable_con_id


def test_fault_plan_from_json(tmp_path):
    path = tmp_path / "faults.json"
    path.write_text(
        json.dumps(
            {
                "unknown_symbols": ["aapl"],
                "drop_mid_historical": [3],
                "pacing_rules": {"max_requests": 10},
                "connectivity_blips": [[5, 2]],
                "historical_delay_seconds": 1.5,
            }
        )
    )
    plan = FaultPlan.from_json_file(path)
    assert plan.unknown_symbols == frozenset({"AAPL"})
    assert plan.drop_mid_historical == frozenset({3})
    assert plan.pacing_rules.max_requests == 10
    assert plan.connectivity_blips == ((5.0, 2.0),)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"drop_after_mesages": 3}, "unknown keys"),
        ({"drop_after_messages": 0}, "drop_after_messages must be >= 1"),
        ({"historical_delay_seconds": -1}, "historical_delay_seconds must be >= 0"),
        ({"drop_mid_historical": [0]}, "1-based"),
        ({"pacing_rules": {"max_request": 1}}, "pacing_rules"),
        ({"pacing_rules": 5}, "must be a mapping"),
    ],
)
def test_bad_fault_plans_name_the_problem(data, message):
    with pytest.raises(ValueError, match=message):
        FaultPlan.from_mapping(data, origin="plan.json")


def test_fault_plan_file_errors(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must be a JSON object"):
        FaultPlan.from_json_file(path)
    with pytest.raises(ValueError, match="cannot read"):
        FaultPlan.from_json_file(tmp_path / "missing.json")


def test_contract_book_lookups_are_stable():
    book = ContractBook(["aapl", "spy", "xom"])
    aapl = book.lookup("AAPL")
    assert aapl.con_id == stable_con_id("AAPL") and aapl.primary_exchange == "NASDAQ"
    assert book.lookup("SPY").primary_exchange == "ARCA" and book.lookup("XOM").primary_exchange == "NYSE"
    assert book.lookup(con_id=aapl.con_id) is aapl
    assert book.lookup("MSFT", aapl.con_id) is None  # conId and symbol must agree
    assert book.lookup("ZZZ") is None and "xom" in book


def test_open_request_cap_and_per_symbol_delays():
    plan = FaultPlan.from_mapping(
        {"max_open_historical": 10, "historical_delay_seconds": 1, "historical_delay_by_symbol": {"slow": 5}}
    )
    assert plan.max_open_historical == 10 and FaultPlan().max_open_historical == 50
    assert plan.historical_delay("SLOW") == 5.0 and plan.historical_delay("other") == 1.0
    assert FaultPlan(max_open_historical=None).max_open_historical is None
    with pytest.raises(ValueError, match="max_open_historical"):
        FaultPlan(max_open_historical=0)
    with pytest.raises(ValueError, match="delays must be >= 0"):
        FaultPlan(historical_delay_by_symbol={"A": -1})


def test_an_open_contract_book_defines_any_symbol():
    book = ContractBook([], open=True)
    spec = book.lookup("zzz")
    assert spec.symbol == "ZZZ" and spec.con_id == stable_con_id("ZZZ")
    assert book.lookup("ZZZ", spec.con_id) == spec and book.lookup("YYY", spec.con_id) is None
    assert book.lookup("NEW", stable_con_id("NEW")).symbol == "NEW"  # known by conId after qualifying
    closed = ContractBook(["AAA"])
    assert closed.lookup("ZZZ") is None and closed.lookup("ZZZ", stable_con_id("ZZZ")) is None
