"""``python -m tt_platform.ib.emulator``: a real process, reached by the real client."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tt_platform.ib.client import IBMarketData
from tt_platform.ib.emulator import main
from tt_platform.ib.emulator.cli import build_emulator, build_parser
from tt_platform.ib.models import ResolvedContract, Unresolved

pytestmark = pytest.mark.timeout(60)


def test_module_entry_point_serves_ib_insync(tmp_path):
    command = [sys.executable, "-m", "tt_platform.ib.emulator", "--port", "0", "--synthetic", "AAA,BBB", "--seed", "3"]
    with (tmp_path / "gateway.log").open("w") as log:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            line = proc.stdout.readline()
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            assert match, f"unexpected first line {line!r}"
            with IBMarketData("127.0.0.1", int(match.group(1)), 5, request_timeout=10) as client:
                resolved = client.qualify(["AAA", "ZZZ"])
                bars = client.historical_bars("BBB", "2021-01-01", "2021-02-01").bars
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=10)
    assert isinstance(resolved["AAA"], ResolvedContract) and isinstance(resolved["ZZZ"], Unresolved)
    assert len(bars) == 19 and set(bars.symbol) == {"BBB"}
    assert proc.returncode == 0 and "stopped" in out
    assert "Traceback" not in (tmp_path / "gateway.log").read_text()


def test_cli_options_build_the_emulator(tmp_path):
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps({"unknown_symbols": ["AAA"], "historical_delay_seconds": 2}))
    args = build_parser().parse_args(
        [
            "--synthetic",
            "AAA,BBB",
            "--scale",
            "10",
            "--replay-start",
            "2021-06-01",
            "--replay-interval",
            "1h",
            "--faults",
            str(faults),
            "--no-pacing",
            "--account",
            "DU7",
            "--cash",
            "5000",
            "--port",
            "0",
        ]
    )
    emulator = build_emulator(args)
    assert emulator.clock.scale == 10 and emulator.broker.account == "DU7" and emulator.broker.cash == 5000
    assert emulator.replay.config.interval == "1h" and str(emulator.replay.cursor.date()) == "2021-06-01"
    assert emulator.faults.unknown_symbols == {"AAA"} and emulator.faults.historical_delay_seconds == 2
    assert not emulator.faults.enforce_pacing


def test_bad_arguments_give_an_exit_code_and_a_reason(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "missing"), "--port", "0"]) == 2
    assert "is not a directory" in capsys.readouterr().err
    bad = tmp_path / "faults.json"
    bad.write_text('{"nonsense": 1}')
    assert main(["--synthetic", "AAA", "--faults", str(bad), "--port", "0"]) == 2
    assert "unknown keys ['nonsense']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--port", "0"])  # --data or --synthetic is required


def test_the_main_module_can_be_imported_without_starting_a_server():
    from tt_platform.ib.emulator.__main__ import main as entry

    assert entry is main


def test_cli_window_reading_open_request_cap_and_any_symbol():
    args = build_parser().parse_args(
        ["--synthetic", "*", "--window-reading", "exclusive_start", "--max-open-requests", "7", "--port", "0"]
    )
    emulator = build_emulator(args)
    assert emulator.window_reading == "exclusive_start" and emulator.faults.max_open_historical == 7
    assert emulator.contracts.lookup("ANYTHING") is not None  # any symbol is served
    lifted = build_emulator(build_parser().parse_args(["--synthetic", "AAA", "--max-open-requests", "0"]))
    assert lifted.faults.max_open_historical is None and lifted.window_reading == "inclusive_start"
    assert lifted.contracts.lookup("ANYTHING") is None
    assert build_emulator(build_parser().parse_args(["--synthetic", "AAA"])).faults.max_open_historical == 50


def test_signals_pull_the_cable_toggle_connectivity_and_restart_a_running_emulator(tmp_path):
    """What a person does to watch a client recover: kill -USR1 cuts every socket, -USR2 sends
    1100 and then 1102, -HUP restarts the gateway; the client reconnects after each."""
    import signal
    import time

    from ib_insync import IB

    command = [sys.executable, "-m", "tt_platform.ib.emulator", "--port", "0", "--synthetic", "AAA",
               "--scale", "10", "--restart-down-seconds", "10"]
    with (tmp_path / "gateway.log").open("w") as log:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        ib = IB()
        try:
            port = int(re.search(r":(\d+)", proc.stdout.readline()).group(1))
            assert "kill -USR1" in proc.stdout.readline()
            errors: list[int] = []
            ib.errorEvent += lambda req_id, code, text, contract: errors.append(code)
            ib.connect("127.0.0.1", port, clientId=1, timeout=5)

            proc.send_signal(signal.SIGUSR1)
            assert "cable pulled (1 client(s) cut)" in proc.stdout.readline()
            assert _waits_for(lambda: not ib.isConnected(), ib)
            ib.connect("127.0.0.1", port, clientId=1, timeout=5)

            proc.send_signal(signal.SIGUSR2)
            assert "connectivity lost (1100)" in proc.stdout.readline()
            assert _waits_for(lambda: 1100 in errors, ib)
            proc.send_signal(signal.SIGUSR2)
            assert "restored (1102)" in proc.stdout.readline()
            assert _waits_for(lambda: 1102 in errors, ib)

            proc.send_signal(signal.SIGHUP)
            assert "gateway restart, port closed for 10 s" in proc.stdout.readline()
            assert _waits_for(lambda: not ib.isConnected(), ib)
            started = time.monotonic()
            assert "back after its restart" in proc.stdout.readline()
            assert time.monotonic() - started >= 0.5  # 10 emulator seconds at scale 10
            ib.connect("127.0.0.1", port, clientId=1, timeout=5)
            assert ib.reqCurrentTime() is not None
        finally:
            ib.disconnect()
            proc.terminate()
            proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "Traceback" not in (tmp_path / "gateway.log").read_text()


def _waits_for(condition, ib, seconds: float = 5.0) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        try:
            ib.sleep(0.05) if ib.isConnected() else time.sleep(0.05)
        except ConnectionError:  # the socket went while the client waited on it
            pass
    return condition()
