"""``tt ui``'s processes: the Dagster webserver and daemon, started together and stopped together.

Each child runs in a process group of its own, so the terminal's Ctrl-C reaches ``tt`` alone and
``tt`` decides how the children stop: SIGTERM to each whole group (the webserver or daemon, the
code server it started, and the run workers that code server started, which Dagster turns into
an interrupt), then SIGKILL to whatever is left after a grace period. SIGINT, SIGTERM and SIGHUP to
``tt`` all stop both children; the whole stop takes at most ``GRACE_SECONDS + KILL_WAIT_SECONDS``.
When one child exits on its own, the other is stopped and the exit names the one that died.
On Linux the children also get SIGTERM if ``tt`` itself is killed outright (parent-death signal).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

GRACE_SECONDS = 7.0  # from SIGTERM to SIGKILL: Dagster's own shutdown (code servers included) took 3-5 s here
KILL_WAIT_SECONDS = 2.0
POLL_SECONDS = 0.1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1  # prctl option, <linux/prctl.h>


@dataclass(frozen=True)
class ChildCommand:
    name: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    # one line naming what went wrong, None after a requested stop
    problem: str | None = None


def dagster_ui_commands(workspace: Path, *, host: str, port: int, bin_dir: Path | None = None) -> list[ChildCommand]:
    """``dagster-webserver`` and ``dagster-daemon run`` on ``workspace``, from this interpreter's
    environment."""
    folder = bin_dir or Path(sys.executable).parent
    return [
        ChildCommand(
            "dagster-webserver",
            (str(folder / "dagster-webserver"), "-h", host, "-p", str(port), "-w", str(workspace)),
        ),
        ChildCommand("dagster-daemon", (str(folder / "dagster-daemon"), "run", "-w", str(workspace))),
    ]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies, so a killed ``tt`` leaves no UI."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the children outlive a killed parent


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


def _group_alive(pgid: int) -> bool:
    """True while a process of group ``pgid`` is running. Zombies do not count: a code server
    orphaned by its webserver's exit is reaped by PID 1, which in some containers never reaps."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


@dataclass
class _Child:
    command: ChildCommand
    process: subprocess.Popen

    @property
    def pgid(self) -> int:
        return self.process.pid  # leader of its own group

    def running(self) -> bool:
        """True while any process of the group is left (poll() reaps the leader first)."""
        self.process.poll()
        return _group_alive(self.pgid)


class Supervisor:
    """Starts ``commands`` as children and waits until a stop signal arrives or one of them exits;
    then stops all of them."""

    def __init__(
        self,
        commands: Sequence[ChildCommand],
        *,
        env: dict[str, str],
        notice: Callable[[str], None] = lambda line: print(line, flush=True),
        grace_seconds: float = GRACE_SECONDS,
        kill_wait_seconds: float = KILL_WAIT_SECONDS,
    ) -> None:
        self._commands = list(commands)
        self._env = env
        self._notice = notice
        self._grace = grace_seconds
        self._kill_wait = kill_wait_seconds
        self._requested: list[int] = []

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._requested.append(signum)

    def run(self) -> Outcome:
        previous = {signum: signal.signal(signum, self._on_signal) for signum in STOP_SIGNALS}
        children: list[_Child] = []
        outcome = Outcome(0)
        try:
            outcome = self._start(children) or self._wait(children)
        finally:
            self._stop(children, outcome)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return outcome

    def _start(self, children: list[_Child]) -> Outcome | None:
        for command in self._commands:
            if self._requested:
                return None
            try:
                process = subprocess.Popen(
                    command.argv,
                    env=self._env,
                    stdin=subprocess.DEVNULL,
                    process_group=0,
                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                )
            except OSError as exc:
                return Outcome(1, f"cannot start {command.name} ({command.argv[0]}): {exc.strerror or exc}")
            children.append(_Child(command, process))
            self._notice(f"{command.name} started (pid {process.pid})")
        return None

    def _wait(self, children: list[_Child]) -> Outcome:
        while not self._requested:
            for child in children:
                code = child.process.poll()
                if code is not None:
                    others = [c.command.name for c in children if c is not child]
                    stopped = f"; stopped {', '.join(others)}" if others else ""
                    return Outcome(1, f"{child.command.name} exited with code {code}{stopped}")
            time.sleep(POLL_SECONDS)
        return Outcome(0)

    def _stop(self, children: list[_Child], outcome: Outcome) -> None:
        alive = [child for child in children if child.running()]
        if not alive:
            return
        if outcome.problem is None:
            name = signal.Signals(self._requested[0]).name if self._requested else "stop"
            self._notice(f"{name}: stopping {', '.join(child.command.name for child in alive)}")
        for child in alive:
            _signal_group(child.pgid, signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        # every child is polled on each pass (a leader that exits is reaped at once)
        while time.monotonic() < deadline and [child for child in alive if child.running()]:
            time.sleep(POLL_SECONDS)
        stubborn = [child for child in alive if child.running()]
        for child in stubborn:
            self._notice(f"{child.command.name} did not stop within {self._grace:.0f} s: killed")
            _signal_group(child.pgid, signal.SIGKILL)
        for child in stubborn:
            try:
                child.process.wait(timeout=self._kill_wait)
            except subprocess.TimeoutExpired:
                pass  # unkillable (stopped in a debugger?): nothing more a parent can do
