"""The IB Gateway emulator: an asyncio TWS-protocol server on loopback.

It speaks the real socket protocol to the unmodified ib_insync client: handshake and connect
sync, contract details (with trading and liquid hours), historical bars of closed bars only
(with keepUpToDate), 5-second real-time bars derived from minute bars, market data ticks, head
timestamps, MKT/LMT orders filled at made-up quotes around the last price (partial fills
optional), what-if orders, executions, commissions, positions and account values, several
clients at once, and the faults of a ``FaultPlan``.
Run it in the caller's event loop (``await start()``) or in a background thread
(``serve_in_thread``), which is what synchronous ib_insync code needs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tt_platform.ib.clock import Clock, SystemClock
from tt_platform.ib.emulator import messages as msg
from tt_platform.ib.emulator.broker import Broker, Execution, OrderTicket
from tt_platform.ib.emulator.contracts import ContractBook, ContractSpec
from tt_platform.ib.emulator.faults import FaultPlan
from tt_platform.ib.emulator.handlers import HANDLERS, HistoricalRecord, Stream
from tt_platform.ib.emulator.historical import WINDOW_READINGS, bar_rows
from tt_platform.ib.emulator.inbound import ContractRef, Fields
from tt_platform.ib.emulator.quotes import DEFAULT_SPREAD_BPS, QuoteModel
from tt_platform.ib.emulator.realtime import REALTIME_BAR, bar_start, realtime_bars
from tt_platform.ib.emulator.replay import MarketReplay, ReplayConfig
from tt_platform.ib.emulator.sources import BarSource
from tt_platform.ib.emulator.wire import (
    API_PREFIX,
    HEADER,
    MAX_FRAME,
    FrameReader,
    ProtocolError,
    encode_fields,
    round_to_tick,
)
from tt_platform.ib.pacing import PacingLedger

log = logging.getLogger(__name__)

MIN_CLIENT_VERSION = 157
FAR_PAST = pd.Timestamp("1900-01-01", tz="UTC")
FAR_FUTURE = pd.Timestamp("2200-01-01", tz="UTC")


@dataclass
class EmulatorStats:
    connections: int = 0
    rejected_client_ids: int = 0
    drops: int = 0
    restarts: int = 0
    messages_sent: int = 0
    open_historical: int = 0  # historical requests received and not yet answered
    max_open_historical: int = 0  # the most that were open at once (keepUpToDate ones included)
    refused_open_limit: int = 0  # answered 322: too many open at once


class ClientSession:
    """One API connection: handshake, request dispatch, subscriptions."""

    def __init__(self, gateway: GatewayEmulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.gateway, self.reader, self.writer = gateway, reader, writer
        self.client_id: int | None = None
        self.sent = 0
        self.streams: dict[int, Stream] = {}
        self.positions_subscribed = False
        self.account_subscribed = False
        self.account_multi: set[int] = set()
        self.tasks: set[asyncio.Task] = set()
        self.closed = False
        self._reader = FrameReader()
        self._pending_frames: list[list[str]] = []

    # output ---------------------------------------------------------------------------------

    def send(self, fields: list[object]) -> None:
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(encode_fields(fields))
        self.sent += 1
        self.gateway.stats.messages_sent += 1
        faults = self.gateway.faults
        limit = faults.drop_after_messages
        if limit is not None and self.sent >= limit and self.gateway.stats.drops < faults.max_drops:
            self.gateway.stats.drops += 1
            log.info("fault: dropping client %s after %d messages", self.client_id, self.sent)
            self.close()

    def send_partial_and_close(self, fields: list[object]) -> None:
        frame = encode_fields(fields)
        self.gateway.stats.drops += 1
        if not self.writer.is_closing():
            self.writer.write(frame[: max(HEADER.size + 1, len(frame) // 2)])
        self.close()

    def error(self, req_id: int, code: int, message: str) -> None:
        self.send(msg.error(req_id, code, message))

    def send_ticks(self, req_id: int, bar: Any, tick: float, initial: bool = False) -> None:
        """Quote and trade ticks from one bar: last = close, bid/ask the quotes orders trade at."""
        close = round_to_tick(float(bar.close), tick)
        quote = self.gateway.broker.quotes.around(close, tick)
        self.send(msg.tick_price(req_id, 1, quote.bid, 100.0))
        self.send(msg.tick_price(req_id, 2, quote.ask, 100.0))
        self.send(msg.tick_price(req_id, 4, close, 100.0))
        self.send(msg.tick_price(req_id, 6, round_to_tick(float(bar.high), tick), 0.0))
        self.send(msg.tick_price(req_id, 7, round_to_tick(float(bar.low), tick), 0.0))
        if initial:
            self.send(msg.tick_price(req_id, 9, close, 0.0))
            self.send(msg.tick_price(req_id, 14, round_to_tick(float(bar.open), tick), 0.0))
        self.send(msg.tick_size(req_id, 8, float(bar.volume)))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self.writer.close()  # graceful: what was written still reaches the client

    # connection -----------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            if await self._handshake():
                await self._serve()
        except (ConnectionError, asyncio.IncompleteReadError, ProtocolError) as exc:
            log.debug("client %s: connection ended: %s", self.client_id, exc)
        finally:
            self.close()
            for task in list(self.tasks):
                task.cancel()
            self.gateway.forget(self)

    async def _handshake(self) -> bool:
        prefix = await self.reader.readexactly(len(API_PREFIX))
        if prefix != API_PREFIX:
            raise ProtocolError(f"expected the API prefix {API_PREFIX!r}, got {prefix!r}")
        (size,) = HEADER.unpack(await self.reader.readexactly(HEADER.size))
        if size > MAX_FRAME:
            raise ProtocolError(f"version range of {size} bytes exceeds the {MAX_FRAME} byte limit")
        versions = (await self.reader.readexactly(size)).decode(errors="replace")
        try:
            _, high = versions.split()[0].lstrip("v").split("..")
            high_version = int(high)
        except (ValueError, IndexError):  # not "v<low>..<high>", or nothing at all
            raise ProtocolError(f"unreadable client version range {versions[:60]!r}") from None
        if high_version < MIN_CLIENT_VERSION:
            raise ProtocolError(f"client version {high_version} is below {MIN_CLIENT_VERSION}")
        version = min(high_version, msg.SERVER_VERSION)
        connection_time = pd.Timestamp.now(tz="UTC").strftime("%Y%m%d %H:%M:%S UTC")
        self.writer.write(encode_fields(msg.handshake(connection_time, version)))
        while not (frames := self._reader.feed(await self._read())):
            pass
        start = frames[0]
        if start[0] != "71":
            raise ProtocolError(f"expected startApi (71) after the handshake, got message {start[0]}")
        client_id = Fields(start, "startApi").int(2)
        if not self.gateway.register(client_id, self):
            self.gateway.stats.rejected_client_ids += 1  # counted before the client can see it
            self.error(-1, 326, "Unable to connect as the client id is already in use. Retry with a unique client id.")
            self.close()
            return False
        self.client_id = client_id
        self.send(msg.next_valid_id(self.gateway.next_order_id(client_id)))
        self.send(msg.managed_accounts([self.gateway.broker.account]))
        for code, text in (
            (2104, "Market data farm connection is OK:usfarm"),
            (2106, "HMDS data farm connection is OK:ushmds"),
            (2158, "Sec-def data farm connection is OK:secdefnj"),
        ):
            self.error(-1, code, text)
        self._pending_frames = frames[1:]
        return True

    async def _read(self) -> bytes:
        data = await self.reader.read(65536)
        if not data:
            raise ConnectionError("client closed the connection")
        return data

    async def _serve(self) -> None:
        for frame in self._pending_frames:
            self._dispatch(frame)
        while not self.closed:
            for frame in self._reader.feed(await self._read()):
                self._dispatch(frame)
            await self.writer.drain()

    def _dispatch(self, fields: list[str]) -> None:
        try:
            msg_id = int(fields[0])
        except (ValueError, IndexError):
            raise ProtocolError(f"message without a numeric id: {fields[:3]!r}") from None
        handler = HANDLERS.get(msg_id)
        if handler is None:
            log.info("client %s: message %d is not served by the emulator", self.client_id, msg_id)
            return
        try:
            result = handler(self, fields)
        except Exception as exc:
            self._report(msg_id, exc)
            return
        if asyncio.iscoroutine(result):
            task = asyncio.get_running_loop().create_task(self._guarded(msg_id, result))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            # a connection dropped before the task started cancels it unstarted: close the request
            # too, or it is reported as never awaited
            task.add_done_callback(lambda _: result.close())

    async def _guarded(self, msg_id: int, coro: Coroutine) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._report(msg_id, exc)

    def _report(self, msg_id: int, exc: Exception) -> None:
        """A request the emulator cannot handle: tell the client, keep the connection."""
        if isinstance(exc, ProtocolError):
            log.warning("client %s: bad message %d: %s", self.client_id, msg_id, exc)
        else:
            log.exception("client %s: handling message %d failed", self.client_id, msg_id)
        self.error(-1, 321, f"Error validating request: {exc}")


class GatewayEmulator:
    """An IB Gateway on ``host:port`` serving the bars of ``source``.

    ``clock`` drives pacing windows, live-stream steps and fault timings (a ``ScaledClock``
    compresses them); ``replay`` sets the market cursor (see ``MarketReplay``); ``faults`` says
    what goes wrong, pacing included. ``window_reading`` says how a historical request's window
    is read: "inclusive_start" [end - duration, end) or "exclusive_start" (end - duration, end].
    ``history_log`` records every historical request with its outcome. A source with
    ``serves_any_symbol`` gets a contract for any symbol asked for. ``spread_bps`` is the quoted
    spread around the last price (market orders pay it); ``volume_share`` caps what one bar fills
    of an order (that share of the bar's volume; None fills everything at once).
    """

    def __init__(
        self,
        source: BarSource,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        faults: FaultPlan | None = None,
        replay: ReplayConfig | None = None,
        account: str = "DU1234567",
        initial_cash: float = 1_000_000.0,
        contracts: Mapping[str, ContractSpec] | None = None,
        history_decimals: int = 6,
        window_reading: str = "inclusive_start",
        spread_bps: float = DEFAULT_SPREAD_BPS,
        volume_share: float | None = None,
    ) -> None:
        if window_reading not in WINDOW_READINGS:
            raise ValueError(f"window_reading must be one of {WINDOW_READINGS}, got {window_reading!r}")
        self.source = source
        self.host, self._port = host, port
        self.clock = clock or SystemClock()
        self.faults = faults or FaultPlan()
        self.window_reading = window_reading
        self.contracts = ContractBook(
            source.symbols(), contracts, open=bool(getattr(source, "serves_any_symbol", False))
        )
        self.broker = Broker(account, initial_cash, quotes=QuoteModel(spread_bps), volume_share=volume_share)
        self.replay = MarketReplay(source, replay, self.clock)
        self.pacing = PacingLedger(self.faults.pacing_rules)
        self.history_decimals = history_decimals
        self.history_log: list[HistoricalRecord] = []
        self.stats = EmulatorStats()
        self.sessions: dict[int, ClientSession] = {}
        self._head_cache: dict[str, pd.Timestamp | None] = {}
        self._historical_received = 0
        self._historical_answered = 0
        self._restart_done = False
        self._server: asyncio.AbstractServer | None = None
        self._background: set[asyncio.Task] = set()
        self._connectivity_ok: asyncio.Event | None = None

    # lifecycle ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> int:
        """Listen (port 0 picks a free one) and start the background schedules; return the port."""
        if self._connectivity_ok is None:
            self._connectivity_ok = asyncio.Event()
            self._connectivity_ok.set()
            self._spawn(self._replay_loop())
            for at, duration in self.faults.connectivity_blips:
                self._spawn(self._blip(at, duration))
        await self._listen()
        return self._port

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._on_connect, self.host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]
        log.info("IB Gateway emulator listening on %s:%d", self.host, self._port)

    async def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for session in list(self.sessions.values()):
                session.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    async def stop(self) -> None:
        await self._close_listener()
        for session in list(self.sessions.values()):
            session.close()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._connectivity_ok = None

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def restart(self, down_seconds: float = 30.0) -> None:
        """IB's daily restart: every client dropped, the port closed for ``down_seconds``."""
        log.info("gateway restart: down for %.1f s (emulator clock)", down_seconds)
        self.stats.restarts += 1
        await self._close_listener()
        await self.clock.sleep(down_seconds)
        await self._listen()

    def _require_started(self) -> asyncio.Event:
        if self._connectivity_ok is None:
            raise RuntimeError("the gateway emulator is not running: await start() first")
        return self._connectivity_ok

    async def connectivity_lost(self) -> None:
        """Error 1100 to every client; requests and streams wait until connectivity_restored."""
        self._require_started().clear()
        self._broadcast_error(1100, "Connectivity between IB and Trader Workstation has been lost.")

    async def connectivity_restored(self) -> None:
        """Error 1102 (restored, data maintained) to every client; held requests go on."""
        event = self._require_started()
        self._broadcast_error(
            1102, "Connectivity between IB and Trader Workstation has been restored - data maintained."
        )
        event.set()

    def _broadcast_error(self, code: int, text: str) -> None:
        for session in list(self.sessions.values()):
            session.error(-1, code, text)

    def _spawn(self, coro: Coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _blip(self, at: float, duration: float) -> None:
        await self.clock.sleep(at)
        await self.connectivity_lost()
        await self.clock.sleep(duration)
        await self.connectivity_restored()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        await ClientSession(self, reader, writer).run()

    def register(self, client_id: int, session: ClientSession) -> bool:
        if client_id in self.sessions:
            return False
        self.sessions[client_id] = session
        return True

    def forget(self, session: ClientSession) -> None:
        if session.client_id is not None and self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]

    def next_order_id(self, client_id: int) -> int:
        used = [oid for (cid, oid) in self.broker.orders if cid == client_id]
        return max(used, default=0) + 1

    async def wait_connectivity(self) -> None:
        """Requests wait while connectivity is lost (1100) and go on after 1102, as in TWS."""
        if self._connectivity_ok is not None:
            await self._connectivity_ok.wait()

    def count_historical_request(self) -> int:
        self._historical_received += 1
        return self._historical_received

    def open_historical(self) -> int:
        """Historical requests open now: received and unanswered, plus keepUpToDate streams."""
        streams = sum(
            1 for session in self.sessions.values() for s in session.streams.values() if s.kind == "keepup"
        )
        return self.stats.open_historical + streams

    def historical_opened(self) -> None:
        self.stats.open_historical += 1
        self.stats.max_open_historical = max(self.stats.max_open_historical, self.open_historical())

    def historical_closed(self) -> None:
        self.stats.open_historical -= 1

    def historical_answered(self) -> None:
        self._historical_answered += 1
        limit = self.faults.restart_after_historical
        if limit is not None and not self._restart_done and self._historical_answered >= limit:
            self._restart_done = True
            self._spawn(self.restart(self.faults.restart_down_seconds))

    # lookups --------------------------------------------------------------------------------

    def resolve(self, ref: ContractRef) -> ContractSpec | None:
        if ref.sec_type not in ("", "STK") or ref.currency not in ("", "USD"):
            return None
        if ref.symbol and ref.symbol in self.faults.unknown_symbols:
            return None
        spec = self.contracts.lookup(ref.symbol, ref.con_id)
        if spec is None or spec.symbol in self.faults.unknown_symbols:
            return None
        return spec

    def head_timestamp(self, symbol: str) -> pd.Timestamp | None:
        if symbol not in self._head_cache:
            first = getattr(self.source, "first_session", None)
            if first is not None:
                self._head_cache[symbol] = first
            else:
                bars = pd.DataFrame()
                for interval in ("1d", "1h", "1min"):
                    bars = self.source.bars(symbol, FAR_PAST, FAR_FUTURE, interval)
                    if not bars.empty:
                        break
                self._head_cache[symbol] = None if bars.empty else bars["ts"].iloc[0]
        return self._head_cache[symbol]

    def last_price(self, symbol: str) -> float | None:
        bar = self.replay.last_bar(symbol)
        return None if bar is None else float(bar["close"])

    def time_text(self) -> str:
        return self.replay.now().strftime("%Y%m%d %H:%M:%S UTC")

    # orders and account ---------------------------------------------------------------------

    def publish_fill(self, ticket: OrderTicket, execution: Execution) -> None:
        spec = self.contracts.lookup(ticket.symbol)
        owner = self.sessions.get(ticket.client_id)
        if owner is not None:
            owner.send(msg.exec_details(-1, execution, spec))
            owner.send(msg.order_status(ticket))
            owner.send(msg.open_order(ticket, spec))
            owner.send(msg.commission_report(execution))
        self.publish_account([ticket.symbol])

    def publish_account(self, changed: list[str] | None = None) -> None:
        """Push account updates to subscribers. Like IB, a change re-sends only the changed
        contracts' position and portfolio rows (``changed``); None re-sends every holding."""
        for session in list(self.sessions.values()):
            if session.positions_subscribed:
                self.send_positions(session, changed)
            if session.account_subscribed:
                self.send_account(session, end=False, symbols=changed)
            for req_id in session.account_multi:
                self.send_account_multi(session, req_id)

    def _holdings(self, symbols: list[str] | None):
        holdings = self.broker.holdings
        if symbols is None:
            return list(holdings.items())
        return [(symbol, holdings[symbol]) for symbol in symbols if symbol in holdings]

    def send_positions(self, session: ClientSession, symbols: list[str] | None = None) -> None:
        for symbol, holding in self._holdings(symbols):
            spec = self.contracts.lookup(symbol)
            session.send(msg.position(self.broker.account, spec, holding.quantity, holding.avg_cost))

    def account_rows(self) -> list[tuple[str, str]]:
        return [(key, f"{value:.2f}") for key, value in self.broker.account_values().items()]

    def send_account(self, session: ClientSession, end: bool, symbols: list[str] | None = None) -> None:
        account = self.broker.account
        for key, value in self.account_rows():
            session.send(msg.account_value(key, value, "USD", account))
        session.send(msg.account_value("AccountCode", account, "", account))
        for symbol, h in self._holdings(symbols):
            mark = self.broker.marks.get(symbol, h.avg_cost)
            session.send(
                msg.portfolio_value(
                    self.contracts.lookup(symbol),
                    h.quantity,
                    mark,
                    self.broker.market_value(symbol),
                    h.avg_cost,
                    self.broker.unrealized_pnl(symbol),
                    h.realized_pnl,
                    account,
                )
            )
        session.send(msg.account_time(pd.Timestamp.now(tz="UTC").strftime("%H:%M")))
        if end:
            session.send(msg.account_download_end(account))

    def send_account_multi(self, session: ClientSession, req_id: int) -> None:
        for key, value in self.account_rows():
            session.send(msg.account_update_multi(req_id, self.broker.account, key, value, "USD"))

    # live replay ----------------------------------------------------------------------------

    def _interest(self) -> set[str]:
        symbols = {s.symbol for session in self.sessions.values() for s in session.streams.values()}
        symbols |= {t.symbol for t in self.broker.working()}
        symbols |= {s for s, h in self.broker.holdings.items() if h.quantity}
        return symbols

    async def _replay_loop(self) -> None:
        if not self.replay.active:
            return
        step = self.replay.config.step_seconds
        while True:
            await self.clock.sleep(step)
            await self.wait_connectivity()
            try:
                before = self.replay.now()
                released = self.replay.advance(self._interest())
                for symbol, bars in released.items():
                    self._release(symbol, bars)
                self._replay_realtime_bars(before, self.replay.now(), step)
            except Exception:  # a bad bar must not stop the market for everyone
                log.exception("replay step failed")

    def _release(self, symbol: str, bars: pd.DataFrame) -> None:
        """Hand newly released bars to the live streams and to resting orders."""
        interval = self.replay.config.interval
        spec = self.contracts.lookup(symbol)
        tick = spec.min_tick if spec else 0.01
        for i, bar in enumerate(bars.itertuples(index=False)):
            one = bars.iloc[[i]]
            rows: dict[int, msg.BarRow] = {}  # per formatDate
            for session in list(self.sessions.values()):
                for req_id, stream in list(session.streams.items()):
                    if stream.symbol != symbol:
                        continue
                    if stream.kind == "keepup" and stream.interval == interval:
                        fmt = stream.format_date
                        row = rows.setdefault(fmt, bar_rows(one, interval, fmt, self.history_decimals)[0])
                        session.send(msg.historical_data_update(req_id, row))
                    elif stream.kind == "mktdata":
                        session.send_ticks(req_id, bar, tick)
            for ticket in self.broker.working(symbol):
                execution = self.broker.match_bar(
                    ticket, float(bar.open), float(bar.high), float(bar.low), float(bar.volume), tick,
                    self.time_text(),
                )
                if execution is not None:
                    self.publish_fill(ticket, execution)
            self.broker.mark(symbol, float(bar.close))
        if symbol in self.broker.holdings:
            self.publish_account([symbol])

    # real-time bars ---------------------------------------------------------------------------

    def _realtime_subscribers(self, symbol: str | None = None) -> list[tuple[ClientSession, int, Stream]]:
        return [
            (session, req_id, stream)
            for session in list(self.sessions.values())
            for req_id, stream in list(session.streams.items())
            if stream.kind == "rtbars" and symbol in (None, stream.symbol)
        ]

    def _replay_realtime_bars(self, before: pd.Timestamp, after: pd.Timestamp, step: float) -> None:
        """The replay moved the market from ``before`` to ``after`` in ``step`` clock seconds:
        play the 5-second bars of that span over the step, each when it closes."""
        symbols = {s.symbol for _, _, s in self._realtime_subscribers()}
        for symbol in sorted(symbols):
            minutes = self.source.bars(symbol, before, after, "1min")
            if minutes.empty:
                continue
            spec = self.contracts.lookup(symbol)
            bars = realtime_bars(minutes, before, after, spec.min_tick if spec else 0.01)
            if bars:
                self._spawn(self._play_realtime(symbol, bars, before, after, step))

    async def _play_realtime(self, symbol: str, bars: list, before: pd.Timestamp, after: pd.Timestamp,
                             step: float) -> None:
        span = (after - before).total_seconds()
        started = self.clock.now()
        for bar in bars:
            due = step * ((bar.start + REALTIME_BAR - before).total_seconds() / span)
            delay = due - (self.clock.now() - started)
            if delay > 0:
                await self.clock.sleep(delay)
            for session, req_id, _ in self._realtime_subscribers(symbol):
                session.send(msg.realtime_bar(req_id, bar.epoch_seconds, bar.row))

    async def stream_realtime_bars(self, session: ClientSession, req_id: int, stream: Stream,
                                   spec: ContractSpec) -> None:
        """Without replay: one 5-second bar each time one closes on the emulator's clock, from
        the source's minute bars at that time (nothing while the source has none)."""
        minutes = pd.DataFrame()
        loaded = (FAR_FUTURE, FAR_PAST)  # the span ``minutes`` covers
        while session.streams.get(req_id) is stream and not session.closed:
            now = self.replay.now()
            start = bar_start(now)
            await self.clock.sleep((start + REALTIME_BAR - now).total_seconds())
            await self.wait_connectivity()
            if session.streams.get(req_id) is not stream or session.closed:
                return
            minute = start.floor("1min")
            if not loaded[0] <= minute < loaded[1]:
                loaded = (minute, minute + pd.Timedelta(hours=1))
                minutes = self.source.bars(spec.symbol, *loaded, "1min")
            for bar in realtime_bars(minutes, start, start + REALTIME_BAR, spec.min_tick):
                session.send(msg.realtime_bar(req_id, bar.epoch_seconds, bar.row))


# running in a background thread ---------------------------------------------------------------


class GatewayThread:
    """Runs a ``GatewayEmulator`` on its own event loop in a daemon thread.

    Synchronous ib_insync code blocks its own loop while it waits, so the emulator needs a loop
    of its own; ``call`` runs a coroutine there (e.g. ``gateway.restart``) and waits for it,
    ``submit`` schedules one without waiting.
    """

    def __init__(self, emulator: GatewayEmulator) -> None:
        self.emulator = emulator
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="ib-gateway-emulator", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.emulator.start())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()
        # connection handlers may still be winding down: finish them before closing the loop
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def start(self, timeout: float = 10.0) -> GatewayThread:
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError(f"the gateway emulator did not start within {timeout} s")
        if self._error is not None:
            raise RuntimeError(f"the gateway emulator failed to start: {self._error!r}") from self._error
        return self

    @property
    def port(self) -> int:
        return self.emulator.port

    def submit(self, coro: Coroutine) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine, timeout: float | None = 30.0) -> Any:
        return self.submit(coro).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self.call(self.emulator.stop(), timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)

    def __enter__(self) -> GatewayThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_thread(emulator: GatewayEmulator, timeout: float = 10.0) -> GatewayThread:
    """Start ``emulator`` in a background thread; use as a context manager to stop it."""
    return GatewayThread(emulator).start(timeout)
