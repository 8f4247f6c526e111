"""A running Dagster UI seen from a test: its GraphQL endpoint, and its pages in headless Chromium.

Chromium runs once per page (``--dump-dom`` for the rendered DOM, ``--screenshot`` for an image)
with a virtual-time budget, so the page's scripts and GraphQL queries finish before it is read.
Output goes to files, not pipes: the browser's helper processes inherit the descriptors.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import struct
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

# the flags Debian's chromium needs headless, as root and offline
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 1.0) -> bool:
    """Poll ``predicate`` until it is truthy or ``timeout`` seconds have passed; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def server_answers(base_url: str) -> bool:
    """True once the webserver serves ``/server_info``."""
    try:
        with urllib.request.urlopen(f"{base_url}/server_info", timeout=5) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def graphql(base_url: str, query: str, variables: dict | None = None) -> dict:
    """The ``data`` of a GraphQL answer; GraphQL errors fail the test with their messages."""
    request = urllib.request.Request(
        f"{base_url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.load(response)
    assert not answer.get("errors"), [error.get("message") for error in answer["errors"]]
    return answer["data"]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG image (its IHDR chunk)."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", f"{path} is not a PNG image"
    return struct.unpack(">II", head[16:24])


def visible_text(document: str) -> str:
    """The text of an HTML document on one line: scripts, styles and tags removed."""
    without_code = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", " ", document, flags=re.S | re.I)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", without_code)).split())


@dataclass(frozen=True)
class HeadlessChromium:
    """Debian's ``chromium``, one process per page, with a profile of its own."""

    executable: str
    profile: Path
    width: int = 1400
    height: int = 900
    # virtual time a page gets to run its scripts before it is read
    budget_ms: int = 20_000
    timeout_seconds: float = 120.0

    def _run(self, url: str, action: str, output: Path) -> None:
        argv = [
            self.executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
            f"--window-size={self.width},{self.height}", f"--virtual-time-budget={self.budget_ms}", action, url,
        ]
        log = output.with_name(output.name + ".log")
        with output.open("wb") as out, log.open("wb") as err:
            # a session of its own, so that a timeout takes the browser's helper processes along
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
            try:
                code = process.wait(timeout=self.timeout_seconds)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
                raise AssertionError(f"chromium did not finish {url} within {self.timeout_seconds:.0f} s") from None
        assert code == 0, f"chromium exited with {code} on {url}: {log.read_text(errors='replace')[-2000:]}"

    def text(self, url: str, folder: Path, name: str, expected: Iterable[str] = (), attempts: int = 3) -> str:
        """The visible text of the rendered page at ``url``. While any of ``expected`` is missing
        the page is loaded again (at most ``attempts`` times): a busy machine may need longer
        than one budget for the UI's queries."""
        wanted = list(expected)
        text = ""
        for attempt in range(1, attempts + 1):
            dom = folder / f"{name}.html"
            self._run(url, "--dump-dom", dom)
            text = visible_text(dom.read_text(errors="replace"))
            if all(item in text for item in wanted):
                break
            time.sleep(2.0 * attempt)
        return text

    def screenshot(self, url: str, path: Path) -> Path:
        """A PNG of the page at ``url``, ``width`` x ``height`` pixels."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._run(url, f"--screenshot={path}", path.with_suffix(".stdout"))
        assert path.is_file(), f"no screenshot from chromium for {url}"
        assert png_size(path) == (self.width, self.height), f"{path}: {png_size(path)}, expected {self.width}x{self.height}"
        return path
