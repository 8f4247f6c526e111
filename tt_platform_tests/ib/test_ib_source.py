"""IBBarSource and EmulatedIBBarSource against the BarSource contract (tt_platform.data.sources.base).

Everything goes through real ib_insync and the bundled gateway emulator on a loopback port.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pandas as pd
import pytest
from pydantic import ValidationError

from tt_platform.data.sources.base import BarRequest, BarSource, SymbolBars
from tt_platform.data.sources.emulator import EmulatedIBBarSource, EmulatorSourceConfig
from tt_platform.data.sources.ib import IBBarSource, IBSourceConfig
from tt_platform.data.synthetic import generate_bars
from tt_platform.ib.emulator import FaultPlan

pytestmark = pytest.mark.timeout(90)
SEED = 11
FAST = IBSourceConfig(connect_attempts=20, connect_backoff_seconds=0.02, connect_backoff_max_seconds=0.2)


def emulated(**kw) -> EmulatedIBBarSource:
    client = kw.pop("client", FAST)
    kw.setdefault("last_session", date(2021, 12, 31))
    return EmulatedIBBarSource(EmulatorSourceConfig(seed=SEED, **kw), client=client)


def fetch(source: BarSource, requests, interval="1d", adjusted=False):
    got: list[SymbolBars] = []
    report = source.fetch(requests, interval=interval, adjusted=adjusted, on_bars=got.append)
    return report, got


def days(answer: SymbolBars) -> set[date]:
    return {answer.start + timedelta(days=i) for i in range((answer.end - answer.start).days + 1)}


def assert_slices_tile_the_requests(requests: list[BarRequest], got: list[SymbolBars]) -> None:
    """Every slice lies inside a request of its symbol; the slices of each request cover its days once."""
    for request in requests:
        symbol = request.symbol.upper()  # answers name symbols in upper case
        mine = [g for g in got if g.symbol == symbol and request.start <= g.start and g.end <= request.end]
        covered = [d for g in mine for d in days(g)]
        assert sorted(covered) == sorted(days(SymbolBars(request.symbol, request.start, request.end, None)))
        for g in mine:
            stamps = g.bars["ts"]
            assert g.bars.empty or (stamps.dt.date.min() >= g.start and stamps.dt.date.max() <= g.end)
    for g in got:
        assert any(g.symbol == r.symbol.upper() and r.start <= g.start <= g.end <= r.end for r in requests)


def synthetic(symbols, start, end, interval="1d") -> pd.DataFrame:
    return generate_bars(symbols, start, end, interval=interval, seed=SEED)


def test_the_emulated_source_serves_the_seeded_synthetic_bars_for_any_symbol():
    requests = [BarRequest("ANY1", date(2019, 1, 1), date(2021, 12, 31)), BarRequest("zeta", date(2021, 6, 1), date(2021, 6, 30))]
    with emulated() as source:
        report, got = fetch(source, requests)
    assert report.failed == {} and report.requests == 2 and report.pacing_violations == 0
    assert all(g.refused is None for g in got)
    bars = pd.concat([g.bars for g in got], ignore_index=True).sort_values(["symbol", "ts"]).reset_index(drop=True)
    expected = pd.concat(
        [synthetic(["ANY1"], "2019-01-01", "2021-12-31"), synthetic(["ZETA"], "2021-06-01", "2021-06-30")],
        ignore_index=True,
    ).sort_values(["symbol", "ts"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(bars, expected, rtol=1e-6, check_dtype=False)  # 6 decimals on the wire
    assert_slices_tile_the_requests(requests, got)


def test_a_refused_symbol_is_answered_once_and_the_others_complete():
    requests = [
        BarRequest("AAA", date(2021, 1, 4), date(2021, 3, 31)),
        BarRequest("ZZZ", date(2021, 1, 4), date(2021, 3, 31)),
        BarRequest("ZZZ", date(2021, 4, 1), date(2021, 4, 30)),
    ]
    with emulated(unknown_symbols=frozenset({"ZZZ"})) as source:
        report, got = fetch(source, requests)
    refused = [g for g in got if g.symbol == "ZZZ"]
    assert len(refused) == 1 and refused[0].bars.empty and "No security definition" in refused[0].refused
    assert (refused[0].start, refused[0].end) == (date(2021, 1, 4), date(2021, 3, 31))
    assert "ZZZ" not in report.failed and report.failed == {}
    aaa = [g for g in got if g.symbol == "AAA"]
    assert sum(len(g.bars) for g in aaa) == 61 and all(g.refused is None for g in aaa)


def test_listed_from_is_the_head_timestamp():
    with emulated() as source:
        _, long = fetch(source, [BarRequest("AAA", date(1995, 1, 1), date(2001, 6, 30))])
        _, short = fetch(source, [BarRequest("BBB", date(2021, 6, 1), date(2021, 6, 30))])
    listed = date(2000, 1, 3)  # where the synthetic generator starts
    assert {g.listed_from for g in long} == {listed}
    # the days before the listing are answered too: no bars there
    before = [g for g in long if g.end < listed]
    assert len(before) == 1 and before[0].bars.empty and before[0].start == date(1995, 1, 1)
    assert sum(len(g.bars) for g in long) == len(synthetic(["AAA"], "2000-01-03", "2001-06-30"))
    # a one-month request is not worth two more messages per symbol: the listing date is not asked
    assert {g.listed_from for g in short} == {None}
    with emulated(client=FAST.model_copy(update={"head_timestamps": "always"})) as source:
        _, asked = fetch(source, [BarRequest("BBB", date(2021, 6, 1), date(2021, 6, 30))])
    assert {g.listed_from for g in asked} == {listed}


def test_on_bars_slices_lie_inside_the_requests_and_cover_them_once():
    requests = [
        BarRequest("AAA", date(2018, 3, 15), date(2021, 7, 1)),
        BarRequest("AAA", date(2021, 7, 2), date(2021, 12, 31)),
        BarRequest("BBB", date(2020, 2, 29), date(2020, 3, 2)),
    ]
    config = FAST.model_copy(update={"years_per_request": 1})  # several windows per request
    with emulated(client=config) as source:
        report, got = fetch(source, requests)
    assert report.failed == {} and len(got) > len(requests)
    assert_slices_tile_the_requests(requests, got)
    stamps = pd.concat([g.bars for g in got if g.symbol == "AAA"]).ts
    assert not stamps.duplicated().any()
    assert len(stamps) == len(synthetic(["AAA"], "2018-03-15", "2021-12-31"))


def test_minute_bars_arrive_as_whole_days():
    requests = [BarRequest("AAA", date(2021, 3, 1), date(2021, 3, 5))]
    with emulated() as source:
        report, got = fetch(source, requests, interval="1min")
    assert report.failed == {} and report.requests == 10  # two padded half-day windows per day
    assert [(g.start, g.end) for g in sorted(got, key=lambda g: g.start)] == [
        (date(2021, 3, d), date(2021, 3, d)) for d in range(1, 6)
    ]
    assert [len(g.bars) for g in got] == [390] * 5
    assert_slices_tile_the_requests(requests, got)


def test_a_window_read_as_exclusive_start_loses_no_session():
    requests = [BarRequest("AAA", date(2019, 1, 2), date(2021, 12, 31))]
    config = FAST.model_copy(update={"years_per_request": 1})
    with emulated(window_reading="exclusive_start", client=config) as source:
        report, got = fetch(source, requests)
    assert report.failed == {}
    assert sum(len(g.bars) for g in got) == 757  # NYSE sessions 2019-2021
    unpadded = config.model_copy(update={"pad_windows": False})
    with emulated(window_reading="exclusive_start", client=unpadded) as source:
        _, lossy = fetch(source, requests)
    stamps = set(pd.concat([g.bars for g in lossy]).ts)
    assert len(stamps) == 756 and pd.Timestamp("2019-01-02", tz="UTC") not in stamps  # the window's first session


def test_requests_that_time_out_are_reported_failed_and_not_answered():
    faults = FaultPlan(historical_delay_by_symbol={"SLOW": 3000.0})  # 30 s real at 100x
    config = FAST.model_copy(update={"request_timeout": 0.5})
    with emulated(faults=faults, scale=100.0, client=config) as source:
        report, got = fetch(
            source, [BarRequest("SLOW", date(2021, 1, 4), date(2021, 1, 29)), BarRequest("FAST", date(2021, 1, 4), date(2021, 1, 29))]
        )
    assert set(report.failed) == {"SLOW"} and "no answer within 0.5 s" in report.failed["SLOW"]
    assert "\n" not in report.failed["SLOW"]
    assert [g.symbol for g in got] == ["FAST"] and len(got[0].bars) == 19


def test_ib_out_of_reach_fails_every_request_with_the_reason():
    with emulated() as source:
        port = source.port
    config = IBSourceConfig(port=port, connect_attempts=2, connect_backoff_seconds=0.01, connect_backoff_max_seconds=0.02)
    with IBBarSource(config) as source:
        report, got = fetch(source, [BarRequest("AAA", date(2021, 1, 4), date(2021, 1, 29)), BarRequest("BBB", date(2021, 1, 4), date(2021, 1, 29))])
    assert got == [] and set(report.failed) == {"AAA", "BBB"}
    assert f"cannot connect to IB at 127.0.0.1:{port}" in report.failed["AAA"]


def test_a_socket_drop_costs_one_reconnect_and_no_window_is_delivered_twice():
    faults = FaultPlan(drop_mid_historical=frozenset({3}))
    config = FAST.model_copy(update={"years_per_request": 1})
    requests = [BarRequest(s, date(2019, 1, 1), date(2021, 12, 31)) for s in ("AAA", "BBB")]
    with emulated(faults=faults, client=config) as source:
        report, got = fetch(source, requests)
        log = source.emulator.history_log
    assert report.reconnects == 1 and report.failed == {}
    assert report.requests > 6 and [r.outcome for r in log].count("dropped") == 1
    slices = [(g.symbol, g.start) for g in got]
    assert len(slices) == len(set(slices)) == 6
    assert_slices_tile_the_requests(requests, got)


def test_the_report_counts_requests_and_open_requests():
    faults = FaultPlan(historical_delay_seconds=50.0)  # 0.5 s per answer at 100x: answers overlap
    config = FAST.model_copy(update={"max_open_requests": 8})
    with emulated(faults=faults, scale=100.0, client=config) as source:
        report, got = fetch(source, [BarRequest(f"S{i:02d}", date(2021, 12, 1), date(2021, 12, 31)) for i in range(30)])
        seen = source.emulator.stats.max_open_historical
    assert report.requests == 30 and len(got) == 30 and report.failed == {}
    assert report.max_open_requests == seen == 8
    assert report.as_metadata()["max_open_requests"] == 8


def test_adjusted_bars_and_intervals_ib_does_not_serve():
    with emulated() as source:
        report, got = fetch(source, [BarRequest("AAA", date(2021, 1, 4), date(2021, 1, 29))], adjusted=True)
        assert report.failed == {} and len(got[0].bars) == 19
        assert [r.end for r in source.emulator.history_log] == [""]  # ADJUSTED_LAST ends now
        with pytest.raises(ValueError, match="adjusted 1h bars"):
            fetch(source, [BarRequest("AAA", date(2021, 1, 4), date(2021, 1, 29))], interval="1h", adjusted=True)
        with pytest.raises(ValueError, match="unsupported interval"):
            fetch(source, [BarRequest("AAA", date(2021, 1, 4), date(2021, 1, 29))], interval="5min")
    assert source.name == "ib_emulator" and source.serves_adjusted and IBBarSource.name == "ib"


def test_the_config_is_explicit_validated_and_masks_the_account(caplog):
    with pytest.raises(ValidationError):
        IBSourceConfig(max_open_requests=51)
    with pytest.raises(ValidationError):
        IBSourceConfig(hots="typo")
    settings = type("S", (), {"ib_host": "10.1.2.3", "ib_port": 4001, "ib_client_id": 5, "ib_account": "U7654321"})()
    config = IBSourceConfig.from_settings(settings, max_open_requests=20)
    assert (config.host, config.port, config.client_id, config.max_open_requests) == ("10.1.2.3", 4001, 5, 20)
    assert "U7654321" not in repr(config) and "U7654321" not in str(config.model_dump())
    caplog.set_level(logging.DEBUG)  # ib_insync echoes every message at DEBUG
    with emulated(account="DU7654321") as source:
        report, _ = fetch(source, [BarRequest("AAA", date(2021, 1, 4), date(2021, 1, 8))])
    assert report.failed == {}
    assert "<<< 15," in caplog.text  # the managed-accounts message was logged ...
    assert "DU7654321" not in caplog.text  # ... without the account
