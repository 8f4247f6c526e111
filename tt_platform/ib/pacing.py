"""IB's historical-data pacing rules, as a pure ledger plus a client-side pacer.

IB's hard rules ("Pacing Violations for Small Bars (30 secs or less)") refuse with error 162 a
historical request for bars of 30 seconds or less that would make
* more than 60 requests in any 10 minutes (BID_ASK counts twice),
* an identical request (same contract, end, duration, bar size, what-to-show) within 15 s,
* more than 6 requests for the same contract/exchange/tick type within 2 s.
For 1 min bars and larger these rules are lifted. For every bar size at most 50 historical
requests may be open at once (error 322 beyond), and a 162 still calls for backing off.

ib_insync only throttles to 45 messages/s, so pacing is ours. ``PacingLedger`` holds the sliding
windows of small-bar requests and answers "would this break a rule now?" (the emulator enforces
with it) and "how long until it would not?" (the pacer waits with it). ``HistoricalPacer`` adds
the cap on open requests (requests run concurrently under it) and one shared back-off for all
requests after a violation. Times are seconds of an injectable clock, so the rules can be
checked instantly in tests and compressed in end-to-end runs.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from tt_platform.ib.clock import Clock, SystemClock
from tt_platform.ib.limits import MAX_OPEN_HISTORICAL_REQUESTS, SMALL_BAR_SECONDS, bar_size_seconds

log = logging.getLogger(__name__)
_SLACK = 1e-6
# seconds the client keeps on top of each rule by default: covers send latency and clock skew
DEFAULT_CLIENT_MARGIN = 1.0


@dataclass(frozen=True)
class PacingRules:
    max_requests: int = 60
    window_seconds: float = 600.0
    identical_seconds: float = 15.0
    same_contract_max: int = 6
    same_contract_seconds: float = 2.0
    # Extra spacing the client keeps on top of each rule: the gateway measures on its own clock,
    # after network latency, so pacing exactly at the limit would sometimes be refused.
    margin_seconds: float = 0.0
    # The rules above bind only for bar sizes up to this many seconds (IB: 30 s). ``math.inf``
    # applies them to every bar size (how they were once read; kept for comparisons).
    small_bar_seconds: float = SMALL_BAR_SECONDS

    def __post_init__(self) -> None:
        for name in ("max_requests", "window_seconds", "same_contract_max", "same_contract_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"PacingRules.{name} must be > 0, got {getattr(self, name)!r}")
        if self.identical_seconds < 0 or self.margin_seconds < 0 or self.small_bar_seconds < 0:
            raise ValueError("PacingRules: identical_seconds, margin_seconds and small_bar_seconds must be >= 0")

    @classmethod
    def unlimited(cls) -> PacingRules:
        """Rules that never delay (to provoke the gateway's own pacing in tests)."""
        return cls(max_requests=10**9, identical_seconds=0.0, same_contract_max=10**9)

    @classmethod
    def every_bar_size(cls, **kwargs) -> PacingRules:
        """The small-bar rules applied to every bar size (stricter than IB; for comparisons)."""
        return cls(small_bar_seconds=math.inf, **kwargs)

    def binds(self, bar_size: str) -> bool:
        """Whether these rules apply to requests for ``bar_size`` (unknown sizes: yes)."""
        seconds = bar_size_seconds(bar_size)
        return seconds is None or seconds <= self.small_bar_seconds


@dataclass(frozen=True)
class RequestKey:
    """What IB compares to pace historical requests."""

    contract: str
    exchange: str
    what_to_show: str
    bar_size: str
    duration: str
    end: str

    @property
    def contract_key(self) -> tuple[str, str, str]:
        return (self.contract, self.exchange, self.what_to_show)

    @property
    def weight(self) -> int:
        return 2 if self.what_to_show == "BID_ASK" else 1


class PacingLedger:
    """Sliding windows of sent small-bar requests; pure (the caller passes the time).

    Requests for bar sizes the rules do not bind are neither checked nor recorded.
    """

    def __init__(self, rules: PacingRules | None = None) -> None:
        self.rules = rules or PacingRules()
        self._sent: deque[tuple[float, int]] = deque()  # (time, weight), oldest first
        self._last_identical: dict[RequestKey, float] = {}
        self._per_contract: dict[tuple[str, str, str], deque[float]] = {}

    def _prune(self, now: float) -> None:
        horizon = max(self.rules.window_seconds, self.rules.identical_seconds, self.rules.same_contract_seconds)
        horizon += self.rules.margin_seconds
        while self._sent and self._sent[0][0] <= now - horizon:
            self._sent.popleft()
        for key in [k for k, t in self._last_identical.items() if t <= now - horizon]:
            del self._last_identical[key]
        for key, times in list(self._per_contract.items()):
            while times and times[0] <= now - horizon:
                times.popleft()
            if not times:
                del self._per_contract[key]

    def requests_in_window(self, now: float) -> int:
        self._prune(now)
        return sum(w for t, w in self._sent if t > now - self.rules.window_seconds)

    def violation(self, key: RequestKey, now: float) -> str | None:
        """The rule sending ``key`` at ``now`` would break (no margin), or None."""
        rules = self.rules
        if not rules.binds(key.bar_size):
            return None
        self._prune(now)
        last = self._last_identical.get(key)
        if last is not None and now - last < rules.identical_seconds:
            return f"identical request within {rules.identical_seconds:g} s"
        recent = [t for t in self._per_contract.get(key.contract_key, ()) if t > now - rules.same_contract_seconds]
        if len(recent) >= rules.same_contract_max:
            return (
                f"more than {rules.same_contract_max} requests for {key.contract}/{key.exchange}/"
                f"{key.what_to_show} within {rules.same_contract_seconds:g} s"
            )
        in_window = sum(w for t, w in self._sent if t > now - rules.window_seconds)
        if in_window + key.weight > rules.max_requests:
            return f"more than {rules.max_requests} requests within {rules.window_seconds:g} s"
        return None

    def wait_time(self, key: RequestKey, now: float) -> float:
        """Seconds from ``now`` until ``key`` may be sent without breaking a rule (margin included)."""
        rules, margin = self.rules, self.rules.margin_seconds
        if not rules.binds(key.bar_size):
            return 0.0
        self._prune(now)
        ready = now
        last = self._last_identical.get(key)
        if last is not None and rules.identical_seconds > 0:
            ready = max(ready, last + rules.identical_seconds + margin)
        times = sorted(self._per_contract.get(key.contract_key, ()))
        if len(times) >= rules.same_contract_max:
            # once the max-th most recent leaves the window, a slot is free
            ready = max(ready, times[-rules.same_contract_max] + rules.same_contract_seconds + margin)
        active = [(t, w) for t, w in self._sent if t > now - rules.window_seconds - margin]
        total = sum(w for _, w in active)
        if total + key.weight > rules.max_requests:
            excess = total + key.weight - rules.max_requests
            for t, w in active:
                excess -= w
                if excess <= 0:
                    ready = max(ready, t + rules.window_seconds + margin)
                    break
        return max(0.0, ready - now)

    def record(self, key: RequestKey, now: float) -> None:
        if not self.rules.binds(key.bar_size):
            return
        self._prune(now)
        self._sent.append((now, key.weight))
        self._last_identical[key] = now
        self._per_contract.setdefault(key.contract_key, deque()).append(now)

    def move_last(self, key: RequestKey, now: float) -> None:
        """The request last recorded for ``key`` really left at ``now`` (it was held in a queue)."""
        sent_at = self._last_identical.get(key)
        if sent_at is None or sent_at >= now:
            return
        for i in range(len(self._sent) - 1, -1, -1):
            if self._sent[i] == (sent_at, key.weight):
                del self._sent[i]
                break
        times = self._per_contract.get(key.contract_key)
        if times is not None and sent_at in times:
            times.remove(sent_at)
        self.record(key, now)


class PacingEscalation(RuntimeError):
    """Pacing violations keep coming although the pacer backed off: stop instead of hammering IB."""


@dataclass(frozen=True)
class BackoffPolicy:
    initial_seconds: float = 15.0
    factor: float = 2.0
    max_seconds: float = 600.0

    def delay(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based)."""
        return min(self.max_seconds, self.initial_seconds * self.factor ** max(0, attempt - 1))


@dataclass
class PacerStats:
    requests: int = 0
    waited_seconds: float = 0.0
    violations: int = 0
    backoff_seconds: float = 0.0
    max_open: int = 0  # the most requests that were open at once
    violation_log: list[str] = field(default_factory=list)


def check_max_open(value: int) -> int:
    if not 1 <= int(value) <= MAX_OPEN_HISTORICAL_REQUESTS:
        raise ValueError(
            f"max_open_requests must be between 1 and {MAX_OPEN_HISTORICAL_REQUESTS} (IB's limit), got {value!r}"
        )
    return int(value)


class HistoricalPacer:
    """Paces historical requests by IB's rules and backs off on errors 162 and 322.

    Requests run concurrently: ``slot()`` holds one of ``max_open_requests`` (at most IB's 50)
    places for the time a request is open. ``acquire`` then sleeps (on the injected clock) while a
    back-off is running or a small-bar rule would break, and records the request. Without explicit
    ``rules`` it keeps ``DEFAULT_CLIENT_MARGIN`` seconds on top of IB's limits.

    ``on_violation`` is called when IB still refused a request: the first refusal of a burst
    starts a back-off that every request waits out (``acquire``), growing with each further
    round; refusals of requests that were sent before that back-off began belong to the same
    burst and neither extend nor escalate it. ``PacingEscalation`` is raised once more than
    ``max_consecutive_violations`` rounds in a row were refused; ``on_success`` resets the count.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        rules: PacingRules | None = None,
        backoff: BackoffPolicy | None = None,
        max_consecutive_violations: int = 5,
        max_open_requests: int = MAX_OPEN_HISTORICAL_REQUESTS,
    ) -> None:
        self.clock = clock or SystemClock()
        self.ledger = PacingLedger(rules or PacingRules(margin_seconds=DEFAULT_CLIENT_MARGIN))
        self.backoff = backoff or BackoffPolicy()
        if max_consecutive_violations < 0:
            raise ValueError("max_consecutive_violations must be >= 0")
        self.max_consecutive_violations = max_consecutive_violations
        self.max_open_requests = check_max_open(max_open_requests)
        self.consecutive_violations = 0
        self.open_requests = 0
        self.paused_until = -math.inf
        self._backoff_started = -math.inf
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self.stats = PacerStats()

    @property
    def rules(self) -> PacingRules:
        return self.ledger.rules

    def wait_time(self, key: RequestKey) -> float:
        now = self.clock.now()
        return max(0.0, self.paused_until - now, self.ledger.wait_time(key, now))

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots, self._slots_loop = asyncio.Semaphore(self.max_open_requests), loop
        return self._slots

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the ``max_open_requests`` places while a request is open."""
        async with self._semaphore():
            self.open_requests += 1
            self.stats.max_open = max(self.stats.max_open, self.open_requests)
            try:
                yield
            finally:
                self.open_requests -= 1

    async def acquire(self, key: RequestKey) -> float:
        """Wait until ``key`` may be sent, record it, and return the seconds waited."""
        waited = 0.0
        while (delay := self.wait_time(key)) > 0:
            delay += _SLACK  # land just after the boundary, not on it (float rounding)
            await self.clock.sleep(delay)
            waited += delay
        self.ledger.record(key, self.clock.now())
        self.stats.requests += 1
        self.stats.waited_seconds += waited
        return waited

    def sent_late(self, key: RequestKey) -> None:
        """The request paced for ``key`` left only now (held by ib_insync's 45 msg/s throttle)."""
        self.ledger.move_last(key, self.clock.now())

    def on_violation(self, key: RequestKey, message: str = "", sent_at: float | None = None) -> float:
        """IB refused ``key`` (sent at ``sent_at``): the seconds to wait before asking again."""
        now = self.clock.now()
        self.stats.violations += 1
        self.stats.violation_log.append(f"{key.contract} {key.bar_size} {key.duration} ending {key.end!r}: {message}")
        if sent_at is not None and sent_at < self._backoff_started:
            return max(0.0, self.paused_until - now)  # same burst: the running back-off covers it
        self.consecutive_violations += 1
        if self.consecutive_violations > self.max_consecutive_violations:
            raise PacingEscalation(
                f"{self.consecutive_violations} consecutive pacing violations (limit "
                f"{self.max_consecutive_violations}); last for {key.contract} {key.bar_size} "
                f"{key.duration} ending {key.end or 'now'!r}: {message or 'error 162'}"
            )
        delay = self.backoff.delay(self.consecutive_violations)
        self._backoff_started = now
        self.paused_until = max(self.paused_until, now + delay)
        self.stats.backoff_seconds += delay
        log.warning("pacing violation %d for %s; backing off %.1f s", self.consecutive_violations, key.contract, delay)
        return delay

    def on_success(self, sent_at: float | None = None) -> None:
        """A request was answered; one sent before the running back-off began does not count."""
        if sent_at is None or sent_at >= self._backoff_started:
            self.consecutive_violations = 0
