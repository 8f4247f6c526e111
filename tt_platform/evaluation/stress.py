"""Stress tests: synthetic shocks on a portfolio state, the loss they cause and what the risk gate
does along the way.

A scenario is a path of price relatives (price at bar t over price at bar t-1, one row per bar,
one column per symbol). ``simulate`` marks the portfolio along that path with the shared
``ExecutionCore`` and asks the real ``RiskGate`` at every bar, exactly as the backtester does:
``apply`` on the targets (drawdown kill switch, long-only, per-symbol and leverage caps), then
``screen_orders`` (the daily loss kill switch; one bar is one session, so an overnight gap
counts). Orders the gate lets through are filled at the bar's price.

What the portfolio wants during the stress is ``policy``:

* ``"hold"`` (default): keep the positions; only the gate trades (it sells down what breaches
  a cap, or everything when the drawdown kill switch trips).
* ``"rebalance"``: return to the starting weights every bar (a constant-mix policy), through
  the gate.

Standard scenarios (``STANDARD_SCENARIOS``):

* ``gap_down_10``: every symbol opens 10 % lower (one bar).
* ``vol_x3_month``: 21 bars of returns with 3x the recent covariance (correlations kept); of
  200 seeded paths, the one at the 5th percentile of the starting portfolio's P&L.
* ``one_symbol_minus_50``: the largest position (by |value|) halves (one bar).
* ``correlation_spike``: 21 bars where every symbol follows one market factor (pairwise
  correlation 0.9) at its recent volatility, the factor drifting down; the 5th-percentile path.

Recent volatility comes from the state's ``recent_returns`` (simple returns, oldest first);
without them, or for a symbol with fewer than two returns, ``default_vol`` per bar (1 %, about
16 % a year for daily bars). Pure: numpy and pandas, no I/O; the same seed gives the same table.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from tt_platform.core.accounting import Portfolio
from tt_platform.core.costs import CostModel
from tt_platform.core.execution import Bar, ExecutionCore
from tt_platform.core.orders import orders_from_targets
from tt_platform.core.risk import RiskBreach, RiskGate, RiskLimits

StressPolicy = Literal["hold", "rebalance"]
DEFAULT_VOL = 0.01  # per bar, when no return history says otherwise
DEFAULT_LOOKBACK = 63  # bars of recent returns behind a volatility estimate


# ---------------------------------------------------------------------------- portfolio state
@dataclass(frozen=True, eq=False)
class PortfolioState:
    """A portfolio to shock: shares and cash, priced at ``prices`` (one per symbol, > 0).

    recent_returns: [T, N] simple returns per bar, oldest first, NaN where a symbol had no bar;
        None: ``default_vol`` for every symbol.
    peak_equity: the running peak the drawdown kill switch measures from (default: the equity
        now, i.e. no drawdown yet).
    """

    symbols: tuple[str, ...]
    shares: np.ndarray
    cash: float
    prices: np.ndarray
    recent_returns: np.ndarray | None = None
    peak_equity: float | None = None

    def __post_init__(self) -> None:
        symbols = tuple(str(s) for s in self.symbols)
        if not symbols or len(set(symbols)) != len(symbols):
            raise ValueError(f"PortfolioState.symbols must be non-empty and unique, got {list(symbols)}")
        n = len(symbols)
        shares = _vector("shares", self.shares, n)
        prices = _vector("prices", self.prices, n)
        if not np.isfinite(shares).all():
            raise ValueError("PortfolioState.shares must be finite")
        if not (np.isfinite(prices).all() and (prices > 0).all()):
            bad = symbols[int(np.flatnonzero(~(np.isfinite(prices) & (prices > 0)))[0])]
            raise ValueError(f"PortfolioState.prices must be finite and > 0 (price of {bad!r} is not)")
        if not math.isfinite(self.cash):
            raise ValueError(f"PortfolioState.cash must be finite, got {self.cash!r}")
        returns = self.recent_returns
        if returns is not None:
            returns = np.array(returns, dtype=np.float64)
            if returns.ndim == 1 and n == 1:
                returns = returns[:, None]
            if returns.ndim != 2 or returns.shape[1] != n:
                raise ValueError(f"PortfolioState.recent_returns must be [T, {n}] (bars x symbols), "
                                 f"got shape {returns.shape}")
            returns.setflags(write=False)
        object.__setattr__(self, "symbols", symbols)
        object.__setattr__(self, "shares", shares)
        object.__setattr__(self, "prices", prices)
        object.__setattr__(self, "cash", float(self.cash))
        object.__setattr__(self, "recent_returns", returns)
        if not self.equity > 0:
            raise ValueError(f"PortfolioState: equity must be > 0, got {self.equity:.6g}")
        if self.peak_equity is not None and not (math.isfinite(self.peak_equity) and self.peak_equity > 0):
            raise ValueError(f"PortfolioState.peak_equity must be a finite number > 0, got {self.peak_equity!r}")

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @property
    def values(self) -> np.ndarray:
        """Position values in currency."""
        return self.shares * self.prices

    @property
    def equity(self) -> float:
        return self.cash + float(self.values.sum())

    @property
    def weights(self) -> np.ndarray:
        return self.values / self.equity

    @property
    def gross_exposure(self) -> float:
        return float(np.abs(self.weights).sum())


def _vector(name: str, values: object, n: int) -> np.ndarray:
    array = np.array(values, dtype=np.float64).reshape(-1)
    if array.shape != (n,):
        raise ValueError(f"PortfolioState.{name} needs one value per symbol ({n}), got {array.size}")
    array.setflags(write=False)
    return array


def portfolio_state_from_weights(weights: Mapping[str, float] | pd.Series, prices: Mapping[str, float] | pd.Series,
                                 equity: float, *, recent_returns: pd.DataFrame | np.ndarray | None = None,
                                 peak_equity: float | None = None) -> PortfolioState:
    """The portfolio holding ``weights`` (fractions of ``equity``; the rest is cash, negative
    when levered) at ``prices``. Symbols are those of ``prices`` in their order; a symbol with
    a weight but no price is an error, one with a price but no weight is held at 0.
    ``recent_returns`` as a DataFrame is aligned to the symbols by column name."""
    if not (math.isfinite(equity) and equity > 0):
        raise ValueError(f"equity must be a finite number > 0, got {equity!r}")
    prices = pd.Series(prices, dtype="float64")
    weights = pd.Series(weights, dtype="float64")
    unpriced = [str(s) for s in weights.index if s not in prices.index]
    if unpriced:
        raise ValueError(f"no price for {', '.join(unpriced)} (priced: {', '.join(map(str, prices.index))})")
    if not np.isfinite(weights.to_numpy()).all():
        raise ValueError("weights must be finite numbers")
    symbols = [str(s) for s in prices.index]
    w = weights.reindex(prices.index, fill_value=0.0).to_numpy()
    p = prices.to_numpy()
    shares = w * equity / p
    cash = equity - float(shares @ p)
    if abs(cash) < 1e-12 * equity:
        cash = 0.0  # fully invested, not a rounding error away from it
    recent = recent_returns
    if isinstance(recent_returns, pd.DataFrame):
        # a symbol without history gets a NaN column: the scenarios' default volatility
        recent = recent_returns.reindex(columns=prices.index).to_numpy(dtype=np.float64)
    return PortfolioState(tuple(symbols), shares, cash, p, recent, peak_equity)


def state_from_closes(closes: pd.DataFrame, equity: float, weights: Mapping[str, float] | None = None, *,
                      lookback: int = DEFAULT_LOOKBACK) -> PortfolioState:
    """A portfolio at the last close of ``closes`` (timestamps x symbols, NaN where a symbol had
    no bar): ``weights`` (default: equal weight over the symbols), and the last ``lookback``
    returns as its recent history."""
    if closes.empty:
        raise ValueError("no closing prices to value the portfolio at")
    closes = closes.sort_index()
    last = closes.ffill().iloc[-1]
    unpriced = [str(s) for s in last.index[last.isna()]]
    if unpriced:
        raise ValueError(f"no stored close for {', '.join(unpriced)}")
    if weights is None:
        weights = {s: 1.0 / len(last) for s in last.index}
    returns = closes.pct_change(fill_method=None).iloc[1:].tail(lookback)
    return portfolio_state_from_weights(weights, last, equity, recent_returns=returns)


def closes_from_bars(bars: pd.DataFrame) -> pd.DataFrame:
    """Closes (timestamps x symbols) from long bars with ``symbol``, ``ts`` and ``close``."""
    missing = {"symbol", "ts", "close"} - set(bars.columns)
    if missing:
        raise ValueError(f"bars lack columns {sorted(missing)}")
    return bars.pivot_table(index="ts", columns="symbol", values="close", aggfunc="last").sort_index()


def last_step_weights(weights: pd.DataFrame) -> dict[str, float]:
    """The target weights of the last step of a stored episode (rows of ``tt_target_weights``:
    ``step``, ``instrument``, ``weight``)."""
    if weights.empty:
        raise ValueError("the episode stored no target weights")
    last = weights[weights["step"] == weights["step"].max()]
    return {str(k): float(v) for k, v in zip(last["instrument"], last["weight"], strict=True)}


_WEIGHT = re.compile(r"^\s*([^=\s,]+)\s*=\s*([-+0-9.eE]+)\s*$")


def parse_weights(text: str) -> dict[str, float]:
    """``"SPY=0.5,QQQ=0.5"`` -> {"SPY": 0.5, "QQQ": 0.5}; ValueError naming the bad part."""
    out: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        match = _WEIGHT.match(part)
        if match is None:
            raise ValueError(f"weights: {part.strip()!r} is not SYMBOL=WEIGHT (e.g. SPY=0.5,QQQ=0.5)")
        symbol, value = match.group(1).upper(), match.group(2)
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"weights: {value!r} for {symbol} is not a number") from None
        if not math.isfinite(weight):
            raise ValueError(f"weights: the weight of {symbol} must be finite")
        if symbol in out:
            raise ValueError(f"weights: {symbol} is given twice")
        out[symbol] = weight
    if not out:
        raise ValueError("weights: none given (e.g. SPY=0.5,QQQ=0.5)")
    return out


def risk_limits_from_env(env_config: object, *, daily_loss_limit: float | None = None,
                         max_drawdown: float | None | Literal["env"] = "env") -> RiskLimits:
    """The gate an ``EnvConfig`` implies: its leverage and per-symbol caps and long-only flag;
    the drawdown kill switch at the env's ``max_drawdown`` (the training stopper's level; 1.0,
    i.e. never, disables it) unless ``max_drawdown`` says otherwise; ``daily_loss_limit`` is
    not part of the env config."""
    drawdown = getattr(env_config, "max_drawdown") if max_drawdown == "env" else max_drawdown
    if drawdown is not None and drawdown >= 1.0:
        drawdown = None
    return RiskLimits(leverage_cap=env_config.leverage_cap, per_symbol_cap=env_config.per_symbol_cap,  # type: ignore[attr-defined]
                      long_only=env_config.long_only, max_drawdown=drawdown,  # type: ignore[attr-defined]
                      daily_loss_limit=daily_loss_limit)


# ---------------------------------------------------------------------------- scenarios
@dataclass(frozen=True)
class Scenario(ABC):
    """A named shock: ``price_relatives(state, rng)`` -> [bars, N] (> 0), price at bar t over
    price at bar t-1."""

    name: str
    description: str

    @abstractmethod
    def price_relatives(self, state: PortfolioState, rng: np.random.Generator) -> np.ndarray:
        """The shock's path of price relatives for ``state``'s symbols."""


@dataclass(frozen=True)
class GapShock(Scenario):
    """One bar in which ``target`` gaps by ``shock`` (-0.10: 10 % lower): ``"all"`` symbols,
    the ``"largest"`` position by |value| (the first symbol when nothing is held), or one
    symbol by name."""

    shock: float = -0.10
    target: str = "all"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.shock) and self.shock > -1.0):
            raise ValueError(f"{self.name}: shock must be > -1 (a price stays > 0), got {self.shock!r}")

    def price_relatives(self, state: PortfolioState, rng: np.random.Generator) -> np.ndarray:
        relatives = np.ones((1, state.n_symbols))
        if self.target == "all":
            relatives[0, :] = 1.0 + self.shock
        elif self.target == "largest":
            relatives[0, int(np.argmax(np.abs(state.values)))] = 1.0 + self.shock
        elif self.target in state.symbols:
            relatives[0, state.symbols.index(self.target)] = 1.0 + self.shock
        else:
            raise ValueError(f"{self.name}: symbol {self.target!r} is not in the portfolio {list(state.symbols)}")
        return relatives


@dataclass(frozen=True)
class SimulatedScenario(Scenario):
    """Shared by the random scenarios: ``n_paths`` seeded paths of ``bars`` bars; the one whose
    buy-and-hold P&L for the starting weights is at ``quantile`` (0.05: a bad month, not the
    worst) is the scenario's path."""

    bars: int = 21
    lookback: int = DEFAULT_LOOKBACK
    default_vol: float = DEFAULT_VOL
    n_paths: int = 200
    quantile: float = 0.05

    def __post_init__(self) -> None:
        if self.bars < 1 or self.lookback < 2 or self.n_paths < 1:
            raise ValueError(f"{self.name}: bars >= 1, lookback >= 2 and n_paths >= 1 are needed")
        if not (math.isfinite(self.default_vol) and self.default_vol >= 0):
            raise ValueError(f"{self.name}: default_vol must be >= 0, got {self.default_vol!r}")
        if not 0.0 <= self.quantile <= 1.0:
            raise ValueError(f"{self.name}: quantile must be in [0, 1], got {self.quantile!r}")

    @abstractmethod
    def log_returns(self, state: PortfolioState, rng: np.random.Generator) -> np.ndarray:
        """[n_paths, bars, N] log returns."""

    def price_relatives(self, state: PortfolioState, rng: np.random.Generator) -> np.ndarray:
        paths = self.log_returns(state, rng)
        growth = np.expm1(paths.sum(axis=1))  # [n_paths, N] simple return over the path
        pnl = growth @ state.weights
        # stable sort: ties keep the order drawn, so the pick is deterministic
        chosen = int(np.argsort(pnl, kind="stable")[int(math.floor(self.quantile * (len(pnl) - 1)))])
        return np.exp(paths[chosen])

    def recent_log_returns(self, state: PortfolioState) -> pd.DataFrame:
        if state.recent_returns is None:
            return pd.DataFrame(np.empty((0, state.n_symbols)))
        recent = state.recent_returns[-self.lookback:]
        with np.errstate(invalid="ignore", divide="ignore"):
            logs = np.log1p(np.where(recent > -1.0, recent, np.nan))
        return pd.DataFrame(logs)

    def recent_vols(self, state: PortfolioState) -> np.ndarray:
        """Per-bar volatility of each symbol's recent log returns (``default_vol`` where fewer
        than two are known)."""
        logs = self.recent_log_returns(state)
        vols = logs.std(ddof=1).to_numpy() if len(logs) >= 2 else np.full(state.n_symbols, np.nan)
        return np.where(np.isfinite(vols), vols, self.default_vol)


@dataclass(frozen=True)
class VolatilityShock(SimulatedScenario):
    """Returns with ``multiplier`` x the recent volatility of every symbol, recent correlations
    kept (pairwise; none known: uncorrelated), zero log drift."""

    multiplier: float = 3.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (math.isfinite(self.multiplier) and self.multiplier >= 0):
            raise ValueError(f"{self.name}: multiplier must be >= 0, got {self.multiplier!r}")

    def log_returns(self, state: PortfolioState, rng: np.random.Generator) -> np.ndarray:
        vols = self.recent_vols(state) * self.multiplier
        logs = self.recent_log_returns(state)
        corr = logs.corr(min_periods=2).to_numpy() if len(logs) >= 2 else np.eye(state.n_symbols)
        corr = np.where(np.isfinite(corr), corr, 0.0)
        np.fill_diagonal(corr, 1.0)
        factor = _psd_factor(corr * np.outer(vols, vols))
        z = rng.standard_normal((self.n_paths, self.bars, state.n_symbols))
        return z @ factor.T


@dataclass(frozen=True)
class CorrelationSpike(SimulatedScenario):
    """Every symbol moves with one market factor: pairwise correlation ``correlation``, each at
    its recent volatility x ``vol_multiplier``; the factor's mean per bar is ``drift`` (in
    units of its own volatility; negative: a falling market)."""

    correlation: float = 0.9
    vol_multiplier: float = 1.0
    drift: float = -0.25

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.correlation <= 1.0:
            raise ValueError(f"{self.name}: correlation must be in [0, 1], got {self.correlation!r}")
        if not (math.isfinite(self.vol_multiplier) and self.vol_multiplier >= 0 and math.isfinite(self.drift)):
            raise ValueError(f"{self.name}: vol_multiplier must be >= 0 and drift finite")

    def log_returns(self, state: PortfolioState, rng: np.random.Generator) -> np.ndarray:
        vols = self.recent_vols(state) * self.vol_multiplier
        market = rng.standard_normal((self.n_paths, self.bars, 1)) + self.drift
        own = rng.standard_normal((self.n_paths, self.bars, state.n_symbols))
        rho = self.correlation
        return vols * (math.sqrt(rho) * market + math.sqrt(1.0 - rho) * own)


def _psd_factor(cov: np.ndarray) -> np.ndarray:
    """L with L @ L.T == cov (negative eigenvalues from pairwise estimates clipped to 0)."""
    values, vectors = np.linalg.eigh((cov + cov.T) / 2.0)
    return vectors * np.sqrt(np.clip(values, 0.0, None))


STANDARD_SCENARIOS: tuple[Scenario, ...] = (
    GapShock("gap_down_10", "every symbol opens 10% lower", shock=-0.10, target="all"),
    VolatilityShock("vol_x3_month", "21 bars at 3x the recent volatility (5th-percentile path of 200)",
                    multiplier=3.0, bars=21),
    GapShock("one_symbol_minus_50", "the largest position halves", shock=-0.50, target="largest"),
    CorrelationSpike("correlation_spike",
                     "21 bars, every symbol on one falling market factor, correlation 0.9 "
                     "(5th-percentile path of 200)", correlation=0.9, bars=21),
)


def scenario_rng(seed: int, scenario: Scenario) -> np.random.Generator:
    """A scenario's random numbers depend on the seed and its name only: adding or reordering
    scenarios changes no other scenario's path."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(scenario.name.encode())]))


# ---------------------------------------------------------------------------- simulation
@dataclass(frozen=True)
class GateEvent:
    bar: int
    rule: str
    detail: str


@dataclass(frozen=True)
class StressPath:
    """One scenario run bar by bar. Arrays have one entry per bar, the start (bar 0) first;
    ``gross`` is the gross exposure at each bar's mark before any trade."""

    scenario: Scenario
    equity: np.ndarray
    drawdown: np.ndarray
    gross: np.ndarray
    events: tuple[GateEvent, ...]
    kill_switch_bar: int | None
    daily_loss_bar: int | None
    orders_blocked: int
    clamped_bars: int
    costs: float
    final_weights: np.ndarray
    limits: RiskLimits
    worst_drawdown: float  # the deepest drawdown from the running peak along the path

    @property
    def start_equity(self) -> float:
        return float(self.equity[0])

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1])

    @property
    def loss(self) -> float:
        """Currency lost over the path (negative: a gain)."""
        return self.start_equity - self.final_equity

    @property
    def loss_pct(self) -> float:
        return self.loss / self.start_equity

    def gate_actions(self) -> str:
        """The first time each rule acted, in bar order, e.g. "bar 1 leverage_cap: 1.588 -> 1.5;
        bar 3 max_drawdown: drawdown 0.31 >= 0.3, targets flat"; "none" when the gate never acted."""
        seen: dict[str, GateEvent] = {}
        for event in self.events:
            seen.setdefault(event.rule, event)
        return "; ".join(f"bar {e.bar} {e.detail}" for e in sorted(seen.values(), key=lambda e: e.bar)) or "none"


def simulate(state: PortfolioState, limits: RiskLimits, scenario: Scenario, *, seed: int = 0,
             policy: StressPolicy = "hold", cost_model: CostModel | None = None) -> StressPath:
    """Run ``scenario`` on ``state`` through ``RiskGate(limits)``; see the module docstring."""
    if policy not in ("hold", "rebalance"):
        raise ValueError(f"policy must be 'hold' or 'rebalance', got {policy!r}")
    relatives = np.asarray(scenario.price_relatives(state, scenario_rng(seed, scenario)), dtype=np.float64)
    if relatives.ndim != 2 or relatives.shape[1] != state.n_symbols or len(relatives) == 0:
        raise ValueError(f"{scenario.name}: price relatives must be [bars >= 1, {state.n_symbols}], "
                         f"got shape {relatives.shape}")
    if not (np.isfinite(relatives).all() and (relatives > 0).all()):
        raise ValueError(f"{scenario.name}: price relatives must be finite and > 0")

    symbols = list(state.symbols)
    start_equity = state.equity
    portfolio = Portfolio(start_equity, symbols)
    portfolio.cash = state.cash
    portfolio.positions = np.array(state.shares)
    portfolio.peak_equity = max(state.peak_equity or start_equity, start_equity)
    core = ExecutionCore(cost_model or CostModel())
    gate = RiskGate(limits)
    prices = np.array(state.prices)
    core.mark(portfolio, prices)
    # bar 0 is the session before the shock: the daily switch measures from its equity
    gate.screen_orders([], session=0, equity=start_equity)
    start_weights = state.weights.copy()

    equity, drawdown, gross = [start_equity], [portfolio.drawdown], [portfolio.gross_exposure()]
    events: list[GateEvent] = []
    kill_bar = daily_bar = None
    blocked = clamped = 0
    decision_equity = start_equity
    for bar, relative in enumerate(relatives, start=1):
        prices = prices * relative
        mark = core.mark(portfolio, prices)
        gross_now = portfolio.gross_exposure()
        target = portfolio.weights() if policy == "hold" else start_weights
        allowed, breaches = gate.apply(target, drawdown=portfolio.drawdown, equity=mark)
        # held weights a rounding error above a cap are clamped by the gate, but not news
        breaches = tuple(b for b in breaches if _material(b))
        if breaches:
            clamped += 1
            for breach in breaches:
                if breach.rule == "max_drawdown":
                    detail = (f"max_drawdown: drawdown {breach.requested[0]:.4g} >= {breach.allowed[0]:.4g}, "
                              "targets flat")
                    kill_bar = bar if kill_bar is None else kill_bar
                else:
                    detail = breach.describe(symbols)
                events.append(GateEvent(bar, breach.rule, detail))
        orders = []
        if policy == "rebalance" or breaches:
            # dust from floating point is not an order
            dust = max(core.min_order_value, 1e-9 * abs(mark))
            orders = orders_from_targets(portfolio, allowed, prices, min_order_value=dust)
        was_halted = gate.halted
        sent, screened = gate.screen_orders(orders, session=bar, equity=mark)
        if gate.halted and not was_halted and daily_bar is None:
            daily_bar = bar
            day_loss = 1.0 - mark / decision_equity if decision_equity > 0 else 1.0
            events.append(GateEvent(bar, "daily_loss_limit",
                                    f"daily_loss_limit: day loss {day_loss:.4g} >= {limits.daily_loss_limit:.4g}, "
                                    "trading halted"))
        decision_equity = mark
        for breach in screened:  # at most one: the daily loss limit (the market is open)
            blocked += len(orders)
            events.append(GateEvent(bar, f"{breach.rule} (orders blocked)",
                                    f"{len(orders)} order(s) blocked by {breach.rule}"))
        if sent:
            core.execute(portfolio, sent, Bar.from_prices(prices), at="close")
            core.mark(portfolio, prices)
        equity.append(portfolio.equity)
        drawdown.append(portfolio.drawdown)
        gross.append(gross_now)

    return StressPath(
        scenario=scenario,
        equity=np.array(equity),
        drawdown=np.array(drawdown),
        gross=np.array(gross),
        events=tuple(events),
        kill_switch_bar=kill_bar,
        daily_loss_bar=daily_bar,
        orders_blocked=blocked,
        clamped_bars=clamped,
        costs=portfolio.total_commission + portfolio.total_slippage,
        final_weights=portfolio.weights(),
        limits=limits,
        worst_drawdown=float(portfolio.max_drawdown),
    )


def _material(breach: RiskBreach) -> bool:
    if breach.rule == "max_drawdown":
        return True
    return any(abs(r - a) > 1e-9 * max(1.0, abs(r)) for r, a in zip(breach.requested, breach.allowed, strict=True))


STRESS_COLUMNS = (
    "scenario", "description", "bars", "start_equity", "final_equity", "loss", "loss_pct",
    "worst_drawdown", "gross_before", "gross_after_shock", "max_gross", "leverage_cap",
    "over_leverage_cap", "kill_switch_bar", "daily_loss_bar", "clamped_bars", "orders_blocked",
    "costs", "gate_actions",
)


# what ``tt stress`` shows per scenario (``gate_actions`` goes on lines of its own)
DISPLAY_COLUMNS = (
    "scenario", "loss", "loss_pct", "worst_drawdown", "final_equity", "gross_after_shock", "max_gross",
    "kill_switch_bar", "daily_loss_bar", "clamped_bars", "orders_blocked",
)


def describe_limits(limits: RiskLimits) -> str:
    """One line: the gate's limits that matter under stress."""
    def pct(value: float | None) -> str:
        return "off" if value is None else f"{value:.1%}"

    return (f"leverage cap {limits.leverage_cap:g}, per-symbol cap {limits.per_symbol_cap:g}"
            f"{', long only' if limits.long_only else ''}, drawdown kill switch {pct(limits.max_drawdown)}, "
            f"daily loss limit {pct(limits.daily_loss_limit)}")


def starting_breaches(state: PortfolioState, limits: RiskLimits) -> list[str]:
    """What the gate would change in the starting weights before any shock (their own breach
    of a limit, which then shows up at bar 1 of every scenario)."""
    peak = max(state.peak_equity or state.equity, state.equity)
    _, breaches = RiskGate(limits).apply(state.weights, drawdown=1.0 - state.equity / peak, equity=state.equity)
    return [b.describe(list(state.symbols)) for b in breaches if _material(b)]


def describe_state(state: PortfolioState, *, top: int = 8) -> str:
    """One line: equity, gross exposure and the largest weights."""
    order = np.argsort(-np.abs(state.weights), kind="stable")
    held = [i for i in order if state.weights[i] != 0.0]
    shown = ", ".join(f"{state.symbols[i]} {state.weights[i]:.1%}" for i in held[:top])
    more = f" and {len(held) - top} more" if len(held) > top else ""
    return (f"equity {state.equity:,.0f}, gross {state.gross_exposure:.2f}x: {shown or 'all cash'}{more}")


def run_stress(state: PortfolioState, limits: RiskLimits, scenarios: Sequence[Scenario] = STANDARD_SCENARIOS,
               seed: int = 0, *, policy: StressPolicy = "hold", cost_model: CostModel | None = None) -> pd.DataFrame:
    """One row per scenario (columns ``STRESS_COLUMNS``):

    loss, loss_pct: start minus final equity, in currency and as a fraction of the start
        (negative: the path gained); worst_drawdown: the deepest drawdown along the path (from
        ``state.peak_equity``); gross_after_shock: gross exposure at bar 1's mark, before any
        trade; max_gross: its maximum over the path; over_leverage_cap: max_gross above the cap;
    kill_switch_bar / daily_loss_bar: the first bar the drawdown kill switch / the daily loss
        limit tripped (<NA>: never); clamped_bars: bars on which the gate changed the targets;
        orders_blocked: orders the daily switch held back; costs: commission and slippage of
        the gate's trades; gate_actions: the first action of each rule, readable.
    """
    if not scenarios:
        raise ValueError("run_stress: no scenarios")
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        raise ValueError(f"run_stress: scenario names must be unique, got {names}")
    rows = []
    for scenario in scenarios:
        path = simulate(state, limits, scenario, seed=seed, policy=policy, cost_model=cost_model)
        rows.append({
            "scenario": scenario.name,
            "description": scenario.description,
            "bars": len(path.equity) - 1,
            "start_equity": path.start_equity,
            "final_equity": path.final_equity,
            "loss": path.loss,
            "loss_pct": path.loss_pct,
            "worst_drawdown": path.worst_drawdown,
            "gross_before": float(path.gross[0]),
            "gross_after_shock": float(path.gross[1]),
            "max_gross": float(path.gross[1:].max()),
            "leverage_cap": limits.leverage_cap,
            "over_leverage_cap": bool(path.gross[1:].max() > limits.leverage_cap + 1e-12),
            "kill_switch_bar": path.kill_switch_bar,
            "daily_loss_bar": path.daily_loss_bar,
            "clamped_bars": path.clamped_bars,
            "orders_blocked": path.orders_blocked,
            "costs": path.costs,
            "gate_actions": path.gate_actions(),
        })
    frame = pd.DataFrame(rows, columns=list(STRESS_COLUMNS))
    for column in ("kill_switch_bar", "daily_loss_bar"):
        frame[column] = frame[column].astype("Int64")
    return frame
