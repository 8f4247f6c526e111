"""Backtester on the shared execution core: any strategy, rule-based or learned, over a bar panel.

Each bar t, in this order:

1. fills of the orders decided at t-1 when they fill at the open (``fill_at="open"``);
2. mark the portfolio at the close of t (the last known close for a symbol without a bar);
3. the strategy sees bars up to and including t (``StrategyState.history``; arrays are
   read-only) and returns target weights, or None to leave the book alone;
4. the risk gate clamps the weights (``RiskGate.apply``); ``orders_from_targets`` sizes orders
   at the closes of t (the last prices known when deciding, as a live loop would); the gate
   screens them (market hours, daily kill switch);
5. with ``fill_at="close"`` they fill at t's close (and t is marked again); with
   ``fill_at="open"`` at t+1's open, in step 1 of the next bar.

Nothing after t reaches a decision at t, so perturbing later bars changes no decision and no
fill up to t (tested). Fills go through ``ExecutionCore.execute`` -- the same core the
training env books with -- so baselines and policies are measured by one engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tt_platform.core.accounting import Portfolio
from tt_platform.core.costs import CommissionSchedule, CostModel, SlippageModel
from tt_platform.core.execution import Bar, ExecutionCore, ExecutionReport, FillAt
from tt_platform.core.orders import Order, OrderType, orders_from_targets
from tt_platform.core.risk import RiskBreach, RiskGate, RiskLimits
from tt_platform.data.bars import normalize_bars
from tt_platform.evaluation.metrics import performance_summary

_ROW_FIELDS = ("open", "high", "low", "close", "volume", "bid", "ask", "tradable", "last_price")


# ---------------------------------------------------------------------------- data
@dataclass(eq=False)
class BarPanel:
    """Bars on one time grid: arrays [T, N] (timestamps x symbols), NaN where a symbol has no
    bar.

    ``tradable`` (default: the close is a price) says where a symbol really has a bar;
    ``last_price`` is the close forward-filled from the past only (NaN before a symbol's first
    bar). ``volume`` is needed for volume-capped fills, ``bid``/``ask`` for quote-based spread
    slippage. Arrays are made read-only, so a strategy cannot edit the data it is judged on.
    """

    timestamps: pd.DatetimeIndex
    symbols: list[str]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray | None = None
    bid: np.ndarray | None = None
    ask: np.ndarray | None = None
    tradable: np.ndarray | None = None
    periods_per_year: float | None = None
    last_price: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        index = pd.DatetimeIndex(self.timestamps)
        if index.tz is None:
            raise ValueError("BarPanel.timestamps must be tz-aware (UTC)")
        self.timestamps = index.tz_convert("UTC")
        if not self.timestamps.is_monotonic_increasing or self.timestamps.has_duplicates:
            raise ValueError("BarPanel.timestamps must be strictly increasing")
        self.symbols = [str(s) for s in self.symbols]
        shape = (len(self.timestamps), len(self.symbols))
        if not self.symbols or len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"BarPanel.symbols must be non-empty and unique, got {self.symbols}")
        for name in ("open", "high", "low", "close", "volume", "bid", "ask"):
            value = getattr(self, name)
            if value is not None:
                value = np.array(value, dtype=np.float64)
                if value.shape != shape:
                    raise ValueError(f"BarPanel.{name} has shape {value.shape}, expected {shape}")
                setattr(self, name, value)
        priced = np.isfinite(self.close) & (self.close > 0)
        tradable = priced if self.tradable is None else np.array(self.tradable, dtype=bool)
        if tradable.shape != shape:
            raise ValueError(f"BarPanel.tradable has shape {tradable.shape}, expected {shape}")
        if (tradable & ~priced).any():
            row, col = np.argwhere(tradable & ~priced)[0]
            raise ValueError(f"BarPanel: {self.symbols[col]} is tradable at "
                             f"{self.timestamps[row]} but has no close price > 0")
        self.tradable = tradable
        # Past-only forward fill: a symbol without a bar keeps its last close.
        self.last_price = pd.DataFrame(np.where(tradable, self.close, np.nan)).ffill().to_numpy()
        for name in _ROW_FIELDS:
            value = getattr(self, name)
            if value is not None:
                value.flags.writeable = False
        if self.periods_per_year is None:
            # Imported here: the env package pulls in gymnasium and tensortrade.
            from tt_platform.env.market import infer_periods_per_year

            self.periods_per_year = infer_periods_per_year(self.timestamps)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_bars(cls, bars: pd.DataFrame, symbols: list[str] | None = None,
                  periods_per_year: float | None = None) -> BarPanel:
        """From canonical long bars (``tt_platform.data.bars``: symbol, ts, OHLCV); the grid is
        every timestamp any symbol has a bar at."""
        bars = normalize_bars(bars, origin="BarPanel.from_bars")
        symbols = sorted(bars["symbol"].unique()) if symbols is None else list(symbols)
        absent = sorted(set(symbols) - set(bars["symbol"]))
        if absent:
            raise ValueError(f"BarPanel.from_bars: no bars for symbols {absent}")
        bars = bars[bars["symbol"].isin(symbols)]
        wide = {column: bars.pivot(index="ts", columns="symbol", values=column)
                .reindex(columns=symbols)
                for column in ("open", "high", "low", "close", "volume")}
        return cls(timestamps=wide["close"].index, symbols=symbols,
                   **{column: frame.to_numpy(dtype=np.float64) for column, frame in wide.items()},
                   periods_per_year=periods_per_year)

    @classmethod
    def from_close(cls, timestamps: Any, symbols: list[str], close: np.ndarray,
                   open: np.ndarray | None = None, **kwargs: Any) -> BarPanel:
        """From closes (and opens): high/low are the larger/smaller of open and close, so limit
        orders see a narrower range than the real bar had."""
        close = np.asarray(close, dtype=np.float64)
        open_ = close if open is None else np.asarray(open, dtype=np.float64)
        return cls(timestamps=timestamps, symbols=symbols, open=open_,
                   high=np.fmax(open_, close), low=np.fmin(open_, close), close=close, **kwargs)

    @classmethod
    def from_market(cls, market: Any) -> BarPanel:
        """From the env's ``MarketData`` (closes, opens when present, and its tradable mask)."""
        close = np.where(market.tradable, market.close, np.nan)
        open_ = None if market.open is None else np.where(market.tradable, market.open, np.nan)
        return cls.from_close(market.timestamps, list(market.symbols), close, open_,
                              tradable=market.tradable, periods_per_year=market.periods_per_year)

    # ------------------------------------------------------------------ views
    @property
    def n_steps(self) -> int:
        return len(self.timestamps)

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    def bar(self, t: int) -> Bar:
        """Row t as the execution core's ``Bar``."""
        def row(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[t]
        return Bar(self.open[t], self.high[t], self.low[t], self.close[t], row(self.volume),
                   row(self.bid), row(self.ask), self.tradable[t])  # type: ignore[index]

    def history(self, t: int) -> BarPanel:
        """Rows 0..t (read-only views, no copy): everything a decision at t may see."""
        view = object.__new__(BarPanel)  # rows of a validated panel need no second validation
        rows = slice(0, t + 1)
        view.timestamps = self.timestamps[rows]
        view.symbols = self.symbols
        view.periods_per_year = self.periods_per_year
        for name in _ROW_FIELDS:
            value = getattr(self, name)
            setattr(view, name, None if value is None else value[rows])
        return view


# ---------------------------------------------------------------------------- strategies
@dataclass(frozen=True)
class StrategyState:
    """What a strategy may know when deciding at bar t (its close): bars up to t and the book
    marked at t's close, before this decision's trades."""

    t: int                  # row in the panel
    step: int               # decisions made before this one in this run
    timestamp: pd.Timestamp
    history: BarPanel       # rows 0..t
    weights: np.ndarray     # current weights (fractions of equity)
    positions: np.ndarray   # current shares
    cash: float
    equity: float
    drawdown: float

    @property
    def symbols(self) -> list[str]:
        return self.history.symbols

    @property
    def periods_per_year(self) -> float:
        return float(self.history.periods_per_year)  # type: ignore[arg-type]


# A strategy: (bar index t, what is known at t) -> target weights, or None for no orders.
Strategy = Callable[[int, StrategyState], "np.ndarray | None"]


def strategy_name(strategy: Strategy) -> str:
    return str(getattr(strategy, "name", None) or getattr(strategy, "__name__", None)
               or type(strategy).__name__)


# ---------------------------------------------------------------------------- result
@dataclass
class BacktestResult:
    """Everything a run did, indexed by the panel's timestamps from the first decision.

    equity, cash, weights: after all fills up to and including the bar, marked at its close.
    turnover, commission, slippage: of the fills at that bar (currency for the costs).
    orders: every order sent (decided_at, symbol, quantity, order_type, limit_price, tag).
    fills: one row per order sent (decided_at, filled_at, symbol, requested, filled,
        reference_price, price, commission, slippage, status, reason).
    interventions: every risk-gate rule that changed a decision (decided_at, rule, detail).
    """

    strategy: str
    equity: pd.Series
    cash: pd.Series
    weights: pd.DataFrame
    turnover: pd.Series
    commission: pd.Series
    slippage: pd.Series
    orders: pd.DataFrame
    fills: pd.DataFrame
    interventions: pd.DataFrame
    periods_per_year: float

    @property
    def gross_exposure(self) -> pd.Series:
        return self.weights.abs().sum(axis=1).rename("gross_exposure")

    @property
    def net_exposure(self) -> pd.Series:
        return self.weights.sum(axis=1).rename("net_exposure")

    def returns(self) -> pd.Series:
        return self.equity.pct_change().iloc[1:].rename("returns")

    def summary(self) -> dict[str, float | None]:
        """Performance metrics of the equity curve plus cost and trading totals."""
        status = self.fills["status"] if len(self.fills) else pd.Series(dtype=object)
        return performance_summary(self.equity, self.periods_per_year) | {
            "turnover": float(self.turnover.sum()),
            "total_commission": float(self.commission.sum()),
            "total_slippage": float(self.slippage.sum()),
            "orders": float(len(self.orders)),
            "partial_fills": float((status == "PARTIAL").sum()),
            "unfilled_orders": float((status == "UNFILLED").sum()),
            "risk_interventions": float(len(self.interventions)),
        }


# ---------------------------------------------------------------------------- backtester
class Backtester:
    """Runs strategies on the shared execution core and risk gate.

    cost_model: bps commission and slippage (the env's costs); ``commission`` and ``slippage``
        replace either with any schedule or model from ``tt_platform.core.costs``.
    risk_limits: the pre-trade gate (default ``RiskLimits()``: long-only, gross <= 1); None
        books the weights unclamped (baselines that must hold exactly what they are given);
        orders are screened for market hours either way.
    fill_at: "close" (the decision bar's close) or "open" (the next bar's open).
    max_volume_share: fills capped at this share of the bar's volume (None: no cap).
    order_type, limit_offset_bps: MARKET orders, or LIMIT orders priced this far from the
        decision close on the passive side.
    session_timezone: where a trading day starts, for the daily kill switch and the monthly
        volume of tiered commissions.
    """

    def __init__(self, *, cost_model: CostModel | None = None,
                 commission: CommissionSchedule | None = None,
                 slippage: SlippageModel | None = None,
                 risk_limits: RiskLimits | None = RiskLimits(),
                 fill_at: FillAt = "close", max_volume_share: float | None = None,
                 initial_cash: float = 100_000.0, min_order_value: float = 0.0,
                 order_type: OrderType | str = OrderType.MARKET, limit_offset_bps: float = 0.0,
                 session_timezone: str = "UTC") -> None:
        self.core = ExecutionCore(cost_model or CostModel(), fill_at, min_order_value,
                                  commission=commission, slippage=slippage,
                                  max_volume_share=max_volume_share)
        self.risk_limits = risk_limits
        self.initial_cash = float(initial_cash)
        self.order_type = OrderType(order_type)
        self.limit_offset_bps = float(limit_offset_bps)
        self.session_timezone = session_timezone

    @classmethod
    def from_env_config(cls, config: Any, **overrides: Any) -> Backtester:
        """The backtester that charges and gates what the training env (``EnvConfig``) does."""
        settings = dict(
            cost_model=CostModel(config.commission_bps, config.slippage_bps, config.min_commission),
            risk_limits=RiskLimits(leverage_cap=config.leverage_cap,
                                   per_symbol_cap=config.per_symbol_cap,
                                   long_only=config.long_only),
            fill_at=config.fill_at, initial_cash=config.initial_cash,
            min_order_value=config.min_order_value)
        return cls(**(settings | overrides))

    @property
    def fill_at(self) -> FillAt:
        return self.core.fill_at  # type: ignore[return-value]

    def run(self, strategy: Strategy, panel: BarPanel, *, start: int = 0, end: int | None = None,
            market_open: np.ndarray | None = None) -> BacktestResult:
        """Decide at bars ``start``..``end`` (default: the last bar; with fills at the open the
        last decision is at ``end - 1``) and return what happened.

        ``market_open``: [T] bool, False where orders may not be sent (checked at the bar the
        orders would fill at); default: always open.
        """
        end = panel.n_steps - 1 if end is None else end
        if not 0 <= start < end < panel.n_steps:
            raise ValueError(f"Backtester.run: need 0 <= start ({start}) < end ({end}) < "
                             f"{panel.n_steps} bars")
        if market_open is not None and len(market_open) != panel.n_steps:
            raise ValueError(f"Backtester.run: market_open has {len(market_open)} entries, "
                             f"the panel {panel.n_steps} bars")
        return _Run(self, strategy, panel, start, end, market_open).run()


class _Run:
    """One pass of a strategy over a panel: the loop and its records."""

    def __init__(self, backtester: Backtester, strategy: Strategy, panel: BarPanel, start: int,
                 end: int, market_open: np.ndarray | None) -> None:
        self.core = backtester.core
        self.backtester = backtester
        self.strategy = strategy
        self.name = strategy_name(strategy)
        self.panel = panel
        self.start, self.end = start, end
        self.market_open = market_open
        self.portfolio = Portfolio(backtester.initial_cash, panel.symbols)
        # Without limits the weights pass unclamped, but orders are still screened (market hours).
        self.clamp_weights = backtester.risk_limits is not None
        self.gate = RiskGate(backtester.risk_limits or RiskLimits())
        # Valuation prices: the last close, 1.0 before a symbol's first bar (nothing can be
        # held then, so the placeholder never reaches equity).
        self.marks = np.where(np.isfinite(panel.last_price), panel.last_price, 1.0)
        local = panel.timestamps.tz_convert(backtester.session_timezone)
        self.sessions = (local.year * 10_000 + local.month * 100 + local.day).to_numpy()
        self.months = (local.year * 12 + local.month).to_numpy()
        self.month = None
        self.month_shares = 0.0
        n_rows = end - start + 1
        self.equity = np.zeros(n_rows)
        self.cash = np.zeros(n_rows)
        self.weights = np.zeros((n_rows, panel.n_symbols))
        self.turnover = np.zeros(n_rows)
        self.commission = np.zeros(n_rows)
        self.slippage = np.zeros(n_rows)
        self.order_rows: list[dict[str, Any]] = []
        self.fill_rows: list[dict[str, Any]] = []
        self.intervention_rows: list[dict[str, Any]] = []

    def run(self) -> BacktestResult:
        portfolio, core = self.portfolio, self.core
        pending: list[Order] = []
        step = 0
        for t in range(self.start, self.end + 1):
            if pending:
                self._execute(pending, t - 1, t, "open")
                pending = []
            equity = core.mark(portfolio, self.marks[t])
            if t < self.end or core.fill_at == "close":
                orders = self._decide(t, step, equity)
                step += 1
                if orders and core.fill_at == "close":
                    self._execute(orders, t, t, "close")
                    equity = core.mark(portfolio, self.marks[t])
                elif orders:
                    pending = orders
            k = t - self.start
            self.equity[k] = equity
            self.cash[k] = portfolio.cash
            if equity > 0.0:
                self.weights[k] = portfolio.positions * self.marks[t] / equity
        return self._result()

    def _decide(self, t: int, step: int, equity: float) -> list[Order]:
        portfolio, panel = self.portfolio, self.panel
        weights = portfolio.positions * self.marks[t] / equity if equity > 0.0 else \
            np.zeros(panel.n_symbols)
        state = StrategyState(t, step, panel.timestamps[t], panel.history(t), weights,
                              portfolio.positions.copy(), portfolio.cash, equity,
                              portfolio.drawdown)
        targets = self.strategy(t, state)
        orders: list[Order] = []
        if targets is not None:
            targets = np.asarray(targets, dtype=np.float64)
            if self.clamp_weights:
                targets, breaches = self.gate.apply(targets, drawdown=portfolio.drawdown,
                                                    equity=equity)
                self._record_breaches(t, breaches)
            orders = orders_from_targets(
                portfolio, targets, self.marks[t], tradable=panel.tradable[t],  # type: ignore[index]
                min_order_value=self.core.min_order_value,
                order_type=self.backtester.order_type,
                limit_offset_bps=self.backtester.limit_offset_bps, tag=self.name)
        fill_row = t if self.core.fill_at == "close" else t + 1
        is_open = True if self.market_open is None else bool(self.market_open[fill_row])
        orders, breaches = self.gate.screen_orders(orders, is_open=is_open,
                                                   session=self.sessions[t], equity=equity)
        self._record_breaches(t, breaches)
        for order in orders:
            self.order_rows.append({"decided_at": t, "symbol": order.symbol,
                                    "quantity": order.quantity,
                                    "order_type": str(order.order_type),
                                    "limit_price": order.limit_price, "tag": order.tag})
        return orders

    def _execute(self, orders: list[Order], decided: int, t: int, at: FillAt) -> None:
        if self.months[t] != self.month:
            self.month, self.month_shares = self.months[t], 0.0
        report: ExecutionReport = self.core.execute(
            self.portfolio, orders, self.panel.bar(t), at=at,
            month_to_date_shares=self.month_shares)
        self.month_shares += report.shares_traded
        k = t - self.start
        self.turnover[k] += report.turnover
        self.commission[k] += report.commission
        self.slippage[k] += report.slippage
        for fill in report.fills:
            self.fill_rows.append({
                "decided_at": decided, "filled_at": t, "symbol": fill.symbol,
                "requested": fill.order.quantity, "filled": fill.quantity,
                "reference_price": fill.reference_price, "price": fill.price,
                "commission": fill.commission, "slippage": fill.slippage,
                "status": str(fill.status), "reason": fill.reason})

    def _record_breaches(self, t: int, breaches: tuple[RiskBreach, ...]) -> None:
        for breach in breaches:
            self.intervention_rows.append({"decided_at": t,
                                           "rule": breach.rule,
                                           "detail": breach.describe(self.panel.symbols)})

    def _result(self) -> BacktestResult:
        index = self.panel.timestamps[self.start:self.end + 1]

        def frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
            table = pd.DataFrame(rows, columns=columns)
            # Rows hold bar positions while running (cheap); timestamps are looked up once here.
            for column in ("decided_at", "filled_at"):
                if column in table:
                    table[column] = self.panel.timestamps[table[column].to_numpy(dtype=np.int64)]
            return table

        return BacktestResult(
            strategy=self.name,
            equity=pd.Series(self.equity, index=index, name="equity"),
            cash=pd.Series(self.cash, index=index, name="cash"),
            weights=pd.DataFrame(self.weights, index=index, columns=self.panel.symbols),
            turnover=pd.Series(self.turnover, index=index, name="turnover"),
            commission=pd.Series(self.commission, index=index, name="commission"),
            slippage=pd.Series(self.slippage, index=index, name="slippage"),
            orders=frame(self.order_rows, ["decided_at", "symbol", "quantity", "order_type",
                                           "limit_price", "tag"]),
            fills=frame(self.fill_rows, ["decided_at", "filled_at", "symbol", "requested",
                                         "filled", "reference_price", "price", "commission",
                                         "slippage", "status", "reason"]),
            interventions=frame(self.intervention_rows, ["decided_at", "rule", "detail"]),
            periods_per_year=float(self.panel.periods_per_year),  # type: ignore[arg-type]
        )
