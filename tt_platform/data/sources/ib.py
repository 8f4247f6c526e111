"""Interactive Brokers as a bar source: historical bars through ib_insync, paced by IB's rules.

``IBBarSource`` is built from an ``IBSourceConfig`` (never from the environment; use
``IBSourceConfig.from_settings`` to take IB_HOST/IB_PORT/IB_CLIENT_ID from the platform settings).
A ``fetch`` qualifies every symbol, plans each request's windows (years per request for daily
bars, IB's limits for intraday ones, padded at both edges and trimmed back), and runs them all
concurrently with at most ``max_open_requests`` open at IB (50 at most, IB's cap for every bar
size); IB's small-bar pacing rules apply only to bars of 30 seconds or less, and an error 162 or
322 makes every request back off. A socket drop or gateway restart costs one reconnect, after
which the interrupted requests are asked again and delivered ones never are.

``on_bars`` receives each completed window as it arrives (on the calling thread): the UTC days
``[start, end]`` it stands for and every bar IB has in them, trimmed to exactly those days.
Intraday requests shorter than a day are joined per day first, so a slice always covers whole
days. Symbols IB does not know are answered once with ``refused``; requests that failed for a
passing reason (IB unreachable, timeouts, pacing escalation, a refused request) are listed in
``FetchReport.failed`` with a one-line reason.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from tt_platform.data.bars import empty_bars, normalize_bars
from tt_platform.data.sources.base import BarRequest, BarSource, FetchReport, OnBars, SymbolBars

log = logging.getLogger(__name__)

_DAY = pd.Timedelta(days=1)


class IBSourceConfig(BaseModel):
    """Everything an ``IBBarSource`` needs; explicit, immutable, and safe to print."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=4002, ge=1, le=65535)
    client_id: int = 17
    # a folder for client-id leases: when set, a run whose id another run on this machine holds
    # takes the next free one (see tt_platform.ib.client_ids); None uses client_id as given
    client_id_locks: str | None = None
    # not needed for market data; kept masked (never logged, never printed)
    account: SecretStr | None = None
    # historical requests open at IB at once (IB refuses beyond 50 with error 322)
    max_open_requests: int = Field(default=50, ge=1, le=50)
    request_timeout: float = Field(default=60.0, gt=0)  # seconds per request, real time
    connect_timeout: float = Field(default=4.0, gt=0)
    connect_attempts: int = Field(default=8, ge=1)  # per (re)connect, with exponential back-off
    connect_backoff_seconds: float = Field(default=0.5, ge=0)
    connect_backoff_max_seconds: float = Field(default=30.0, ge=0)
    max_reconnects: int = Field(default=10, ge=0)  # per fetch
    # pacing: seconds kept on top of IB's small-bar rules; back-off after errors 162/322
    pacing_margin_seconds: float = Field(default=1.0, ge=0)
    backoff_initial_seconds: float = Field(default=15.0, ge=0)
    backoff_max_seconds: float = Field(default=600.0, ge=0)
    max_consecutive_violations: int = Field(default=5, ge=0)
    # daily bars per request ("N Y" windows); intraday requests follow IB's per-bar-size limits
    years_per_request: int = Field(default=20, ge=1, le=49)
    # pad every window by a bar on both sides (and trim the answer): no reading of IB's window
    # edges can drop a session
    pad_windows: bool = True
    # ask IB for the listing date (listed_from): always, never, or for requests over a month
    head_timestamps: Literal["auto", "always", "never"] = "auto"
    use_rth: bool = False
    # speed of the pacing and back-off clock: 1 is real time; > 1 only against an emulator whose
    # clock runs that much faster
    time_scale: float = Field(default=1.0, gt=0)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> IBSourceConfig:
        """Host, port, client id and account from ``PlatformSettings`` (already read by the caller)."""
        values = {
            "host": settings.ib_host,
            "port": settings.ib_port,
            "client_id": settings.ib_client_id,
            "account": getattr(settings, "ib_account", None),
        }
        return cls(**{**values, **overrides})


def _day_range(start: date, end: date) -> tuple[pd.Timestamp, pd.Timestamp]:
    return pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC") + _DAY


def _one_line(text: object) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= 300 else line[:297] + "..."


class IBBarSource(BarSource):
    """Bars from TWS / IB Gateway (see the module docstring). Connects on the first ``fetch``
    and stays connected until ``close``."""

    name = "ib"
    serves_adjusted = True

    def __init__(self, config: IBSourceConfig | None = None) -> None:
        self.config = config or IBSourceConfig()
        self._client = None
        self._lease = None
        from tt_platform.ib.client import ACCOUNT_REDACTOR

        if self.config.account is not None:
            ACCOUNT_REDACTOR.add(self.config.account.get_secret_value())

    def __repr__(self) -> str:
        c = self.config
        return f"{type(self).__name__}({c.host}:{c.port}, client_id={c.client_id})"

    @property
    def client(self):
        """The ``IBMarketData`` client (made on first use)."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self):
        from tt_platform.ib.client import ConnectRetry, IBMarketData
        from tt_platform.ib.clock import ScaledClock, SystemClock
        from tt_platform.ib.pacing import BackoffPolicy, HistoricalPacer, PacingRules

        c = self.config
        client_id = c.client_id
        if c.client_id_locks:
            from tt_platform.ib.client_ids import ClientIdLease

            self._lease = ClientIdLease(c.client_id_locks, c.host, c.port, c.client_id)
            client_id = self._lease.acquire()
        clock = SystemClock() if c.time_scale == 1.0 else ScaledClock(c.time_scale)
        pacer = HistoricalPacer(
            clock,
            PacingRules(margin_seconds=c.pacing_margin_seconds),
            BackoffPolicy(c.backoff_initial_seconds, 2.0, max(c.backoff_initial_seconds, c.backoff_max_seconds)),
            max_consecutive_violations=c.max_consecutive_violations,
            max_open_requests=c.max_open_requests,
        )
        retry = ConnectRetry(
            c.connect_attempts, c.connect_backoff_seconds, max(c.connect_backoff_seconds, c.connect_backoff_max_seconds)
        )
        return IBMarketData(
            c.host,
            c.port,
            client_id,
            pacer=pacer,
            request_timeout=c.request_timeout,
            connect_timeout=c.connect_timeout,
            retry=retry,
            use_rth=c.use_rth,
            pad_windows=c.pad_windows,
            years_per_request=c.years_per_request,
            head_timestamps=c.head_timestamps,
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
        if self._lease is not None:
            self._lease.release()

    # fetching -----------------------------------------------------------------------------------

    def fetch(
        self,
        requests: Sequence[BarRequest],
        *,
        interval: str,
        adjusted: bool,
        on_bars: OnBars,
    ) -> FetchReport:
        from tt_platform.ib.backfill import BackfillJob, BackfillReport, backfill_async
        from tt_platform.ib.errors import IBConnectionLost
        from tt_platform.ib.limits import interval_spec
        from tt_platform.ib.pacing import PacingEscalation

        interval_spec(interval)  # an unsupported interval is the caller's error: raise now
        if adjusted and interval != "1d":
            raise ValueError(
                f"adjusted {interval} bars are not available from IB (ADJUSTED_LAST serves daily bars only); "
                f"fetch raw bars and apply corporate actions"
            )
        report = FetchReport()
        if not requests:
            return report
        client = self.client
        client.pacer.stats.max_open = 0
        # counted on the pacer: every historical request sent and every 162/322, retries included
        sent_before, refused_before = client.pacer.stats.requests, client.pacer.stats.violations
        jobs = [  # [first day 00:00, day after the last 00:00) in UTC; the tag is the request's index
            BackfillJob(r.symbol.strip().upper(), *_day_range(r.start, r.end), i) for i, r in enumerate(requests)
        ]
        delivery = _Deliveries(on_bars, interval, client.known_head)
        progress = BackfillReport()
        try:
            client.run(
                backfill_async(
                    client,
                    jobs,
                    interval,
                    delivery.on_chunk(progress),
                    adjusted=adjusted,
                    max_reconnects=self.config.max_reconnects,
                    report=progress,
                )
            )
            aborted = None
        except (IBConnectionLost, PacingEscalation) as exc:
            aborted = _one_line(exc)
            log.warning("IB fetch stopped early: %s", aborted)

        answered_refusal: set[str] = set()
        for job in jobs:
            reason = progress.unresolved.get(job.symbol)
            if reason is None:
                continue
            if job.symbol in progress.unresolved_timeouts:  # no answer in time: ask again next run
                report.failed.setdefault(job.symbol, _one_line(reason))
            elif job.symbol not in answered_refusal:
                answered_refusal.add(job.symbol)
                request = requests[job.tag]
                on_bars(SymbolBars(job.symbol, request.start, request.end, empty_bars(), refused=_one_line(reason)))
        for job, chunks in progress.planned.items():
            delivery.before_listing(job, chunks, requests[job.tag])
        refused_chunks: dict[str, list] = defaultdict(list)
        for symbol, chunk, errors in progress.refused:
            refused_chunks[symbol].append((chunk, errors))
        for symbol, items in refused_chunks.items():
            chunk, errors = items[0]
            first = str(errors[0]) if errors else "refused"
            more = f" (and {len(items) - 1} more requests)" if len(items) > 1 else ""
            report.failed.setdefault(symbol, _one_line(f"{first} for {chunk}{more}"))
        for job in jobs:
            if job.symbol in progress.unresolved or job.symbol in report.failed:
                continue
            if not delivery.complete(job, progress):
                report.failed[job.symbol] = aborted or "not all of the request was answered"
        report.requests = client.pacer.stats.requests - sent_before
        report.pacing_violations = client.pacer.stats.violations - refused_before
        report.reconnects = progress.reconnects
        report.max_open_requests = client.pacer.stats.max_open
        return report


class _Deliveries:
    """Joins completed chunks into whole-day slices and hands them to ``on_bars``."""

    def __init__(self, on_bars: OnBars, interval: str, known_head) -> None:
        self.on_bars, self.interval, self.known_head = on_bars, interval, known_head
        self._groups: dict[Any, dict[pd.Timestamp, int]] = {}  # job -> chunk start -> group number
        self._sizes: dict[Any, dict[int, int]] = {}
        self._pending: dict[tuple[Any, int], list] = defaultdict(list)
        self._delivered: dict[Any, int] = defaultdict(int)

    def _plan(self, job, chunks) -> None:
        groups: dict[pd.Timestamp, int] = {}
        sizes: dict[int, int] = defaultdict(int)
        number = 0
        for chunk in chunks:
            groups[chunk.start] = number
            sizes[number] += 1
            if chunk.end == chunk.end.normalize():  # a day ends here: the slice is whole days
                number += 1
        self._groups[job], self._sizes[job] = groups, dict(sizes)

    def on_chunk(self, progress):
        def deliver(done) -> None:
            job = done.job
            if job not in self._groups:
                self._plan(job, progress.planned[job])
            number = self._groups[job][done.chunk.start]
            parts = self._pending[(job, number)]
            parts.append(done)
            if len(parts) < self._sizes[job][number]:
                return
            del self._pending[(job, number)]
            parts.sort(key=lambda c: c.chunk.start)
            frames = [c.bars for c in parts if not c.bars.empty]
            bars = (
                normalize_bars(pd.concat(frames, ignore_index=True), origin=f"IB {job.symbol} {self.interval}")
                if frames
                else empty_bars()
            )
            first, last = parts[0].chunk.start, parts[-1].chunk.end - pd.Timedelta(microseconds=1)
            head = self.known_head(job.symbol)
            self.on_bars(
                SymbolBars(
                    job.symbol,
                    first.date(),
                    last.date(),
                    bars,
                    listed_from=head.date() if head is not None else None,
                )
            )
            self._delivered[job] += 1

        return deliver

    def before_listing(self, job, chunks, request: BarRequest) -> None:
        """Answer the days of ``request`` before the listing date (planned away): no bars there."""
        first_planned = chunks[0].start.normalize() if chunks else job.end
        if first_planned <= job.start:
            return
        head = self.known_head(job.symbol)
        last = min(request.end, (first_planned - _DAY).date())
        listed = head.date() if head is not None else None
        self.on_bars(SymbolBars(job.symbol, request.start, last, empty_bars(), listed_from=listed))

    def complete(self, job, progress) -> bool:
        """Whether every slice of ``job`` was delivered (a job planned to nothing is complete)."""
        if job not in progress.planned:
            return False
        if job not in self._groups:
            self._plan(job, progress.planned[job])
        return self._delivered[job] == len(self._sizes[job])


def day_window(start: date, end: date) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The UTC instants ``[first, last]`` of the days ``[start, end]`` (for replacing a slice)."""
    first = pd.Timestamp(start, tz="UTC")
    return first, pd.Timestamp(end, tz="UTC") + _DAY - pd.Timedelta(microseconds=1)
