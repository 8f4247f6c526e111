"""The soak's gateway emulator in a process of its own, steered over a pipe.

In the session's process the emulator would share one interpreter lock with the session and
count in its memory; in its own process it runs on the other core and the session's RSS is the
session's alone. ``python -m tt_platform_tests.faults.soak_gateway BARS SCALE`` prints
``{"port": N}`` and then answers one JSON command per stdin line with one JSON line, once the
command is done: ``drop``, ``restart`` (``down`` seconds), ``blip`` (``seconds``), ``slow``
(``delay`` seconds, 0 for normal answers; answers how many historical requests were answered
while slow), ``state`` (the broker's orders, executions and holdings) and ``stop``. Times are
seconds of the emulator's clock.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BrokerSnapshot:
    """What the emulated broker holds: order refs (one per order), refs still working,
    execution ids and positions."""

    order_refs: list[str]
    working: list[str]
    exec_ids: list[str]
    holdings: dict[str, float]


def _serve(bars: int, scale: float) -> None:
    from tt_platform.ib.emulator.server import serve_in_thread
    from tt_platform_tests.faults.soak_faults import connectivity_blip, drop_clients, restart_gateway
    from tt_platform_tests.faults.soak_market import soak_emulator

    emulator = soak_emulator(bars, scale)
    gateway = serve_in_thread(emulator)
    normal, slow_since = emulator.faults, None
    print(json.dumps({"port": gateway.port}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op == "drop":
            answer: Any = gateway.call(drop_clients(emulator))
        elif op == "restart":
            answer = gateway.call(restart_gateway(emulator, float(command["down"])), timeout=None)
        elif op == "blip":
            answer = gateway.call(connectivity_blip(emulator, float(command["seconds"])), timeout=None)
        elif op == "slow":
            delay = float(command["delay"])
            answer = 0
            if slow_since is not None:
                answer = sum(1 for r in emulator.history_log[slow_since:] if r.outcome == "ok")
            emulator.faults = replace(normal, historical_delay_seconds=delay, contract_details_delay_seconds=delay) \
                if delay else normal
            slow_since = len(emulator.history_log) if delay else None
        elif op == "state":
            broker = emulator.broker
            tickets = list(broker.orders.values())
            answer = {"order_refs": [t.order_ref for t in tickets], "working": [t.order_ref for t in tickets if not t.is_done],
                      "exec_ids": [e.exec_id for e in broker.executions],
                      "holdings": {s: h.quantity for s, h in broker.holdings.items()}}
        elif op == "stop":
            print(json.dumps({"op": op, "answer": 0}), flush=True)
            break
        else:
            raise ValueError(f"unknown command {op!r}")
        print(json.dumps({"op": op, "answer": answer}), flush=True)
    gateway.stop()


class GatewayProcess:
    """The client side: starts the process, sends commands one at a time (``submit`` returns a
    future of the command's answer), stops it."""

    def __init__(self, bars: int, scale: float, log_path: Path) -> None:
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tt_platform_tests.faults.soak_gateway", str(bars), str(scale)],
            cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, text=True, bufsize=1)
        self._commands = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="soak-gateway")
        self._lock = threading.Lock()
        self.port = int(self._read()["port"])

    def _read(self) -> dict:
        line = self._process.stdout.readline()
        if not line:
            self._log.flush()
            raise RuntimeError(f"the soak gateway ended (exit {self._process.poll()}); see {self._log.name}")
        return json.loads(line)

    def _ask(self, command: dict) -> Any:
        with self._lock:
            self._process.stdin.write(json.dumps(command) + "\n")
            self._process.stdin.flush()
            return self._read()["answer"]

    def submit(self, op: str, **params: Any) -> concurrent.futures.Future:
        return self._commands.submit(self._ask, {"op": op, **params})

    def ask(self, op: str, timeout: float = 60.0, **params: Any) -> Any:
        return self.submit(op, **params).result(timeout)

    def broker(self) -> BrokerSnapshot:
        return BrokerSnapshot(**self.ask("state"))

    def stop(self) -> None:
        try:
            if self._process.poll() is None:
                self.ask("stop", timeout=30.0)
                self._process.wait(30)
        finally:
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait(10)
            self._commands.shutdown(wait=False, cancel_futures=True)
            self._log.close()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), float(sys.argv[2]))
