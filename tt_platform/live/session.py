"""The paper/live trading loop: one verified policy, one IB connection, one session in the store.

Start: open the session in the store (refused while another session holds the account),
restore the book of a restarted session, connect, warm start from stored bars plus IB history,
reconcile with the broker, subscribe to 5-second real-time bars.

Every tick (``poll_seconds``): stop if asked (the Dagster run's status, an interrupt, the decision
limit); recover a dropped connection (reconnect, resubscribe, reconcile); feed the sub-bars to
the ``IntervalBarAssembler``; for each completed bar set: policy -> target weights -> ``decide``
(risk gate, circuit breaker, market-hours gate, daily kill switch) -> orders; book fills; watch
for data gaps and unfilled limits; heartbeat. An exception in one step is logged and counted,
never fatal.

Orders: the order's row is written (``pending_submit``) before it is sent, with its ``orderRef``
as the key, and a ref the broker or the store already knows is never sent again, so a crash
between submit and acknowledgement cannot double an order: the restarted session finds the ref
at the broker (or records it as never sent).

Paper mode fills every order at the bar's close through the shared ``ExecutionCore`` (the
backtester's fills); live mode sends IB orders and runs the same model beside them as a shadow,
recording each real fill's divergence from it.

Stop: cancel open orders, optionally flatten, persist the last mark, write the day's report,
disconnect, close the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tt_platform.core.accounting import Portfolio
from tt_platform.core.costs import CostModel
from tt_platform.core.execution import Bar as CoreBar
from tt_platform.core.execution import ExecutionCore, book_fill
from tt_platform.core.orders import Order, OrderType
from tt_platform.core.risk import RiskGate
from tt_platform.data.aggregation import parse_interval
from tt_platform.data.calendars import get_exchange_calendar
from tt_platform.live.config import LiveSessionConfig
from tt_platform.live.decision import Decision, decide
from tt_platform.live.guardrails import CircuitBreaker
from tt_platform.live.order_refs import parse_order_ref, session_key
from tt_platform.live.policy_runner import PolicyRunner
from tt_platform.live.policy_source import VerifiedPolicy
from tt_platform.live.reconcile import OPEN_STATUSES, Reconciliation, reconcile
from tt_platform.live_bars.assembler import BarSet, IntervalBarAssembler
from tt_platform.live_bars.gaps import DataGapWatch

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
RECONNECT_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
RECONCILE_SECONDS = 60.0


def account_key(account: str) -> str:
    """What the store keeps of an account id: a hash (the id itself is a secret)."""
    return "acct-" + hashlib.sha256(account.encode()).hexdigest()[:16]


@dataclass
class SessionHooks:
    """How the session talks to whoever runs it (the Dagster op, ``tt live``, tests)."""

    stop_reason: Callable[[], str | None] = lambda: None
    heartbeat: Callable[[dict[str, Any]], None] = lambda info: None
    alert: Callable[[str], None] = lambda message: None
    decision: Callable[[dict[str, Any]], None] = lambda info: None


@dataclass
class SessionResult:
    session_id: str
    status: str  # stopped | canceled | failed
    reason: str
    decisions: int
    orders_sent: int
    fills: int
    equity: float
    report_path: Path | None = None
    errors: int = 0
    reconnects: int = 0
    latencies_ms: list[float] = field(default_factory=list)


@dataclass
class _InFlight:
    ref: str
    order: Order
    sent_at: float  # time.monotonic()
    shadow_price: float
    filled: float = 0.0  # shares filled so far


class LiveSession:
    """One trading session. ``trading``: an ``IBTrading``; ``store``: the platform's engine;
    ``history``: an async fetch of IB history (warm start), or None."""

    def __init__(self, config: LiveSessionConfig, policy: VerifiedPolicy, model: Any, *, trading: Any, store: Any,
                 session_id: str, run_id: str | None = None, history: Any = None,
                 hooks: SessionHooks | None = None, report_dir: Path | None = None,
                 poll_seconds: float = POLL_SECONDS) -> None:
        self.config = config
        self.policy = policy
        self.trading = trading
        self.store = store
        self.session_id = session_id
        self.run_id = run_id or session_id
        self.history = history
        self.hooks = hooks or SessionHooks()
        self.report_dir = report_dir
        self.poll_seconds = poll_seconds
        self.symbols = list(policy.symbols)
        self.ref_session = session_key(session_id)
        self.runner = PolicyRunner(policy, model, history_bars=config.warm_start_bars)
        self.portfolio = Portfolio(config.capital, self.symbols)
        self.gate = RiskGate(config.risk.limits())
        self.breaker = CircuitBreaker(config.risk.max_session_drawdown, flatten=config.risk.flatten_on_trip)
        paper = config.paper
        self.core = ExecutionCore(CostModel(paper.commission_bps, paper.slippage_bps, paper.min_commission),
                                  fill_at="close", min_order_value=config.orders.min_order_value)
        self.assembler = IntervalBarAssembler(self.symbols, policy.interval, config.calendar, late="drop")
        self.gaps = DataGapWatch(policy.interval, config.calendar)
        self.exchange = get_exchange_calendar(config.calendar)
        self.step = 0
        self.decisions = 0
        self.orders_sent = 0
        self.fills = 0
        self.errors = 0
        self.consecutive_errors = 0
        self.reconnects = 0
        self.latencies_ms: list[float] = []
        self.known_refs: set[str] = set()
        self.in_flight: dict[str, _InFlight] = {}
        self.reconciled = False
        self.status = "starting"
        self.stop_reason: str | None = None
        self._sub_bars: list[Any] = []
        # when the last real-time bar arrived (monotonic) and whether its silence was reported:
        # the feed clock stands still when the feed stops, so silence is measured on the wall
        self._last_sub_bar_wall: float | None = None
        self._silence_alerted = False
        self._silence_limit_seconds = 2 * parse_interval(policy.interval) / 1e9
        self._executions: list[Any] = []
        self._first_sub_bar: pd.Timestamp | None = None
        self._feed_now: pd.Timestamp | None = None
        self._last_heartbeat = 0.0
        self._last_bar_by_symbol: dict[str, pd.Timestamp] = {}
        self._last_bar_time: pd.Timestamp | None = None
        self._last_prices: np.ndarray | None = None
        self._account_key: str | None = None
        self._report_day: Any = None
        self._alive_at = datetime.now(UTC)
        self._health: Any = None
        self._submitted_ns: int | None = None
        self._acknowledged_ns: int | None = None
        # per decision that sent orders: (bar close -> orders sent, -> IB acknowledged them), ms
        self.ack_latencies_ms: list[float] = []
        self._booked_commission: dict[str, float] = {}
        # what the shadow simulation filled each live order at, for the divergence of its fills
        self._shadow_prices_by_ref: dict[str, float] = {}
        self._last_reconcile = time.monotonic()
        self._resting_paper: list[tuple[str, Order]] = []
        self._wake = asyncio.Event()
        self._rules: dict[str, Any] = {}

    # clock -------------------------------------------------------------------------------------

    def now(self) -> pd.Timestamp:
        if self.config.clock == "feed":
            return self._feed_now if self._feed_now is not None else pd.Timestamp.now(tz="UTC")
        return pd.Timestamp.now(tz="UTC")

    def market_open(self, bar_end: pd.Timestamp) -> bool:
        """Open when the bar's last minute was a trading minute of the exchange."""
        minute = (pd.Timestamp(bar_end) - pd.Timedelta(seconds=1)).floor("min")
        try:
            return bool(self.exchange.is_trading_minute(minute))
        except Exception:  # noqa: BLE001 - outside the calendar's bounds: closed
            return False

    def trading_day(self, bar_time: pd.Timestamp) -> str:
        return str(pd.Timestamp(bar_time).tz_convert(self.exchange.tz).date())

    # lifecycle ---------------------------------------------------------------------------------

    async def run(self) -> SessionResult:
        from tt_platform.store import live as live_store

        status, reason = "failed", ""
        try:
            await self._connect()
            account = self.trading.account_id
            if not account:
                raise ValueError(f"IB at {self.trading.where} manages several accounts: set IB_ACCOUNT to the one to trade")
            self._account_key = account_key(account)
            live_store.open_session(
                self.store, session_id=self.session_id, run_id=self.run_id, account_key=self._account_key,
                mode=self.config.mode, policy_id=self.policy.policy_id, policy_version=self.policy.version_label,
                feature_set_hash=self.policy.feature_set_hash, config=self.config.safe_dict(),
                stale_after=pd.Timedelta(seconds=self.config.stale_after_seconds).to_pytimedelta())
            self._restore()
            await self._warm_start()
            if self.config.mode == "live":
                self._rules = await self.trading.contract_rules(self.symbols)
            await self._reconcile("start")
            self.trading.on_realtime_bar = self._on_sub_bar
            self.trading.on_execution = lambda execution: self._executions.append(execution)
            self.trading.on_connectivity = self._on_connectivity
            await self.trading.subscribe_realtime_bars(self.symbols)
            self.status = "running"
            self._start_health_server()
            log.info("session %s running: %s %s on %s bars of %s", self.session_id, self.config.mode,
                     self.policy.version_label, self.policy.interval, ", ".join(self.symbols))
            # start-up made most of the objects the session keeps: out of the collector's way, so a
            # full collection (hundreds of ms) does not land between a bar's close and its orders
            gc.collect()
            gc.freeze()
            while True:
                self.stop_reason = self.stop_reason or self.hooks.stop_reason()
                if self.stop_reason:
                    break
                if self.config.max_decisions and self.decisions >= self.config.max_decisions:
                    self.stop_reason = f"reached max_decisions ({self.config.max_decisions})"
                    break
                await self._tick()
                # woken by the next sub-bar, or after poll_seconds for the clock-driven work
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                self._wake.clear()
            status, reason = ("canceled" if self.stop_reason.startswith("terminated") else "stopped"), self.stop_reason
        except (asyncio.CancelledError, KeyboardInterrupt) as exc:
            status, reason = "canceled", f"interrupted ({type(exc).__name__})"
            raise
        except BaseException as exc:
            # Dagster's interrupt is a BaseException too: treat it as a stop, not a failure
            if type(exc).__name__ == "DagsterExecutionInterruptedError":
                status, reason = "canceled", "terminated from Dagster"
            else:
                status, reason = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.status = "stopping"
            report = await self._shutdown(status, reason)
        return SessionResult(self.session_id, status, reason, self.decisions, self.orders_sent, self.fills,
                             float(self.portfolio.equity), report, self.errors, self.reconnects, self.latencies_ms)

    async def _connect(self) -> None:
        """Connect at start-up; a gateway that is down (a restart) is tried again with back-off
        for ``ib.startup_wait_seconds`` before the session gives up."""
        from tt_platform.ib.client import IBClientIdInUse

        deadline = time.monotonic() + self.config.ib.startup_wait_seconds
        attempt = 0
        while not self.trading.is_connected():
            try:
                await self.trading.connect()
            except ConnectionError as exc:
                delay = RECONNECT_BACKOFF[min(attempt, len(RECONNECT_BACKOFF) - 1)]
                if (isinstance(exc, IBClientIdInUse) and attempt >= 2) or time.monotonic() + delay > deadline:
                    raise
                attempt += 1
                log.warning("session %s: IB not reachable at start (%s); trying again in %.0f s",
                            self.session_id, exc, delay)
                await asyncio.sleep(delay)
                self.stop_reason = self.stop_reason or self.hooks.stop_reason()
                if self.stop_reason:
                    raise
        if self.config.clock == "feed" and self._feed_now is None:
            # a replay's "now" is the gateway's clock until the first real-time bar arrives
            self._feed_now = await self.trading.server_time()

    def _restore(self) -> None:
        """A restarted session continues its book, step numbering and breaker state."""
        from tt_platform.store import live as live_store

        self.step = live_store.next_step(self.store, self.session_id)
        marks = live_store.read_marks(self.store, self.session_id)
        if not marks.empty:
            last = marks.sort_values("step").iloc[-1]
            # the last mark's holdings: a mark without rows is a flat book
            holdings = live_store.read_holdings(self.store, self.session_id, step=int(last["step"]))
            self.portfolio.cash = float(last["cash"])
            positions = np.zeros(len(self.symbols))
            prices = np.ones(len(self.symbols))
            for row in holdings.itertuples(index=False):
                if row.instrument in self.symbols and row.quantity:
                    i = self.symbols.index(row.instrument)
                    positions[i] = float(row.quantity)
                    if row.market_value is not None and row.quantity:
                        prices[i] = abs(float(row.market_value) / float(row.quantity))
            self.portfolio.positions = positions
            self.core.mark(self.portfolio, prices)
            self._last_prices = prices
            log.info("session %s resumed at step %d: cash %.2f, equity %.2f", self.session_id, self.step,
                     self.portfolio.cash, self.portfolio.equity)
        audit = live_store.last_audit(self.store, self.session_id)
        if audit is not None and audit.get("guard_equity"):
            drawdown = float(audit.get("guard_session_drawdown") or 0.0)
            peak = float(audit["guard_equity"]) / max(1.0 - drawdown, 1e-9)
            tripped = "session_drawdown" in str(audit.get("guard_reasons") or "")
            self.breaker.resume(audit["guard_trading_day"], peak, tripped)
            start = live_store.day_start_equity(self.store, self.session_id, audit["guard_trading_day"])
            if self.gate.limits.daily_loss_limit is not None and start:
                # the daily kill switch too: a restart on the day it tripped does not trade again
                self.gate.resume_daily(audit["guard_trading_day"], start, float(audit["guard_equity"]),
                                       bool(audit.get("guard_daily_halted")))
        self.known_refs |= live_store.known_order_refs(self.store, self.session_id)

    async def _warm_start(self) -> None:
        from tt_platform.live.warm_start import warm_start_bars
        from tt_platform.store.prices import read_bars

        def read_stored(symbols, start, end):
            return read_bars(self.store, symbols, start, end, interval=self.policy.interval,
                             adjusted=self.policy.adjusted)

        bars, from_ib = await warm_start_bars(
            symbols=self.symbols, interval=self.policy.interval, adjusted=self.policy.adjusted,
            bars=self.runner.history_bars, now=self.now(), read_stored=read_stored, fetch=self.history)
        self.runner.extend(bars)
        for symbol, group in bars.groupby("symbol"):
            self._last_bar_by_symbol[str(symbol)] = pd.Timestamp(group["ts"].max())
        log.info("warm start: %d bars (%d from IB) up to %s", len(bars), sum(from_ib.values()),
                 self.runner.last_bar_time())

    async def _reconcile(self, why: str) -> Reconciliation | None:
        """Bring the records in line with the broker; on a failed request keep trading stopped
        (``reconciled`` False) and try again next tick."""
        from tt_platform.store import live as live_store

        if self.config.mode == "paper":
            self.reconciled = True
            return None
        try:
            open_orders = await self.trading.open_orders()
            executions = await self.trading.executions()
            positions = await self.trading.positions()
        except Exception as exc:  # noqa: BLE001 - BrokerRequestFailed and connection errors alike
            self.reconciled = False
            log.warning("reconciliation (%s) failed, no orders until it succeeds: %s", why, exc)
            return None
        recorded = live_store.session_orders(self.store, self.session_id)
        fills = live_store.session_fills(self.store, self.session_id)
        ours = {s: float(q) for s, q in zip(self.symbols, self.portfolio.positions, strict=True)}
        result = reconcile(session=self.ref_session, recorded_orders=recorded.to_dict("records"),
                           recorded_fill_ids=set(fills["fill_id"]) if not fills.empty else set(),
                           open_orders=open_orders, executions=executions, broker_positions=positions,
                           our_positions=ours)
        self._book_executions(result.new_executions)
        for update in result.order_updates:
            fields = {"status": update.status, "message": update.message}
            if update.broker_order_id is not None:
                fields["broker_order_id"] = update.broker_order_id
            if update.filled_quantity is not None:
                fields["filled_quantity"] = update.filled_quantity
            live_store.update_order(self.store, update.order_id, **fields)
            if update.status not in OPEN_STATUSES:
                self.in_flight.pop(update.order_id, None)
        self.known_refs |= set(result.known_refs)
        self.reconciled = True
        self._last_reconcile = time.monotonic()
        level = logging.WARNING if result.position_breaks else logging.INFO
        log.log(level, "reconciled (%s): %s", why, result.describe())
        if result.position_breaks:
            self.hooks.alert(f"session {self.session_id}: positions differ from the broker after {why}: "
                             + ", ".join(f"{s} ours {a:g} broker {b:g}" for s, (a, b) in result.position_breaks.items()))
        return result

    # the tick ----------------------------------------------------------------------------------

    async def _tick(self) -> None:
        self._alive_at = datetime.now(UTC)
        try:
            if not self.trading.is_connected():
                # what happened while away is known only after a reconciliation
                self.reconciled = self.config.mode == "paper"
                await self._recover_connection()
                return
            if not self.reconciled:
                await self._reconcile("retry")
            elif self.config.mode == "live" and time.monotonic() - self._last_reconcile >= RECONCILE_SECONDS:
                # fills during an outage reach a client only through reqExecutions
                await self._reconcile("periodic")
            self._drain_executions()
            for bar_set in self._drain_sub_bars():
                await self._on_bar_set(bar_set)
            for bar_set in self.assembler.flush_due(self.now()).bar_sets:
                await self._on_bar_set(bar_set)
            self._check_gaps()
            await self._handle_limit_timeouts()
            self._heartbeat_if_due()
            self.consecutive_errors = 0
        except Exception as exc:  # noqa: BLE001 - one bad step must not end the session
            self.errors += 1
            self.consecutive_errors += 1
            log.exception("session %s: step failed (%d in a row): %s", self.session_id, self.consecutive_errors, exc)

    async def _recover_connection(self) -> None:
        delay = RECONNECT_BACKOFF[min(self.reconnects, len(RECONNECT_BACKOFF) - 1)]
        log.warning("session %s: connection to IB lost; reconnecting", self.session_id)
        try:
            await self.trading.reconnect()
        except Exception as exc:  # noqa: BLE001 - keep trying; the loop goes on
            log.warning("reconnect failed (%s); next attempt in %.0f s", exc, delay)
            await asyncio.sleep(min(delay, 5.0))
            return
        self.reconnects += 1
        await self._reconcile("reconnect")
        log.info("session %s: reconnected (%d so far)", self.session_id, self.reconnects)

    def _on_sub_bar(self, bar: Any) -> None:
        self._sub_bars.append(bar)
        self._last_sub_bar_wall = time.monotonic()
        self._silence_alerted = False
        self._wake.set()

    def _on_connectivity(self, code: int, message: str) -> None:
        """IB lost (1100) or regained (1101, 1102) its own connection: fills may have happened
        meanwhile that only reqExecutions shows, so no order goes out before a reconciliation."""
        log.warning("IB connectivity %d: %s", code, message)
        if code in (1100, 1101, 1102):
            self.reconciled = False

    def _drain_sub_bars(self) -> list[BarSet]:
        sets: list[BarSet] = []
        pending, self._sub_bars = self._sub_bars, []
        for bar in pending:
            if bar.symbol not in self.assembler.symbols:
                continue
            start = pd.Timestamp(bar.start)
            if self._first_sub_bar is None:
                self._first_sub_bar = start
            end = start + pd.Timedelta(seconds=5)
            if self._feed_now is None or end > self._feed_now:
                self._feed_now = end
            update = self.assembler.push(bar.symbol, start, bar.open, bar.high, bar.low, bar.close, bar.volume)
            sets.extend(update.bar_sets)
        return sets

    def _drain_executions(self) -> None:
        """Book the executions IB pushed since the last tick (those of this session's orders)."""
        pending, self._executions = self._executions, []
        self._book_executions([e for e in pending if _ref_session(e.order_ref) == self.ref_session])

    def _book_executions(self, executions: list[Any]) -> None:
        """Record and book fills once each (fill ids are exec ids): one insert for the fills, one
        read and one write for their orders, whatever their number. A fill delivered again with
        its commission books the commission as a correction."""
        from tt_platform.store import live as live_store

        ours = list(executions)
        repeats = [e for e in ours if e.exec_id in self._booked_commission]
        fresh = list({e.exec_id: e for e in ours if e.exec_id not in self._booked_commission}.values())
        for execution in repeats:  # a late commission, or nothing new
            self._book_commission(execution)
        if not fresh:
            return
        rows = [self._fill_row(e) for e in fresh]
        new_ids = live_store.insert_new_fills(self.store, rows)
        booked = [e for e in fresh if e.exec_id in new_ids]
        for execution, row in zip(fresh, rows, strict=True):
            if execution.exec_id in new_ids:
                self._booked_commission[execution.exec_id] = row["commission"]
        stored = live_store.get_orders(self.store, [e.order_ref for e in booked])
        for execution in booked:
            self._apply_fill(execution, stored.get(execution.order_ref))
        live_store.record_order_progress(self.store, [], [
            {"order_id": ref, "status": row["status"], "filled_quantity": row["filled_quantity"],
             "avg_fill_price": row["avg_fill_price"]} for ref, row in stored.items()])

    def _fill_row(self, execution: Any) -> dict[str, Any]:
        sign = 1.0 if str(execution.side).upper() in ("BUY", "BOT") else -1.0
        known = execution.commission is not None and math.isfinite(execution.commission)
        row = {"fill_id": execution.exec_id, "order_id": execution.order_ref, "ts": execution.time,
               "instrument": execution.symbol, "quantity": sign * execution.shares, "price": execution.price,
               "commission": float(execution.commission) if known else 0.0}
        shadow = self._shadow_prices_by_ref.get(execution.order_ref)
        if shadow is not None and math.isfinite(shadow):
            row["shadow_price"] = shadow
            row["divergence_bps"] = sign * (execution.price - shadow) / shadow * 1e4
        return row

    def _apply_fill(self, execution: Any, stored: dict[str, Any] | None) -> None:
        """Book a new fill into the book and into ``stored`` (its order's row, changed in place)."""
        sign = 1.0 if str(execution.side).upper() in ("BUY", "BOT") else -1.0
        commission = self._booked_commission.get(execution.exec_id, 0.0)
        if execution.symbol in self.symbols:
            book_fill(self.portfolio, execution.symbol, sign * execution.shares, execution.price, commission)
        flight = self.in_flight.get(execution.order_ref)
        if flight is not None:
            flight.filled += execution.shares
        self.fills += 1
        if stored is None:
            return
        before = float(stored["filled_quantity"] or 0.0)
        filled = min(before + execution.shares, float(stored["quantity"]))
        stored["avg_fill_price"] = ((stored["avg_fill_price"] or 0.0) * before
                                    + execution.price * execution.shares) / (before + execution.shares)
        stored["filled_quantity"] = filled
        if filled >= float(stored["quantity"]) - 1e-9:
            stored["status"] = "filled"
            self.in_flight.pop(execution.order_ref, None)
        elif stored["status"] in ("pending_submit", "submitted"):
            stored["status"] = "partially_filled"

    def _book_commission(self, execution: Any) -> None:
        """An execution booked before, delivered again: book a commission IB reported late."""
        from tt_platform.store import live as live_store

        known = execution.commission is not None and math.isfinite(execution.commission)
        booked = self._booked_commission.get(execution.exec_id)
        if not known or booked is None or booked == float(execution.commission):
            return
        live_store.record_fill(self.store, self._fill_row(execution))
        self.portfolio.cash -= float(execution.commission) - booked
        self.portfolio.total_commission += float(execution.commission) - booked
        self._booked_commission[execution.exec_id] = float(execution.commission)

    # one decision ------------------------------------------------------------------------------

    async def _on_bar_set(self, bar_set: BarSet) -> None:
        from tt_platform.store import live as live_store

        started_ns = time.perf_counter_ns()
        if self._first_sub_bar is not None and bar_set.ts < self._first_sub_bar.floor("s") and \
                bar_set.ts + pd.Timedelta(self.policy.interval if self.policy.interval != "1d" else "0s") > self._first_sub_bar:
            log.info("skipping the bar of %s: the stream started inside it", bar_set.ts)
            return
        # bar sets queued before a dropped connection are decided and audited, never sent
        connected = self.config.mode == "paper" or self.trading.is_connected()
        trading_allowed = self.reconciled and connected and not self.config.dry_run
        with _collector_paused():
            decision, output, sent = await self._decide_and_send(bar_set, started_ns, trading_allowed)
        step = self.step
        if not trading_allowed and decision.orders:
            why = ("dry run" if self.config.dry_run else "not connected to the broker" if not connected
                   else "not reconciled with the broker")
            log.info("bar %s: %d order(s) decided, none sent (%s): %s", bar_set.ts, len(decision.orders), why,
                     "; ".join(f"{o.side} {abs(o.quantity):g} {o.symbol}" for o in decision.orders))
        # bar close (the bar set's arrival) -> the last order handed to the broker
        latency_ms = ((self._submitted_ns or time.perf_counter_ns()) - started_ns) / 1e6
        if sent:
            self.latencies_ms.append(latency_ms)
            if self.config.mode == "live" and self._acknowledged_ns is not None:
                self.ack_latencies_ms.append((self._acknowledged_ns - started_ns) / 1e6)
        audit = decision.audit_record(self.run_id, self.policy.version_label, self.policy.feature_set_hash)
        row = audit.as_row() | {"latency_ms": latency_ms}
        actions = {s: float(a) for s, a in zip(self.symbols, _per_symbol(output.action, len(self.symbols)), strict=True)}
        weights = {s: float(w) for s, w in zip(self.symbols, decision.gated_weights, strict=True)}
        try:
            live_store.record_decision(self.store, session_id=self.session_id, step=step, audit=row, actions=actions,
                                       target_weights=weights)
        except live_store.LiveRecordConflict:
            # the step holds another decision: an earlier one whose commit went through while its
            # connection was cut. This one goes under the next step the store has free
            step = live_store.next_step(self.store, self.session_id)
            log.warning("session %s: step %d was taken already; this decision is step %d", self.session_id,
                        self.step, step)
            live_store.record_decision(self.store, session_id=self.session_id, step=step, audit=row, actions=actions,
                                       target_weights=weights)
        # the step is spent once its decision is recorded: a failure below must not reuse it
        self.step = step + 1
        self.decisions += 1
        equity = self.core.mark(self.portfolio, output.prices)
        self._record_mark(step, pd.Timestamp(bar_set.end), output.prices)
        info = {"step": step, "bar_time": str(bar_set.ts), "verdict": decision.verdict, "orders": len(decision.orders),
                "sent": sent, "equity": equity, "latency_ms": latency_ms, "breaches": decision.describe_breaches()}
        self.hooks.decision(info)
        if decision.guardrails.breaker_tripped_now:
            self.hooks.alert(f"session {self.session_id}: circuit breaker tripped at {bar_set.ts}: session drawdown "
                             f"{decision.guardrails.session_drawdown:.2%} >= {decision.guardrails.session_drawdown_threshold:.2%}"
                             + (" (flattening)" if decision.guardrails.flattening else " (holding, no new orders)"))
        self._write_report_on_new_day(bar_set.ts)

    async def _decide_and_send(self, bar_set: BarSet, started_ns: int, trading_allowed: bool
                               ) -> tuple[Decision, Any, int]:
        """From a completed bar set to its orders handed to the broker (or filled on paper)."""
        rows = [bar.as_dict() | {"symbol": symbol} for symbol, bar in bar_set.bars.items()]
        if bar_set.missing:
            log.warning("bar %s: no bar for %s", bar_set.ts, ", ".join(bar_set.missing))
        self.runner.extend(pd.DataFrame(rows))
        if self.config.mode == "paper":
            self._fill_resting_paper_orders(bar_set)
        for symbol in bar_set.bars:
            self._last_bar_by_symbol[symbol] = pd.Timestamp(bar_set.ts)
        self._last_bar_time = pd.Timestamp(bar_set.ts)
        decision, output = self._decide(pd.Timestamp(bar_set.ts), pd.Timestamp(bar_set.end), started_ns)
        self._last_prices = output.prices
        self._submitted_ns = self._acknowledged_ns = None
        sent = await self._send(decision, output.prices, output.tradable) if trading_allowed else 0
        return decision, output, sent

    def _book_with_working_orders(self, prices: np.ndarray) -> Portfolio:
        """The book as if every working order's unfilled rest had filled at ``prices`` (the book
        itself when nothing is working)."""
        pending = np.zeros(len(self.symbols))
        for flight in self.in_flight.values():
            rest = max(abs(flight.order.quantity) - flight.filled, 0.0)
            pending[self.symbols.index(flight.order.symbol)] += flight.order.sign * rest
        if not pending.any():
            return self.portfolio
        book = Portfolio(self.portfolio.initial_cash, self.symbols)
        for name in ("last_prices", "equity", "peak_equity", "drawdown", "max_drawdown"):
            setattr(book, name, getattr(self.portfolio, name))
        book.positions = self.portfolio.positions + pending
        book.cash = self.portfolio.cash - float(pending @ prices)
        return book

    def _decide(self, bar_time: pd.Timestamp, bar_end: pd.Timestamp, started_ns: int | None = None
                ) -> tuple[Decision, Any]:
        """The policy and the guardrails on the last bar the runner holds (stamped ``bar_time``,
        closed at ``bar_end``): the decision and the policy's output."""
        prices = self.runner.last_closes()
        if self._last_prices is not None:
            prices = np.where(np.isnan(prices), self._last_prices, prices)
        prices = np.where(np.isnan(prices), 1.0, prices)  # no bar yet: nothing is held there
        # orders still working at IB count as held: the next decision must not order them again
        book = self._book_with_working_orders(prices)
        output = self.runner.evaluate(book.weights(prices))
        orders = self.config.orders
        decision = decide(
            bar_time=bar_time.to_pydatetime(), target_weights=output.target_weights, portfolio=book,
            prices=output.prices, market_open=self.market_open(bar_end), trading_day=self.trading_day(bar_time),
            gate=self.gate, ref_session=self.ref_session, breaker=self.breaker, tradable=output.tradable,
            min_order_value=orders.min_order_value,
            order_type=OrderType.LIMIT if orders.order_type == "limit" else OrderType.MARKET,
            limit_offset_bps=orders.limit_offset_bps, started_ns=started_ns)
        return decision, output

    async def _send(self, decision: Decision, prices: np.ndarray, tradable: np.ndarray) -> int:
        from tt_platform.store import live as live_store

        orders, refs = [], []
        for order, ref in zip(decision.orders, decision.order_refs, strict=True):
            if ref in self.known_refs:
                log.warning("order %s is already known to the broker or the store; not sent again", ref)
                continue
            orders.append(order)
            refs.append(ref)
        if not orders:
            return 0
        now = datetime.now(UTC)
        # written before they are sent: a crash after this line leaves refs to reconcile, never
        # an order the records do not know
        live_store.record_new_orders(
            self.store, [_order_row(self.session_id, ref, order, decision.bar_time, now)
                         for order, ref in zip(orders, refs, strict=True)])
        self.known_refs.update(refs)
        if self.config.mode == "paper":
            bar = CoreBar.from_prices(prices, tradable=tradable)
            report = self.core.execute(self.portfolio, orders, bar, at="close")
            self._submitted_ns = time.perf_counter_ns()
            # a limit the close does not reach rests for one bar, filled if that bar trades through it
            resting = [(ref, fill.order) for ref, fill in zip(refs, report.fills, strict=True)
                       if fill.quantity == 0.0 and fill.order.order_type == OrderType.LIMIT]
            self._record_paper_fills(refs, report.fills, decision.bar_time, resting={ref for ref, _ in resting})
            self._resting_paper = resting
            self.orders_sent += len(orders)
            return len(orders)
        shadow = self._shadow_prices(orders, prices, tradable)
        return await self._place_many(orders, refs, shadow)

    def _shadow_prices(self, orders: list[Order], prices: np.ndarray, tradable: np.ndarray) -> list[float]:
        """What the paper model assumes each order fills at: a market order at the bar's close with
        the model's slippage (on a copy of the book), a limit order at its limit."""
        scratch = Portfolio(max(self.portfolio.initial_cash, 1.0), self.symbols)
        scratch.cash, scratch.positions = self.portfolio.cash, self.portfolio.positions.copy()
        as_market = [Order(o.symbol, o.quantity, tag=o.tag) for o in orders]
        report = self.core.execute(scratch, as_market, CoreBar.from_prices(prices, tradable=tradable), at="close")
        return [float(o.limit_price) if o.order_type == OrderType.LIMIT else
                (float(f.price) if f.quantity else float("nan")) for o, f in zip(orders, report.fills, strict=True)]

    async def _place_many(self, orders: list[Order], refs: list[str], shadow: list[float]) -> int:
        """Send orders already recorded (``pending_submit``) to IB all at once, then record what
        became of each in one transaction; returns how many IB acknowledged."""
        from tt_platform.ib.trading import BrokerOrder
        from tt_platform.store import live as live_store

        missing = sorted({o.symbol for o in orders} - set(self._rules))
        if missing:
            self._rules |= await self.trading.contract_rules(missing)
        broker_orders = [
            BrokerOrder(order_ref=ref, symbol=o.symbol, side=o.side, quantity=abs(o.quantity),
                        order_type="LMT" if o.order_type == OrderType.LIMIT else "MKT",
                        limit_price=o.limit_price if o.order_type == OrderType.LIMIT else None, tif="DAY")
            for o, ref in zip(orders, refs, strict=True)]
        # every order is written to the socket before the first answer is read
        submissions = self.trading.submit([(b, self._rules[b.symbol]) for b in broker_orders])
        self._submitted_ns = time.perf_counter_ns()
        states = await self.trading.acknowledged(submissions)
        self._acknowledged_ns = time.perf_counter_ns()
        updates, sent = [], 0
        for order, ref, price, state in zip(orders, refs, shadow, states, strict=True):
            if isinstance(state, BaseException):
                # recorded; reconciliation decides what became of it (it may have reached IB)
                updates.append({"order_id": ref, "message": f"submit failed: {state}"})
                log.warning("order %s: submit failed (%s); reconciliation will tell whether it reached IB", ref, state)
                continue
            if state is None:
                updates.append({"order_id": ref, "status": "not_sent", "message": "rounds to less than one lot"})
                continue
            updates.append({"order_id": ref, "status": "submitted", "broker_order_id": str(state.broker_order_id),
                            "quantity": float(state.quantity), "limit_price": state.limit_price})
            self.in_flight[ref] = _InFlight(ref, order, time.monotonic(), price)
            self._shadow_prices_by_ref[ref] = price
            sent += 1
        live_store.record_order_progress(self.store, [], updates)
        self.orders_sent += sent
        return sent

    def _fill_resting_paper_orders(self, bar_set: BarSet) -> None:
        """Paper limits from the previous decision meet this bar (open, high, low, close); what
        they do not fill is cancelled."""
        resting, self._resting_paper = self._resting_paper, []
        if not resting:
            return
        nan = np.full(len(self.symbols), np.nan)
        fields = {name: nan.copy() for name in ("open", "high", "low", "close")}
        for symbol, bar in bar_set.bars.items():
            if symbol in self.symbols:
                i = self.symbols.index(symbol)
                for name in fields:
                    fields[name][i] = getattr(bar, name)
        tradable = ~np.isnan(fields["close"])
        report = self.core.execute(self.portfolio, [order for _, order in resting], CoreBar(**fields, tradable=tradable),
                                   at="open")
        self._record_paper_fills([ref for ref, _ in resting], report.fills, pd.Timestamp(bar_set.ts).to_pydatetime())

    def _record_paper_fills(self, refs: list[str], fills: Any, bar_time: datetime, resting: set[str] = frozenset()
                            ) -> None:
        from tt_platform.store import live as live_store

        rows, updates = [], []
        for ref, fill in zip(refs, fills, strict=True):
            if fill.quantity == 0.0 and ref in resting:
                updates.append({"order_id": ref, "status": "submitted", "message": "limit resting for one bar"})
                continue
            if fill.quantity == 0.0:
                updates.append({"order_id": ref, "status": "cancelled", "message": f"unfilled: {fill.reason}"})
                continue
            rows.append({
                "fill_id": f"{ref}:paper", "order_id": ref, "ts": bar_time, "instrument": fill.symbol,
                "quantity": fill.quantity, "price": fill.price, "commission": fill.commission,
                "slippage": fill.slippage, "shadow_price": fill.price, "divergence_bps": 0.0})
            # a partial fill's rest is cancelled, as the backtester treats it
            updates.append({"order_id": ref, "status": "filled" if fill.status == "FILLED" else "cancelled",
                            "filled_quantity": abs(fill.quantity), "avg_fill_price": fill.price,
                            "message": fill.reason or "filled by the paper model at the bar's close"})
        live_store.record_order_progress(self.store, rows, updates)
        self.fills += len(rows)

    async def _handle_limit_timeouts(self) -> None:
        if self.config.mode != "live" or not self.in_flight:
            return
        from tt_platform.store import live as live_store

        timeout = self.config.orders.limit_timeout_seconds
        for ref, flight in list(self.in_flight.items()):
            if flight.order.order_type != OrderType.LIMIT or time.monotonic() - flight.sent_at < timeout:
                continue
            stored = live_store.get_order(self.store, ref)
            if stored is None or stored["status"] not in ("submitted", "partially_filled"):
                self.in_flight.pop(ref, None)
                continue
            try:
                await self.trading.cancel(ref)
            except Exception as exc:  # noqa: BLE001 - tried again after another timeout; reconciliation settles it
                flight.sent_at = time.monotonic()
                log.warning("cancel of %s failed: %s", ref, exc)
                continue
            live_store.update_order(self.store, ref, status="cancel_pending",
                                    message=f"limit unfilled after {timeout:g} s; cancelled")
            if self.config.orders.on_limit_timeout == "market":
                await self._convert_to_market(ref, flight)
            self.in_flight.pop(ref, None)

    async def _convert_to_market(self, ref: str, flight: _InFlight) -> None:
        """Send the rest of a cancelled limit at market, counted from the broker's executions (a
        fill racing the cancel must not be bought twice); skipped when they cannot be read."""
        from tt_platform.live.order_refs import OrderRef
        from tt_platform.store import live as live_store

        try:
            executions = await self.trading.executions()
        except Exception as exc:  # noqa: BLE001 - without the fills the rest is unknown: do not send
            log.warning("order %s: not converted to market, executions unavailable (%s)", ref, exc)
            return
        self._book_executions([e for e in executions if e.order_ref == ref])
        filled = sum(e.shares for e in executions if e.order_ref == ref)
        rest = abs(flight.order.quantity) - filled
        if rest <= 1e-9:
            return
        parsed = parse_order_ref(ref)
        next_ref = OrderRef(parsed.session, parsed.bar_time, parsed.symbol, parsed.side, parsed.sequence + 1).text
        if next_ref in self.known_refs:
            return
        market = Order(flight.order.symbol, flight.order.sign * rest, tag="limit timeout")
        live_store.record_new_orders(self.store, [_order_row(self.session_id, next_ref, market, parsed.bar_time,
                                                             datetime.now(UTC))])
        self.known_refs.add(next_ref)
        await self._place_many([market], [next_ref], [flight.shadow_price])

    def _check_gaps(self) -> None:
        self._check_feed_silence()
        if not self._last_bar_by_symbol or set(self._last_bar_by_symbol) != set(self.symbols):
            return
        for stale in self.gaps.check(self._last_bar_by_symbol, self.now()):
            message = f"session {self.session_id}: data gap: {stale.describe() if hasattr(stale, 'describe') else stale}"
            log.warning(message)
            self.hooks.alert(message)

    def _check_feed_silence(self) -> None:
        """On the feed clock a stopped feed also stops the clock the gap watch reads: alert when no
        real-time bar arrived for more than two intervals of wall time while the market, at the
        feed's time moved on by that silence, is open. Once per silence."""
        if self.config.clock != "feed" or self._last_sub_bar_wall is None or self._silence_alerted:
            return
        silent = time.monotonic() - self._last_sub_bar_wall
        if silent <= self._silence_limit_seconds or not self.market_open(self.now() + pd.Timedelta(seconds=silent)):
            return
        self._silence_alerted = True
        message = (f"session {self.session_id}: data gap: no real-time bars for {silent:.0f} s, more than twice "
                   f"the {self.policy.interval} interval, while the market is open")
        log.warning(message)
        self.hooks.alert(message)

    def _record_mark(self, step: int, ts: pd.Timestamp, prices: np.ndarray) -> None:
        from tt_platform.store import live as live_store

        equity = float(self.portfolio.equity)
        holdings = {s: (float(q), float(q * p)) for s, q, p in zip(self.symbols, self.portfolio.positions, prices, strict=True)
                    if q != 0.0}
        live_store.record_mark(self.store, session_id=self.session_id, step=step, ts=ts.to_pydatetime(),
                               cash=float(self.portfolio.cash), equity=equity,
                               leverage=float(self.portfolio.gross_exposure()), holdings=holdings)

    # heartbeat, report, shutdown -----------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        open_orders = len(self.in_flight)
        return {
            "session_id": self.session_id, "mode": self.config.mode, "status": self.status,
            "connected": bool(self.trading.is_connected()), "equity": float(self.portfolio.equity),
            "cash": float(self.portfolio.cash),
            "positions": {s: float(q) for s, q in zip(self.symbols, self.portfolio.positions, strict=True) if q},
            "open_orders": open_orders, "decisions": self.decisions, "orders_sent": self.orders_sent,
            "fills": self.fills, "errors": self.errors, "consecutive_errors": self.consecutive_errors,
            "reconnects": self.reconnects, "breaker_tripped": self.breaker.tripped,
            "last_bar_time": None if self._last_bar_time is None else str(self._last_bar_time),
            "market_open": self.market_open(self.now() + pd.Timedelta(seconds=1)),
        }

    def health_snapshot(self) -> Any:
        from tt_platform.live.health import HealthSnapshot

        status = self.status if self.status in ("starting", "running", "stopping", "stopped") else "running"
        return HealthSnapshot(
            session_id=self.session_id, mode=self.config.mode, status=status,
            connected=bool(self.trading.is_connected()), market_open=self.market_open(self.now() + pd.Timedelta(seconds=1)),
            last_bar_time=None if self._last_bar_time is None else self._last_bar_time.to_pydatetime(),
            heartbeat_at=self._alive_at, equity=float(self.portfolio.equity),
            positions=int(np.count_nonzero(self.portfolio.positions)), open_orders=len(self.in_flight),
            breaker_tripped=self.breaker.tripped, consecutive_errors=self.consecutive_errors, now=datetime.now(UTC))

    def _start_health_server(self) -> None:
        if self.config.health_port is None:
            return
        from tt_platform.live.health import HealthServer

        self._health = HealthServer(self.health_snapshot, port=self.config.health_port,
                                    stale_after_seconds=self.config.stale_after_seconds)
        port = self._health.start()
        log.info("health endpoint: http://127.0.0.1:%d/health", port)

    def _heartbeat_if_due(self, force: bool = False) -> None:
        from tt_platform.store import live as live_store

        if not force and time.monotonic() - self._last_heartbeat < self.config.heartbeat_seconds:
            return
        self._last_heartbeat = time.monotonic()
        live_store.heartbeat(self.store, self.session_id, last_bar_time=None if self._last_bar_time is None
                             else self._last_bar_time.to_pydatetime(), equity=float(self.portfolio.equity))
        self.hooks.heartbeat(self.snapshot())

    def _write_report_on_new_day(self, bar_time: pd.Timestamp) -> None:
        day = self.trading_day(bar_time)
        if self._report_day is not None and day != self._report_day:
            self.write_report(self._report_day)
        self._report_day = day

    def write_report(self, day: str | None = None) -> Path | None:
        if self.report_dir is None:
            return None
        from tt_platform.live.report import SessionReportData, write_session_report
        from tt_platform.store import live as live_store

        day = day or self._report_day or self.trading_day(self.now())
        data = SessionReportData(
            session_id=self.session_id, mode=self.config.mode, policy_version=self.policy.version_label,
            account_label=self.trading.account_label, day=pd.Timestamp(day).date(), status=self.status,
            orders=live_store.session_orders(self.store, self.session_id),
            fills=live_store.session_fills(self.store, self.session_id),
            marks=live_store.read_marks(self.store, self.session_id),
            holdings=live_store.read_holdings(self.store, self.session_id),
            audit=live_store.read_audit(self.store, self.session_id),
            generated_at=datetime.now(UTC))
        return write_session_report(data, self.report_dir)

    async def _shutdown(self, status: str, reason: str) -> Path | None:
        """Cancel, flatten, persist, disconnect: each step runs even when one before failed, and
        an interrupt arriving meanwhile (a second Ctrl-C) is raised only once all of them ran, so
        the session never stays "running" in the store."""
        from tt_platform.store import live as live_store

        report = None
        interrupted: BaseException | None = None
        try:
            if self.trading.is_connected() and self.config.mode == "live" and not self.config.dry_run:
                if self.config.cancel_on_stop:
                    cancelled = await self.trading.cancel_all()
                    log.info("stop: cancelled %d open order(s)", cancelled)
                    await asyncio.sleep(0.5)
                    self._drain_executions()
                    await self._reconcile("stop")
            if self.config.flatten_on_stop and not self.config.dry_run and self._last_prices is not None \
                    and self.portfolio.positions.any():
                await self._flatten()
        except Exception as exc:  # noqa: BLE001 - persisting and disconnecting must still happen
            log.warning("stop: cancelling or flattening failed: %s", exc)
        except BaseException as exc:  # noqa: BLE001 - raised again below, after the cleanup
            interrupted = exc
            log.warning("stop: interrupted while cancelling or flattening (%s); persisting first", type(exc).__name__)
        try:
            report = self._persist_stop(live_store, status, reason)
        except Exception as exc:  # noqa: BLE001
            log.warning("stop: persisting the session failed: %s", exc)
        except BaseException as exc:  # noqa: BLE001 - raised again below, after the cleanup
            interrupted = interrupted or exc
        try:
            self.trading.disconnect()
        except Exception:  # noqa: BLE001
            log.debug("disconnect failed", exc_info=True)
        if self._health is not None:
            self._health.stop()
        gc.unfreeze()
        log.info("session %s %s: %s", self.session_id, status, reason)
        if interrupted is not None:
            raise interrupted
        return report

    def _persist_stop(self, live_store: Any, status: str, reason: str) -> Path | None:
        if self._account_key is None:
            return None
        self._heartbeat_if_due(force=True)
        self.status = "stopped"
        try:
            return self.write_report()
        finally:
            live_store.close_session(self.store, self.session_id, status, reason)

    async def _flatten(self) -> None:
        prices = self._last_prices
        orders = [Order(s, -q, tag="flatten on stop") for s, q in zip(self.symbols, self.portfolio.positions, strict=True) if q]
        bar_time = datetime.now(UTC).replace(microsecond=0)
        from tt_platform.live.order_refs import order_ref
        from tt_platform.store import live as live_store

        refs = [order_ref(self.ref_session, bar_time, o.symbol, o.side) for o in orders]
        for order, ref in zip(orders, refs, strict=True):
            live_store.record_order(self.store, _order_row(self.session_id, ref, order, bar_time, bar_time))
        if self.config.mode == "paper":
            report = self.core.execute(self.portfolio, orders, CoreBar.from_prices(prices), at="close")
            self._record_paper_fills(refs, report.fills, bar_time)
        else:
            await self._place_many(orders, refs, [float("nan")] * len(orders))
        self.core.mark(self.portfolio, prices)
        log.info("stop: flattened %d position(s)", len(orders))


def _ref_session(ref: str) -> str | None:
    try:
        return parse_order_ref(ref).session
    except ValueError:
        return None


def _per_symbol(action: np.ndarray, n: int) -> np.ndarray:
    flat = np.asarray(action, dtype=np.float64).reshape(-1)
    return flat[:n] if flat.size >= n else np.pad(flat, (0, n - flat.size))


def _order_row(session_id: str, ref: str, order: Order, bar_time: datetime, now: datetime) -> dict[str, Any]:
    return {
        "order_id": ref, "order_ref": ref, "episode_id": session_id, "ts": bar_time, "instrument": order.symbol,
        "side": "buy" if order.quantity > 0 else "sell", "quantity": abs(float(order.quantity)),
        "order_type": str(order.order_type), "limit_price": order.limit_price, "status": "pending_submit",
        "broker_order_id": None, "tif": "DAY", "submitted_at": now, "filled_quantity": 0.0,
        "avg_fill_price": None, "message": order.tag or None,
    }


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No garbage collection between a bar's close and its orders: a collection that lands there
    is a latency spike of tens of milliseconds. The collector runs again right after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def preview_decision(session: LiveSession) -> tuple[Decision, Any]:
    """What the session would decide on the last completed bar, sending and storing nothing:
    connect, warm start, evaluate the policy, run the guardrails (``tt live --dry-run``)."""
    try:
        await session._connect()
        await session._warm_start()
        last = session.runner.last_bar_time()
        if last is None:
            raise ValueError("no bars to decide on: the store and IB returned no history for the policy's symbols")
        step = pd.Timedelta(session.policy.interval) if session.policy.interval != "1d" else pd.Timedelta(0)
        return session._decide(pd.Timestamp(last), pd.Timestamp(last) + step)
    finally:
        session.trading.disconnect()
