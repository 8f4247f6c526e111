"""Run configuration: what to trade, on which data, with which money and risk, in which mode.

Loaded from YAML and validated with pydantic. A bad file gets a ``RunConfigError`` naming the
file, the key path and the problem, so nobody has to read a traceback to fix a typo.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

INTERVALS = ("1d", "1h", "30min", "5min", "1min")


class RunConfigError(ValueError):
    """An invalid run configuration; the message names the file, key and problem."""


class Mode(str, Enum):
    backtest = "backtest"
    paper = "paper"
    live = "live"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UniverseConfig(StrictModel):
    symbols: list[str] = Field(default_factory=lambda: ["SPY", "QQQ", "IWM", "TLT", "GLD"])
    watchlist: Path | None = None  # a CSV; when set it wins over ``symbols``


class DataConfig(StrictModel):
    source: Literal["synthetic", "ib", "csv"] = "synthetic"
    interval: Literal["1d", "1h", "30min", "5min", "1min"] = "1d"
    start: date = date(2019, 1, 2)
    end: date = date(2021, 12, 31)
    csv_dir: Path | None = None  # for source=csv: one <SYMBOL>.csv per symbol
    adjusted: bool = False
    missing_bars: Literal["skip", "ffill"] = "skip"
    seed: int = 7  # synthetic source only

    @model_validator(mode="after")
    def _check(self) -> "DataConfig":
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if self.source == "csv" and self.csv_dir is None:
            raise ValueError("source 'csv' needs csv_dir")
        return self


class PortfolioConfig(StrictModel):
    capital: float = Field(100_000.0, gt=0)
    commission_bps: float = Field(1.0, ge=0, le=500)
    slippage_bps: float = Field(2.0, ge=0, le=500)
    leverage_cap: float = Field(1.0, gt=0, le=10)
    per_symbol_cap: float = Field(0.5, gt=0, le=10)
    long_only: bool = True
    risk_target: float = Field(0.15, gt=0, le=2, description="annualised volatility target")
    max_drawdown: float = Field(0.30, gt=0, le=1)


class TrainingConfig(StrictModel):
    algo: Literal["ppo", "a2c", "sac"] = "ppo"
    total_timesteps: int = Field(4096, ge=64)
    n_envs: int = Field(2, ge=1, le=64)
    seed: int = 42
    window_size: int = Field(20, ge=1, le=512)
    episode_length: int | None = Field(252, ge=10)
    feature_set: Literal["basic", "full"] = "basic"


class EvaluationConfig(StrictModel):
    test_fraction: float = Field(0.3, gt=0.05, lt=0.95)


class RunConfig(StrictModel):
    name: str = "demo"
    mode: Mode = Mode.backtest
    universe: UniverseConfig = Field(default_factory=UniverseConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    portfolio: PortfolioConfig = Field(default_factory=PortfolioConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

    @property
    def config_hash(self) -> str:
        """Identity of what shapes a policy given its data. Where bars came from (source,
        csv_dir) and the mode a run executes in are left out: the data snapshot hash already
        pins the bars, and a policy trained once must be found again by paper and live runs."""
        payload = self.model_dump(mode="json", exclude={"mode": True, "data": {"source", "csv_dir"}})
        if self.universe.watchlist is not None:
            # the universe's content, not where its file happens to live
            payload["universe"]["watchlist"] = _watchlist_identity(self.universe.watchlist)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def with_overrides(self, **dotted: Any) -> "RunConfig":
        """Return a copy with ``section.key=value`` overrides (CLI flags), validated again.

        ``None`` is a value here (it unsets an optional key); leave out what is not overridden.
        """
        data = self.model_dump(mode="json")
        for dotted_key, value in dotted.items():
            node = data
            *parents, leaf = dotted_key.split(".")
            for part in parents:
                node = node[part]
            node[leaf] = value.value if isinstance(value, Enum) else value
        return parse_run_config(data, source="command-line overrides")


def _watchlist_identity(path: Path) -> str:
    from tt_platform.data.watchlist import WatchlistError, load_watchlist

    try:
        return load_watchlist(path).snapshot_hash
    except WatchlistError:
        return str(path)  # unreadable now; resolving the universe will report why


def _format_errors(source: str, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(f"{source}: {key}: {message}")
    return "\n".join(problems)


def parse_run_config(data: Any, source: str = "config") -> RunConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RunConfigError(f"{source}: (top level): expected a mapping, got {type(data).__name__}")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise RunConfigError(_format_errors(source, exc)) from None


def load_run_config(path: str | Path | None) -> RunConfig:
    """Load a YAML run config; ``None`` gives the defaults (the demo)."""
    if path is None:
        return RunConfig()
    path = Path(path)
    if not path.is_file():
        raise RunConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(parse)"
        raise RunConfigError(f"{path}: {where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    config = parse_run_config(data, source=str(path))
    # relative paths in a config mean: next to the config file
    relative = {
        key: str((path.parent / value).resolve())
        for key, value in (("universe.watchlist", config.universe.watchlist), ("data.csv_dir", config.data.csv_dir))
        if value is not None and not value.is_absolute()
    }
    return config.with_overrides(**relative) if relative else config
