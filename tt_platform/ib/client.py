"""The platform's IB market-data client, on ib_insync.

This is the only module that imports ib_insync: switching to ib_async is a change of the one
import line below. Everything it returns is ours (``ResolvedContract``, ``Unresolved``,
``HistoricalResult`` with canonical bars), so no ib_insync type leaks into the platform.

Every method has an ``*_async`` form for callers inside an event loop; the plain forms run the
coroutine on ib_insync's loop. Historical and head-timestamp requests may run concurrently (the
backfill driver gathers them): the pacer caps how many are open at once and backs off for all
of them after a pacing violation.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd


def _ensure_thread_loop() -> None:
    """ib_insync's eventkit asks for the current event loop when it is first imported; a worker
    thread (a Dagster step, a server thread) has none, so give it one first."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


_ensure_thread_loop()
from ib_insync import IB, Contract, Stock, util  # noqa: E402  (needs the loop above)
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from tt_platform.data.bars import empty_bars, normalize_bars
from tt_platform.ib.chunking import (
    DAILY_YEARS_PER_REQUEST,
    Chunk,
    ChunkUnit,
    plan_adjusted_chunk,
    plan_chunks,
    to_utc,
)
from tt_platform.ib.errors import (
    CONNECTIVITY_CODES,
    RETRY_KINDS,
    IBConnectionLost,
    IBError,
    IBRequestTimeout,
    refusal,
)
from tt_platform.ib.limits import interval_spec
from tt_platform.ib.models import (
    TIMEOUT_CODE,
    HistoricalResult,
    ResolvedContract,
    Unresolved,
)
from tt_platform.ib.pacing import HistoricalPacer, RequestKey

log = logging.getLogger(__name__)

# contract-details requests in flight at once (they do not count against IB's historical cap,
# but ib_insync queues everything beyond 45 messages/s, and a queued request's timeout runs)
MAX_OPEN_CONTRACT_REQUESTS = 50
# with head_timestamps="auto", ranges at most this long are planned without asking IB for the
# listing date (a nightly update would spend two more messages per symbol for nothing)
HEAD_TIMESTAMP_MIN_SPAN = pd.Timedelta(days=31)


class AccountRedactor(logging.Filter):
    """Masks account ids in ib_insync's log records (its DEBUG log echoes every message).

    Accounts are learnt from the managedAccounts message (id 15) as it is logged, and from
    ``add``; every later record that names one shows ``***`` instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self.accounts: set[str] = set()

    def add(self, account: str | None) -> None:
        if account:
            self.accounts.add(account)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text.startswith("<<< 15,"):
            self.accounts.update(a for a in text.split(",")[2:] if a)
        hidden = [a for a in self.accounts if a in text]
        if hidden:
            for account in hidden:
                text = text.replace(account, "***")
            record.msg, record.args = text, ()
        return True


ACCOUNT_REDACTOR = AccountRedactor()
for _name in ("ib_insync.client", "ib_insync.wrapper", "ib_insync.ib"):
    logging.getLogger(_name).addFilter(ACCOUNT_REDACTOR)


class IBClientIdInUse(ConnectionError):
    """TWS / IB Gateway refused the connection: another client uses this client id (error 326)."""


@dataclass(frozen=True)
class ConnectRetry:
    """Exponential back-off for (re)connecting: IB Gateway restarts daily and drops everyone."""

    attempts: int = 8
    initial_seconds: float = 0.5
    max_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.initial_seconds < 0 or self.max_seconds < self.initial_seconds:
            raise ValueError(f"invalid ConnectRetry {self}: need attempts >= 1 and 0 <= initial <= max")


def _worth_retrying(exc: BaseException) -> bool:
    # refused / reset / timed out: the gateway may be restarting; a taken client id stays taken
    return isinstance(exc, (OSError, TimeoutError, asyncio.TimeoutError)) and not isinstance(exc, IBClientIdInUse)


def _event_loop() -> asyncio.AbstractEventLoop:
    """ib_insync's loop for this thread, recreated if something (asyncio.run) unset or closed it."""
    try:
        loop = util.getLoop()
    except RuntimeError:
        loop = None
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    return loop


def _bar_timestamp(value: Any) -> pd.Timestamp:
    """IB bar dates are dates (daily, stamped 00:00 UTC) or aware datetimes (formatDate=2)."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def bars_to_frame(symbol: str, bars: Iterable[Any], origin: str) -> pd.DataFrame:
    """ib_insync BarData objects as the canonical bar frame."""
    rows = [(symbol, _bar_timestamp(b.date), b.open, b.high, b.low, b.close, b.volume) for b in bars]
    if not rows:
        return empty_bars()
    frame = pd.DataFrame(rows, columns=["symbol", "ts", "open", "high", "low", "close", "volume"])
    return normalize_bars(frame, origin=origin)


class IBMarketData:
    """Contracts, listing dates and historical bars from TWS / IB Gateway.

    ``pacer`` paces historical requests by IB's rules, caps how many are open at once and backs
    off on pacing violations (error 162) and on error 322; ``request_timeout`` bounds every
    request (seconds, real time). ``pad_windows`` pads each request by a bar on both sides (see
    ``tt_platform.ib.chunking``); ``years_per_request`` sizes daily requests; ``head_timestamps``
    says when to ask IB for the listing date before planning: "always", "never", or "auto"
    (only for ranges longer than a month, where it can save requests).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 4002,
        client_id: int = 17,
        *,
        pacer: HistoricalPacer | None = None,
        request_timeout: float = 60.0,
        connect_timeout: float = 4.0,
        retry: ConnectRetry | None = None,
        readonly: bool = True,
        use_rth: bool = False,
        on_connectivity: Callable[[IBError], None] | None = None,
        pad_windows: bool = True,
        years_per_request: int = DAILY_YEARS_PER_REQUEST,
        head_timestamps: str = "auto",
    ) -> None:
        if head_timestamps not in ("auto", "always", "never"):
            raise ValueError(f"head_timestamps must be 'auto', 'always' or 'never', got {head_timestamps!r}")
        if years_per_request < 1:
            raise ValueError(f"years_per_request must be >= 1, got {years_per_request!r}")
        self.host, self.port, self.client_id = host, int(port), int(client_id)
        self.pacer = pacer or HistoricalPacer()
        self.request_timeout = float(request_timeout)
        self.connect_timeout = float(connect_timeout)
        self.retry = retry or ConnectRetry()
        self.readonly = readonly
        self.use_rth = use_rth
        self.on_connectivity = on_connectivity
        self.pad_windows = pad_windows
        self.years_per_request = int(years_per_request)
        self.head_timestamps = head_timestamps
        self.connect_attempts = 0
        self.connections = 0
        self.connectivity_events: list[IBError] = []
        self.notices: deque[IBError] = deque(maxlen=200)
        self._ib = IB()
        self._ib.errorEvent += self._on_error
        # ib_insync queues messages beyond 45/s; a queued request reaches IB later than paced
        self._throttle_over = asyncio.Event()
        self._throttle_over.set()
        self._ib.client.throttleStart += self._throttle_over.clear
        self._ib.client.throttleEnd += self._throttle_over.set
        # errors of a request, by reqId; ib_insync names the request's Contract object with each
        # error, which is how requests whose reqId stays inside ib_insync are matched
        self._req_errors: dict[int, list[IBError]] = {}
        self._req_of_contract: dict[int, int] = {}
        self._client_id_rejected: asyncio.Future | None = None
        self._resolved: dict[str, ResolvedContract | Unresolved] = {}
        self._heads: dict[str, pd.Timestamp | None] = {}
        self._contract_slots: asyncio.Semaphore | None = None
        self._contract_slots_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(cls, settings: Any = None, **kwargs: Any) -> IBMarketData:
        """A client for ``IB_HOST``/``IB_PORT``/``IB_CLIENT_ID`` (``tt_platform.settings``)."""
        if settings is None:
            from tt_platform.settings import get_settings

            settings = get_settings()
        return cls(settings.ib_host, settings.ib_port, settings.ib_client_id, **kwargs)

    def __repr__(self) -> str:
        state = "connected" if self.is_connected() else "not connected"
        return f"IBMarketData({self.host}:{self.port}, client_id={self.client_id}, {state})"

    # events ---------------------------------------------------------------------------------

    def _on_error(self, req_id: int, code: int, message: str, contract: Any) -> None:
        error = IBError(req_id, code, message)
        if code == 326 and self._client_id_rejected is not None and not self._client_id_rejected.done():
            self._client_id_rejected.set_result(error)
        if req_id == -1 or req_id is None:
            if code in CONNECTIVITY_CODES:
                self.connectivity_events.append(error)
                if self.on_connectivity is not None:
                    self.on_connectivity(error)
            else:
                self.notices.append(error)
            return
        self._req_errors.setdefault(req_id, []).append(error)
        if contract is not None:
            self._req_of_contract[id(contract)] = req_id

    def _pop_errors(self, contract: Any, req_id: int | None = None) -> list[IBError]:
        """Errors reported for a finished request (by its reqId, else by its Contract object)."""
        mapped = self._req_of_contract.pop(id(contract), None)
        key = req_id if req_id is not None else mapped
        return self._req_errors.pop(key, []) if key is not None else []

    # connection -----------------------------------------------------------------------------

    def is_connected(self) -> bool:
        return self._ib.isConnected()

    async def connect_async(self) -> None:
        """Connect, retrying with exponential back-off (tenacity); no-op when connected."""
        if self.is_connected():
            return
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=wait_exponential(multiplier=self.retry.initial_seconds, max=self.retry.max_seconds),
            retry=retry_if_exception(_worth_retrying),
            reraise=False,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._connect_once()
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise IBConnectionLost(
                f"cannot connect to IB at {self.host}:{self.port} as client {self.client_id} "
                f"after {self.retry.attempts} attempts: {last!r}"
            ) from last
        self.connections += 1
        self._throttle_over.set()  # a new connection queues nothing (a lost one ended without throttleEnd)

    async def _connect_once(self) -> None:
        self.connect_attempts += 1
        loop = asyncio.get_running_loop()
        self._client_id_rejected = loop.create_future()
        connecting = asyncio.ensure_future(
            self._ib.connectAsync(
                self.host, self.port, self.client_id, timeout=self.connect_timeout, readonly=self.readonly
            )
        )
        try:
            done, _ = await asyncio.wait({connecting, self._client_id_rejected}, return_when=asyncio.FIRST_COMPLETED)
            if self._client_id_rejected in done:
                connecting.cancel()
                await asyncio.gather(connecting, return_exceptions=True)  # lets ib_insync close the socket
                self._ib.client.disconnect()
                raise IBClientIdInUse(
                    f"IB at {self.host}:{self.port} refused client id {self.client_id}: "
                    f"{self._client_id_rejected.result().message}"
                )
            connecting.result()
        finally:
            if not connecting.done():
                connecting.cancel()
            self._client_id_rejected = None

    def connect(self) -> IBMarketData:
        self._run(self.connect_async())
        return self

    def disconnect(self) -> None:
        try:
            self._ib.disconnect()
        except ConnectionError:  # ib_insync's statistics fail on a half-open connection
            self._ib.client.disconnect()

    def __enter__(self) -> IBMarketData:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def run(self, coro: Any) -> Any:
        """Run ``coro`` to completion on ib_insync's loop (from synchronous code)."""
        loop = _event_loop()
        if loop.is_running():
            coro.close()
            raise RuntimeError("IBMarketData: inside a running event loop, await the *_async methods instead")
        return loop.run_until_complete(coro)

    _run = run

    def _require_connection(self) -> None:
        if not self.is_connected():
            raise IBConnectionLost(f"not connected to IB at {self.host}:{self.port} (call connect())")

    # contracts ------------------------------------------------------------------------------

    async def qualify_async(
        self, symbols: Iterable[str], refresh: bool = False
    ) -> dict[str, ResolvedContract | Unresolved]:
        """US stocks routed SMART in USD; error 200 (or an empty answer) marks a symbol unresolved.

        Contract details are asked for concurrently; a symbol without an answer in time comes
        back as ``Unresolved`` with code ``TIMEOUT_CODE`` (a passing failure, asked again later).
        """
        wanted = list(dict.fromkeys(s.strip().upper() for s in symbols))
        todo = [s for s in wanted if refresh or s not in self._resolved]
        if todo:
            self._require_connection()
            answers = await asyncio.gather(*(self._qualify_one(s) for s in todo), return_exceptions=True)
            failures = [a for a in answers if isinstance(a, BaseException)]
            timed_out: dict[str, Unresolved] = {}
            for symbol, answer in zip(todo, answers):
                if isinstance(answer, IBRequestTimeout):
                    timed_out[symbol] = Unresolved(symbol, str(answer), TIMEOUT_CODE)  # not kept: ask again
                elif not isinstance(answer, BaseException):
                    self._resolved[symbol] = answer
            others = [a for a in failures if not isinstance(a, IBRequestTimeout)]
            if others:  # a connection loss: what was resolved is kept, the rest is asked again
                raise others[0]
            return {s: timed_out.get(s) or self._resolved[s] for s in wanted}
        return {s: self._resolved[s] for s in wanted}

    def _contract_semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._contract_slots is None or self._contract_slots_loop is not loop:
            self._contract_slots = asyncio.Semaphore(MAX_OPEN_CONTRACT_REQUESTS)
            self._contract_slots_loop = loop
        return self._contract_slots

    async def _qualify_one(self, symbol: str) -> ResolvedContract | Unresolved:
        """One contract-details request; a timeout raises IBRequestTimeout."""
        async with self._contract_semaphore():
            self._require_connection()
            contract = Stock(symbol, "SMART", "USD")
            try:
                details = await asyncio.wait_for(self._ib.reqContractDetailsAsync(contract), self.request_timeout)
            except ConnectionError as exc:
                raise IBConnectionLost(f"connection lost while qualifying {symbol}: {exc}") from exc
            except TimeoutError:
                self._pop_errors(contract)
                raise IBRequestTimeout(f"no contract details for {symbol} within {self.request_timeout:g} s") from None
            return self._resolution(symbol, details, self._pop_errors(contract))

    @staticmethod
    def _resolution(symbol: str, details: list, errors: list[IBError]) -> ResolvedContract | Unresolved:
        if len(details) == 1:
            d = details[0]
            c = d.contract
            return ResolvedContract(
                symbol=symbol,
                con_id=c.conId,
                sec_type=c.secType,
                exchange="SMART",
                primary_exchange=c.primaryExchange,
                currency=c.currency,
                local_symbol=c.localSymbol,
                trading_class=c.tradingClass,
                min_tick=d.minTick,
                long_name=d.longName,
            )
        if len(details) > 1:
            venues = sorted({d.contract.primaryExchange for d in details})
            return Unresolved(symbol, f"ambiguous: {len(details)} contracts match (primary exchanges {venues})")
        if errors:
            first = errors[0]
            return Unresolved(symbol, f"error {first.code}: {first.message}", first.code)
        return Unresolved(symbol, "IB returned no contract details")

    def qualify(self, symbols: Iterable[str], refresh: bool = False) -> dict[str, ResolvedContract | Unresolved]:
        return self._run(self.qualify_async(symbols, refresh))

    async def _contract(self, symbol: str) -> ResolvedContract | Unresolved:
        symbol = symbol.upper()
        return (await self.qualify_async([symbol]))[symbol]

    @staticmethod
    def _ib_contract(resolved: ResolvedContract) -> Contract:
        return Contract(
            conId=resolved.con_id,
            symbol=resolved.symbol,
            secType=resolved.sec_type,
            exchange=resolved.exchange,
            primaryExchange=resolved.primary_exchange,
            currency=resolved.currency,
        )

    # listing date ---------------------------------------------------------------------------

    async def head_timestamp_async(self, symbol: str) -> pd.Timestamp | None:
        """The earliest bar IB has (listing date for stocks), UTC; None when unknown or no data.

        IB states it in the login time zone; the emulator logs in as UTC, real gateways usually
        as US/Eastern, which moves an intraday listing time by hours but never the date.
        """
        symbol = symbol.upper()
        if symbol in self._heads:
            return self._heads[symbol]
        resolved = await self._contract(symbol)
        if isinstance(resolved, Unresolved):
            return None
        self._require_connection()
        contract = self._ib_contract(resolved)
        try:
            # a head-timestamp request counts against IB's cap on open historical requests
            async with self.pacer.slot():
                self._require_connection()
                # formatDate=1: ib_insync cannot parse the negative epochs of pre-1970 listings
                head = await asyncio.wait_for(
                    self._ib.reqHeadTimeStampAsync(contract, "TRADES", False, 1), self.request_timeout
                )
        except ConnectionError as exc:
            raise IBConnectionLost(f"connection lost while asking the head timestamp of {symbol}: {exc}") from exc
        except TimeoutError:
            raise IBRequestTimeout(f"no head timestamp for {symbol} within {self.request_timeout:g} s") from None
        finally:
            self._pop_errors(contract)
        value = _bar_timestamp(head) if head and not isinstance(head, list) else None
        self._heads[symbol] = value
        return value

    def head_timestamp(self, symbol: str) -> pd.Timestamp | None:
        return self._run(self.head_timestamp_async(symbol))

    # historical bars ------------------------------------------------------------------------

    async def historical_chunk_async(
        self, symbol: str, chunk: Chunk, interval: str, adjusted: bool = False
    ) -> HistoricalResult:
        """One IB request (retried after pacing violations) for ``chunk``; bars cut to the chunk."""
        spec = interval_spec(interval)
        symbol = symbol.upper()
        resolved = await self._contract(symbol)
        if isinstance(resolved, Unresolved):
            return HistoricalResult(refused=True, errors=[IBError(-1, resolved.code or 200, resolved.reason)])
        what = "ADJUSTED_LAST" if adjusted else "TRADES"
        contract = self._ib_contract(resolved)
        key = RequestKey(
            str(resolved.con_id), resolved.exchange, what, spec.bar_size, chunk.duration, chunk.request_end
        )
        seen: list[IBError] = []
        requests = violations = 0
        while True:
            async with self.pacer.slot():
                await self.pacer.acquire(key)  # waits out a running back-off, and small-bar rules
                sent_at = self.pacer.clock.now()
                requests += 1
                bars, errors = await self._request_bars(contract, chunk, spec.bar_size, what, key)
            seen += errors
            again = [e for e in errors if e.kind in RETRY_KINDS]
            if again:  # 162 pacing or 322 too many open: back off (the next acquire waits), retry
                violations += 1
                self.pacer.on_violation(key, again[0].message, sent_at)
                continue
            self.pacer.on_success(sent_at)
            frame = bars_to_frame(symbol, bars, origin=f"IB {symbol} {interval} {chunk}")
            if not frame.empty:
                ts = frame["ts"]
                frame = frame.loc[(ts >= chunk.start) & (ts < chunk.end)].reset_index(drop=True)
            return HistoricalResult(frame, refusal(errors), seen, requests, violations)

    async def _request_bars(
        self, contract: Contract, chunk: Chunk, bar_size: str, what: str, key: RequestKey
    ) -> tuple[list, list[IBError]]:
        self._require_connection()
        loop = asyncio.get_running_loop()
        started = loop.time()
        request = asyncio.ensure_future(
            self._ib.reqHistoricalDataAsync(
                contract,
                chunk.request_end,
                chunk.duration,
                bar_size,
                what,
                self.use_rth,
                formatDate=2,
                keepUpToDate=False,
                timeout=self.request_timeout,
            )
        )
        await asyncio.sleep(0)  # the request is now written, or queued by ib_insync's throttle
        if not self._throttle_over.is_set() and not request.done():
            # a lost connection empties ib_insync's queue without ending the throttle: wait for
            # the queue to drain or for the request to end (answer, timeout, the loss), not longer
            drained = asyncio.ensure_future(self._throttle_over.wait())
            await asyncio.wait({request, drained}, return_when=asyncio.FIRST_COMPLETED)
            if drained.done():
                self.pacer.sent_late(key)
            else:
                drained.cancel()
        try:
            bars = await request
        except ConnectionError as exc:
            raise IBConnectionLost(f"connection lost during {contract.symbol} {bar_size} {chunk}: {exc}") from exc
        errors = self._pop_errors(contract, bars.reqId)
        if not bars and not errors and loop.time() - started >= self.request_timeout * 0.999:
            # ib_insync gives up silently with an empty list: say so, it is not "no data"
            errors = [IBError(bars.reqId, TIMEOUT_CODE, f"no answer within {self.request_timeout:g} s")]
        return list(bars), errors

    def historical_chunk(self, symbol: str, chunk: Chunk, interval: str, adjusted: bool = False) -> HistoricalResult:
        return self._run(self.historical_chunk_async(symbol, chunk, interval, adjusted))

    async def plan_async(
        self,
        symbol: str,
        start: Any,
        end: Any,
        interval: str,
        adjusted: bool = False,
        chunk_unit: ChunkUnit | None = None,
    ) -> list[Chunk]:
        """The requests for ``[start, end)``, starting no earlier than the listing date.

        ``chunk_unit`` asks for smaller requests than the default grid (e.g. "month" for daily
        bars). The listing date is asked for as ``head_timestamps`` says.
        """
        start_ts, end_ts = to_utc(start), to_utc(end)
        if self.head_timestamps == "always" or (
            self.head_timestamps == "auto" and end_ts - start_ts > HEAD_TIMESTAMP_MIN_SPAN
        ):
            try:
                head = await self.head_timestamp_async(symbol)
            except IBRequestTimeout as exc:  # plan from ``start``: IB answers "no data" before the listing
                log.warning("%s; planning %s without the listing date", exc, symbol)
                head = None
            if head is not None and head > start_ts:
                start_ts = head.floor(interval_spec(interval).step)
        if start_ts >= end_ts:
            return []
        if adjusted:
            return [plan_adjusted_chunk(start_ts, end_ts, interval, pad=self.pad_windows)]
        return plan_chunks(
            start_ts, end_ts, interval, chunk_unit, years_per_request=self.years_per_request, pad=self.pad_windows
        )

    def known_head(self, symbol: str) -> pd.Timestamp | None:
        """The listing date already learnt for ``symbol`` (None when not asked or unknown)."""
        return self._heads.get(symbol.upper())

    async def historical_bars_async(
        self,
        symbol: str,
        start: Any,
        end: Any,
        interval: str = "1d",
        adjusted: bool = False,
        chunk_unit: ChunkUnit | None = None,
    ) -> HistoricalResult:
        """Bars of ``symbol`` in ``[start, end)`` (canonical frame; daily bars at 00:00 UTC).

        The range is cut into requests IB accepts (no request before the listing date), each
        paced; ``refused`` tells a refusal apart from an answer without data.
        """
        interval_spec(interval)
        resolved = await self._contract(symbol)
        if isinstance(resolved, Unresolved):
            return HistoricalResult(refused=True, errors=[IBError(-1, resolved.code or 200, resolved.reason)])
        total = HistoricalResult()
        frames = []
        chunks = await self.plan_async(symbol, start, end, interval, adjusted, chunk_unit)
        parts = await asyncio.gather(*(self.historical_chunk_async(symbol, c, interval, adjusted) for c in chunks))
        for part in parts:
            frames.append(part.bars)
            total.errors += part.errors
            total.refused |= part.refused
            total.requests += part.requests
            total.pacing_violations += part.pacing_violations
        frames = [f for f in frames if not f.empty]
        if frames:
            merged = pd.concat(frames, ignore_index=True).drop_duplicates(["symbol", "ts"], keep="last")
            total.bars = normalize_bars(merged, origin=f"IB {symbol.upper()} {interval}")
        return total

    def historical_bars(
        self,
        symbol: str,
        start: Any,
        end: Any,
        interval: str = "1d",
        adjusted: bool = False,
        chunk_unit: ChunkUnit | None = None,
    ) -> HistoricalResult:
        return self._run(self.historical_bars_async(symbol, start, end, interval, adjusted, chunk_unit))

    def plan(
        self,
        symbol: str,
        start: Any,
        end: Any,
        interval: str,
        adjusted: bool = False,
        chunk_unit: ChunkUnit | None = None,
    ) -> list[Chunk]:
        return self._run(self.plan_async(symbol, start, end, interval, adjusted, chunk_unit))
