"""What a paper or live trading session is configured by (``live_session``'s op config and the
file ``tt live --config`` reads).

One file serves both: ``paper.yaml`` holds a Dagster run config (``ops: trading_session: config:
...``), and ``tt live`` reads the same section. The universe, the bar interval and the feature set
are the policy's own (they shape its observations); ``symbols`` and ``interval`` may be given to
state what the operator expects, and the session refuses to start when they differ.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, ValidationInfo, field_validator

from tt_platform.config.run_config import DuplicateKeyError, UniqueKeyLoader, one_line
from tt_platform.config.strict import StrictModel
from tt_platform.config.text import TextFileError, line_of_offset, read_text
from tt_platform.core.risk import RiskLimits

LIVE_JOB = "live_session"
LIVE_OP = "trading_session"  # the job's one op: its config is the session's
INTERVALS = ("1min", "5min", "15min", "30min", "1h", "1d")
_VERSION = re.compile(r"(?:version:)?([1-9][0-9]*)")
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class LiveConfigError(ValueError):
    """A live-session config that cannot be used; the message names the file, key and problem."""


class RiskConfig(StrictModel):
    """Limits every decision passes (the backtester's ``RiskGate``) and the session breaker."""

    leverage_cap: float = Field(1.0, gt=0, description="max gross exposure, sum of |weight|")
    per_symbol_cap: float = Field(0.25, gt=0, description="max |weight| of one symbol")
    long_only: bool = Field(True, description="no short positions")
    max_net_exposure: float | None = Field(None, ge=0, description="max |sum of weights|; null: none")
    max_symbol_notional: float | None = Field(
        None, ge=0, description="max |position value| of one symbol, in account currency; null: none")
    daily_loss_limit: float | None = Field(
        0.03, gt=0, le=1, description="daily kill switch: no new orders for the rest of the session once "
        "equity is this fraction below the previous close; null: off")
    max_session_drawdown: float = Field(
        0.05, gt=0, le=1, description="circuit breaker: stop trading when equity falls this fraction "
        "below the day's peak")
    flatten_on_trip: bool = Field(False, description="a tripped breaker sells everything instead of holding")

    def limits(self) -> RiskLimits:
        return RiskLimits(
            leverage_cap=self.leverage_cap, per_symbol_cap=self.per_symbol_cap, long_only=self.long_only,
            max_net_exposure=self.max_net_exposure, max_symbol_notional=self.max_symbol_notional,
            daily_loss_limit=self.daily_loss_limit)


class OrdersConfig(StrictModel):
    """How decisions become orders."""

    order_type: Literal["market", "limit"] = Field("market", description="MKT or LMT orders, TIF DAY")
    limit_offset_bps: float = Field(
        5.0, description="a limit order's price: this far from the last close on the passive side (buys below, "
        "sells above); negative: marketable")
    limit_timeout_seconds: float = Field(
        60.0, gt=0, description="an unfilled limit order is handled after this many seconds")
    on_limit_timeout: Literal["cancel", "market"] = Field(
        "cancel", description="what happens then: cancel it, or cancel it and send the rest at market")
    min_order_value: float = Field(100.0, ge=0, description="orders smaller than this (currency) are not sent")


class PaperConfig(StrictModel):
    """The fill model of paper mode, and of the shadow simulation that runs beside live mode."""

    commission_bps: float = Field(0.5, ge=0)
    slippage_bps: float = Field(2.0, ge=0)
    min_commission: float = Field(1.0, ge=0, description="per order, in currency")


class IBConfig(StrictModel):
    """Where the gateway is; host and port default to IB_HOST / IB_PORT."""

    host: str | None = Field(None, description="default: IB_HOST")
    port: int | None = Field(None, ge=1, le=65535, description="default: IB_PORT")
    client_id: int = Field(71, ge=0, description="the session's client id (orders belong to it)")
    history_client_id: int = Field(72, ge=0, description="client id of the warm-start history requests")
    request_timeout: float = Field(10.0, gt=0, description="seconds before a request counts as failed")
    startup_wait_seconds: float = Field(
        300.0, ge=0, description="how long a starting session keeps trying to reach a gateway that is down "
                                 "(IB's daily restart takes minutes); 0: one attempt")


class LiveSessionConfig(StrictModel):
    """A paper or live trading session of one policy."""

    mode: Literal["paper", "live"] = Field("paper", description="paper: simulated fills; live: IB orders")
    policy: str = Field(
        "champion", description="MLflow alias (champion), model version ('3' or 'version:3'), or "
        "'policy:<policy_id>' for a policy in tt_policy")
    symbols: list[str] = Field(
        default_factory=list, description="the universe you expect; empty: the policy's own (must match)")
    watchlist: str | None = Field(
        None, description="a watchlist CSV whose symbols you expect (instead of symbols); must match the policy's")
    interval: str | None = Field(None, description="bar interval you expect; null: the policy's own (must match)")
    capital: float = Field(100_000.0, gt=0, description="the session's starting equity, in account currency")
    calendar: str = Field("XNYS", description="exchange_calendars name of the market clock")
    clock: Literal["wall", "feed"] = Field(
        "wall", description="'wall': the machine's clock; 'feed': the latest real-time bar, for a replaying gateway such as tt gateway-sim --replay-start")
    warm_start_bars: int | None = Field(
        None, ge=1, description="bars of history before the first decision; null: what the features need")
    risk: RiskConfig = Field(default_factory=RiskConfig)
    orders: OrdersConfig = Field(default_factory=OrdersConfig)
    paper: PaperConfig = Field(default_factory=PaperConfig)
    ib: IBConfig = Field(default_factory=IBConfig)
    session_id: str | None = Field(
        None, description="names the session across restarts; null: the Dagster run id (a re-run resumes "
        "when given the same id)")
    heartbeat_seconds: float = Field(10.0, gt=0, description="heartbeat, equity and positions every this many seconds")
    stale_after_seconds: float = Field(
        120.0, gt=0, description="a session without a heartbeat this long no longer holds its account")
    health_port: int | None = Field(None, ge=0, le=65535, description="serve GET /health here; null: off")
    report_dir: str | None = Field(None, description="session reports go here; null: TT_HOME/reports/live")
    cancel_on_stop: bool = Field(True, description="cancel open orders when the session stops")
    flatten_on_stop: bool = Field(False, description="close every position when the session stops")
    max_decisions: int | None = Field(None, ge=1, description="stop after this many decisions; null: run until stopped")
    dry_run: bool = Field(False, description="decide, but send no order (tt live --dry-run)")

    @field_validator("policy")
    @classmethod
    def _policy_spec(cls, value: str) -> str:
        value = value.strip()
        if value.startswith("policy:"):
            if not value[len("policy:"):].strip():
                raise ValueError("'policy:' needs a policy id after it")
            return value
        if _VERSION.fullmatch(value) or _ALIAS.fullmatch(value):
            return value
        raise ValueError(f"{value!r} is neither an MLflow alias, a model version nor 'policy:<id>'")

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: list[str]) -> list[str]:
        cleaned = [s.strip().upper() for s in value]
        if any(not s for s in cleaned):
            raise ValueError("symbols holds an empty name")
        duplicated = sorted({s for s in cleaned if cleaned.count(s) > 1})
        if duplicated:
            raise ValueError(f"symbols lists {duplicated} more than once")
        return cleaned

    @field_validator("watchlist")
    @classmethod
    def _one_universe(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("symbols"):
            raise ValueError("give symbols or a watchlist, not both")
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is not None and value not in INTERVALS:
            raise ValueError(f"interval {value!r} is not one of {list(INTERVALS)}")
        return value

    def expected_symbols(self) -> list[str]:
        """The universe the operator expects: ``symbols``, or the watchlist file's (empty: none)."""
        if self.watchlist:
            from tt_platform.data.watchlist import WatchlistError, load_watchlist

            try:
                return list(load_watchlist(self.watchlist).symbols)
            except (WatchlistError, OSError) as exc:
                raise LiveConfigError(f"watchlist: {exc}") from None
        return list(self.symbols)

    def policy_selector(self) -> tuple[str, str]:
        """("alias", name), ("version", number) or ("policy_id", id)."""
        if self.policy.startswith("policy:"):
            return "policy_id", self.policy[len("policy:"):].strip()
        version = _VERSION.fullmatch(self.policy)
        if version:
            return "version", version.group(1)
        return "alias", self.policy

    def safe_dict(self) -> dict[str, Any]:
        """The config as logged and stored (it holds no secret: the account comes from IB_ACCOUNT)."""
        return self.model_dump(mode="json")


def parse_live_config(data: Any, source: str = "config") -> LiveSessionConfig:
    """A ``LiveSessionConfig`` from a mapping: either the section itself or a Dagster run config
    holding ``ops: trading_session: config:``. Errors name ``source`` and the key path."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise LiveConfigError(f"{source}: expected a mapping of keys, got {type(data).__name__}")
    section, prefix = data, ""
    if "ops" in data:
        ops = data.get("ops")
        op = ops.get(LIVE_OP) if isinstance(ops, dict) else None
        if not isinstance(op, dict) or not isinstance(op.get("config", {}), dict):
            raise LiveConfigError(f"{source}: ops.{LIVE_OP}.config is missing or not a mapping")
        extra = sorted(set(data) - {"ops", "resources", "execution", "loggers"}, key=str)  # keys of any type
        if extra:
            raise LiveConfigError(f"{source}: unknown top-level key(s) {extra} beside ops")
        section, prefix = op.get("config") or {}, f"ops.{LIVE_OP}.config."
    try:
        return LiveSessionConfig.model_validate(section)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = prefix + ".".join(str(part) for part in error["loc"])
            problems.append(f"{source}: {one_line(where.rstrip('.') or '(top level)')}: {one_line(error['msg'])}")
        raise LiveConfigError("; ".join(problems)) from None


def load_live_config(path: str | Path) -> LiveSessionConfig:
    """Read a YAML file (``paper.yaml``); errors name the file, the key and the problem."""
    path = Path(path)
    if not path.is_file():
        raise LiveConfigError(f"{path}: no such file")
    try:
        text = read_text(path)
        data = yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass
    except TextFileError as exc:
        raise LiveConfigError(f"{path}: {exc}") from None
    except DuplicateKeyError as exc:
        raise LiveConfigError(f"{path}, line {exc.line}: {exc}") from None
    except yaml.reader.ReaderError as exc:
        raise LiveConfigError(f"{path}, line {line_of_offset(text, exc.position)}: not valid YAML (character "
                              f"U+{exc.character:04X} is not allowed)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise LiveConfigError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    except (ValueError, TypeError, RecursionError) as exc:  # a value PyYAML cannot construct, deep nesting
        raise LiveConfigError(f"{path}: not valid YAML ({one_line(str(exc)) or type(exc).__name__})") from None
    return parse_live_config(data, source=str(path))
