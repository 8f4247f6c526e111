"""Run configuration: what to trade, on which data, in which environment, trained how, in which
mode.

One pydantic model, ``RunConfig``, with one section per concern (``universe``, ``data``,
``env``, ``training``, ``evaluation``). Every default and bound is defined once, in its
section; the env factory, the trainer and evaluation consume the sections as they are.

Loaded from YAML (``load_run_config``) or from Dagster config (``RunConfigResource.load``) and
validated the same way: a bad value gets a ``RunConfigError`` naming the source, the key path
and the problem (``run.yaml: env.window_size: Input should be greater than or equal to 1``).

``data.end`` may be omitted: it then means the last completed exchange session, resolved when
the config is validated. An ``end`` after that session is clamped to it and the clamp is noted
in ``RunConfig.notes``, so no bar is ever asked for in the future. A ``start`` after that
session (or after ``end``) is refused, naming both dates.

Dates are calendar dates written ``YYYY-MM-DD`` (quoted or not); a number such as ``20200102``, a
time of day or any other spelling is refused, wherever the value comes from.

A YAML file is UTF-8 text; a key given twice in one mapping is an error naming the key and its
line, at any depth. An empty file (or one holding only comments) is the defaults, like no file.
A directory, a binary file or bytes that are not UTF-8 get one line naming the file and where
the problem is. ``universe.symbols`` holds at most ``TT_MAX_UNIVERSE`` symbols (a platform
setting, default 2,000); a watchlist file is held to the same limit when it is loaded.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union

import yaml
from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tt_platform.config.env import EnvConfig
from tt_platform.config.strict import StrictModel
from tt_platform.config.text import TextFileError, line_of_offset, read_text
from tt_platform.config.training import SEED_LIMIT, TrainConfig, algo_env_problem
from tt_platform.config.tuning import TuningConfig
from tt_platform.config.walk_forward import GateConfig, WalkForwardConfig
from tt_platform.data.sources.factory import SOURCES

INTERVALS = ("1d", "1h", "30min", "5min", "1min")
# every key at its default, with comments: the layout to copy from
REFERENCE_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "reference.yaml"

if TYPE_CHECKING:
    import pandas as pd

# the moment an omitted or future ``data.end`` resolves against; None: now
AsOf = Union["pd.Timestamp", datetime, None]


class RunConfigError(ValueError):
    """An invalid run configuration; the message names the source, key and problem."""


class DuplicateKeyError(yaml.YAMLError):
    """A YAML mapping that gives the same key twice."""

    def __init__(self, key: str, line: int, first_line: int) -> None:
        super().__init__(f"duplicate key {key!r} (first at line {first_line})")
        self.key, self.line, self.first_line = key, line, first_line


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping, at any depth (plain
    YAML keeps the last one silently). Keys brought in by a merge (``<<: *defaults``) may be
    overridden, as YAML intends."""

    def construct_document(self, node: yaml.Node) -> Any:
        self._refuse_duplicate_keys(node, "", set())
        return super().construct_document(node)

    def _refuse_duplicate_keys(self, node: yaml.Node, path: str, visited: set[int]) -> None:
        if id(node) in visited:  # an alias: checked where its anchor is
            return
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_lines: dict[Any, int] = {}
            for key_node, value_node in node.value:
                name = None
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    key = self.construct_object(key_node)
                    name = f"{path}{key}"
                    line = key_node.start_mark.line + 1
                    if key in first_lines:
                        raise DuplicateKeyError(name, line, first_lines[key])
                    first_lines[key] = line
                self._refuse_duplicate_keys(value_node, f"{name}." if name else path, visited)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._refuse_duplicate_keys(item, f"{path}{index}.", visited)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        # an impossible date (2020-02-30), or any text tagged !!timestamp, stays text, so the field
        # it is given to names it
        if not self.timestamp_regexp.match(self.construct_scalar(node)):
            return self.construct_scalar(node)
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", UniqueKeyLoader.construct_yaml_timestamp)


def not_empty_path(value: Any) -> Any:
    """``value``, unless it is an empty path, which would mean the current folder."""
    if isinstance(value, str) and not value.strip():
        raise ValueError("an empty path; leave the key out (or null) for none")
    return value


class Mode(str, Enum):
    backtest = "backtest"
    paper = "paper"
    live = "live"


class UniverseConfig(StrictModel):
    """The traded universe: a watchlist CSV, or inline symbols."""

    symbols: list[str] = Field(default_factory=lambda: ["SPY", "QQQ", "IWM", "TLT", "GLD"],
                               description="traded symbols when no watchlist is given")
    watchlist: Path | None = Field(None, description="a watchlist CSV; when set it wins over symbols")

    @field_validator("watchlist", mode="before")
    @classmethod
    def _watchlist_path(cls, value: Any) -> Any:
        return not_empty_path(value)

    @field_validator("symbols")
    @classmethod
    def _universe_size(cls, symbols: list[str]) -> list[str]:
        from tt_platform.data.watchlist import universe_size_problem

        problem = universe_size_problem(len({symbol.strip().upper() for symbol in symbols}))
        if problem:
            raise ValueError(problem)
        return symbols


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def date_only(value: Any) -> date | None:
    """A date field's value as a ``date``: a ``date`` (not a datetime) or a ``YYYY-MM-DD``
    string. Anything else (a number such as 20200102, a time of day) is a ``ValueError``."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"expected a date YYYY-MM-DD, got {value.strip()} ({exc})") from None
    shown = repr(value) if isinstance(value, str) and not value.strip() else value
    raise ValueError(f"expected a date YYYY-MM-DD, got {shown}")


class DataConfig(StrictModel):
    """Bars: where they come from, their interval and the date range."""

    source: Literal[SOURCES] = Field(  # type: ignore[valid-type]
        "synthetic", description="where bars come from: " + " | ".join(SOURCES))
    interval: Literal["1d", "1h", "30min", "5min", "1min"] = "1d"
    start: date = Field(date(2019, 1, 2), description="first session")
    end: date | None = Field(
        None, description="last session; null: the last completed session (a later date is "
                          "clamped to it)")
    csv_dir: Path | None = Field(None, description="for source=csv: one <SYMBOL>.csv per symbol")
    adjusted: bool = Field(False, description="split- and dividend-adjusted prices")
    missing_bars: Literal["skip", "ffill"] = "skip"
    seed: int = Field(7, ge=0, lt=SEED_LIMIT, description="synthetic source only")
    symbols: list[str] | None = Field(
        None, description="fetch only these symbols' bars (a subset run); the universe stays the "
                          "watchlist's. null: the whole universe")

    @field_validator("csv_dir", mode="before")
    @classmethod
    def _csv_dir_path(cls, value: Any) -> Any:
        return not_empty_path(value)

    # ``end`` as written (None: omitted) and what resolving it did
    _requested_end: date | None = PrivateAttr(None)
    _last_session: date | None = PrivateAttr(None)  # what it resolved against
    _resolved: bool = PrivateAttr(False)
    _notes: tuple[str, ...] = PrivateAttr(())

    @field_validator("symbols")
    @classmethod
    def _symbols_upper(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        cleaned = list(dict.fromkeys(str(s).strip().upper() for s in value if str(s).strip()))
        if not cleaned:
            raise ValueError("an empty list; leave data.symbols out to fetch the whole universe")
        return cleaned

    @field_validator("start", "end", mode="before")
    @classmethod
    def _date_only(cls, value: Any, info: ValidationInfo) -> date | None:
        if value is None and info.field_name == "start":
            raise ValueError("expected a date YYYY-MM-DD, got null")
        return date_only(value)

    @model_validator(mode="after")
    def _resolve_end(self, info: ValidationInfo) -> DataConfig:
        if self._resolved:
            return self
        from tt_platform.data.sessions import last_completed_session

        context = info.context or {}
        last = last_completed_session(context.get("as_of"))
        if context.get("last_session") is not None:  # a pinned clock, never in the future either
            last = min(context["last_session"], last)
        requested, notes = self.end, []
        if requested is None:
            end = last
        elif requested > last:
            end = last
            notes.append(f"data.end {requested} is after the last completed session; using {last}")
        else:
            end = requested
        if requested is not None and requested < self.start:
            raise ValueError(f"end {requested} is before start {self.start}")
        if last < self.start:
            if requested is None:
                raise ValueError(f"end {last} (the last completed session) is before start {self.start}")
            raise ValueError(f"start {self.start} is after the last completed session {last} "
                             f"(end {requested} is clamped to it)")
        if self.source == "csv" and self.csv_dir is None:
            raise ValueError("source 'csv' needs csv_dir")
        # the model is frozen to its users; resolving ``end`` is part of building it
        object.__setattr__(self, "end", end)
        self._requested_end = requested
        self._last_session = last
        self._notes = tuple(notes)
        self._resolved = True
        return self

    @property
    def requested_end(self) -> date | None:
        """``end`` as written: None when it was omitted (through the last completed session)."""
        return self._requested_end


class EvaluationConfig(StrictModel):
    """Out-of-sample evaluation."""

    test_fraction: float = Field(0.3, gt=0.05, lt=0.95,
                                 description="share of the bars held out for evaluation")
    walk_forward: WalkForwardConfig = Field(default_factory=WalkForwardConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    tuning: TuningConfig = Field(default_factory=TuningConfig)


class RunConfig(StrictModel):
    """A platform run: universe, data, environment, training and evaluation."""

    name: str = "demo"
    mode: Mode = Mode.backtest
    universe: UniverseConfig = Field(default_factory=UniverseConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    env: EnvConfig = Field(default_factory=EnvConfig)
    training: TrainConfig = Field(default_factory=TrainConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

    @field_validator("training")
    @classmethod
    def _training_fits_env(cls, training: TrainConfig, info: ValidationInfo) -> TrainConfig:
        env = info.data.get("env")
        problem = None if env is None else algo_env_problem(training, env.action_scheme)
        if problem:
            raise ValueError(problem)
        return training

    @property
    def notes(self) -> tuple[str, ...]:
        """What validation changed and a caller may want to print (e.g. a clamped data.end)."""
        return self.data._notes

    def as_written(self) -> dict[str, Any]:
        """The config as JSON-compatible values, ``data.end`` as written (None when omitted).

        Loading this again gives the same config (and hash), resolved against the clock then.
        """
        values = self.model_dump(mode="json")
        requested = self.data.requested_end
        values["data"]["end"] = None if requested is None else requested.isoformat()
        return values

    @property
    def config_hash(self) -> str:
        """Identity of what shapes a policy given its data. Where bars came from (source,
        csv_dir) and the mode a run executes in are left out: the data snapshot hash already
        pins the bars, and a policy trained once must be found again by paper and live runs.
        Which symbols a run fetched (``data.symbols``) is how it ran, not what it trains on.
        The watchlist counts by its content, not where its file happens to live. ``data.end``
        counts as written: an omitted end (through the last completed session) keeps the
        config's identity as sessions pass, while the data snapshot hash tells the data apart."""
        payload = self.as_written()
        del payload["mode"]
        for key in ("source", "csv_dir", "symbols"):
            del payload["data"][key]
        # how policies are judged, tuned and folded does not shape one policy: the walk-forward's
        # windows reach a policy as its data (snapshot hash), its seed as training.seed
        # how training is executed, not what it learns: the batched env gives identical results, and
        # the extractor settings at their defaults keep the hashes of configs written before them
        training = payload.get("training")
        if isinstance(training, dict):
            training.pop("vec_env", None)
            for key, default in (("policy_extractor", "flat"), ("fused_optimizer", False)):
                if training.get(key, default) == default:
                    training.pop(key, None)
            if self.training.policy_extractor == "flat":
                training.pop("extractor_symbol_dim", None)
        evaluation = payload.get("evaluation")
        if isinstance(evaluation, dict):
            for key in ("walk_forward", "gate", "tuning"):
                evaluation.pop(key, None)
        if self.universe.watchlist is not None:
            payload["universe"]["watchlist"] = _watchlist_identity(self.universe.watchlist)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def with_overrides(self, **dotted: Any) -> RunConfig:
        """Return a copy with ``section.key=value`` overrides (CLI flags), validated again
        (``data.end`` against the same last completed session as this config).

        ``None`` is a value here (it unsets an optional key); leave out what is not overridden.
        """
        source = "command-line overrides"
        data = self.as_written()
        problems = []
        for dotted_key, value in dotted.items():
            moved = _moved_to(dotted_key)
            if moved:
                problems.append(f"{source}: {dotted_key}: moved to {moved}")
                continue
            node = data
            *parents, leaf = dotted_key.split(".")
            for part in parents:
                node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                problems.append(f"{source}: {dotted_key}: unknown key")
                continue
            node[leaf] = _plain(value)
        try:
            config = parse_run_config(data, source=source, last_session=self.data._last_session)
        except RunConfigError as exc:
            problems.append(str(exc))
        if problems:
            raise RunConfigError("\n".join(problems))
        return config


# Keys of earlier layouts and where they live now: a config still using them gets told where.
MOVED_KEYS = {
    "portfolio.capital": "env.initial_cash",
    **{f"portfolio.{key}": f"env.{key}" for key in (
        "commission_bps", "slippage_bps", "leverage_cap", "per_symbol_cap", "long_only",
        "risk_target", "max_drawdown")},
    "training.window_size": "env.window_size",
    "training.episode_length": "env.episode_length",
}


def _moved_to(dotted_key: str) -> str | None:
    if dotted_key in MOVED_KEYS:
        return MOVED_KEYS[dotted_key]
    if dotted_key == "portfolio" or dotted_key.startswith("portfolio."):
        return "env (the portfolio section is now part of env)"
    return None


def _moved_problems(data: dict[str, Any], source: str) -> tuple[dict[str, Any], list[str]]:
    """``data`` without keys of earlier layouts, and one problem per such key."""
    cleaned, stale = dict(data), []
    for section, values in data.items():
        if section == "portfolio":
            del cleaned[section]
            stale += [f"portfolio.{key}" for key in values] if isinstance(values, dict) and values else ["portfolio"]
        elif isinstance(values, dict) and any(f"{section}.{key}" in MOVED_KEYS for key in values):
            cleaned[section] = {k: v for k, v in values.items() if f"{section}.{k}" not in MOVED_KEYS}
            stale += [f"{section}.{key}" for key in values if f"{section}.{key}" in MOVED_KEYS]
    return cleaned, [f"{source}: {key}: moved to {_moved_to(key)}" for key in stale]


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _watchlist_identity(path: Path) -> str:
    from tt_platform.data.watchlist import WatchlistError, load_watchlist

    try:
        return load_watchlist(path).snapshot_hash
    except WatchlistError:
        return str(path)  # unreadable now; resolving the universe will report why


def one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped (``\\r``), so that a
    key or value written with them cannot split or garble a one-line error."""
    return text if text.isprintable() else "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _format_errors(source: str, error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(f"{source}: {one_line(key)}: {one_line(message)}")
    return problems


def parse_run_config(data: Any, source: str = "config", *, as_of: AsOf = None,
                     last_session: date | None = None) -> RunConfig:
    """Validate a mapping (parsed YAML, Dagster config, overrides) into a ``RunConfig``.

    An omitted or future ``data.end`` resolves to the last session completed at ``as_of``
    (default: now), or to ``last_session`` when given (a pinned market clock).
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RunConfigError(f"{source}: (top level): expected a mapping, got {type(data).__name__}")
    data, problems = _moved_problems(data, source)
    data.setdefault("data", {})  # validated here, so an omitted end resolves against ``as_of``
    try:
        config = RunConfig.model_validate(data, context={"as_of": as_of, "last_session": last_session})
    except ValidationError as exc:
        problems += _format_errors(source, exc)
    if problems:
        raise RunConfigError("\n".join(problems))
    return config


def load_run_config(path: str | Path | None, *, as_of: AsOf = None,
                    last_session: date | None = None) -> RunConfig:
    """Load a YAML run config; ``None`` gives the defaults (the demo), and so does an empty
    file (or one holding only comments).

    Relative paths in the file (``universe.watchlist``, ``data.csv_dir``) mean: next to it;
    ``as_of`` / ``last_session``: see ``parse_run_config``. A missing file, a directory, a file
    that is not UTF-8 text, invalid YAML or a duplicate key is a one-line ``RunConfigError``
    naming the file (and the line).
    """
    if path is None:
        return parse_run_config({}, source="defaults", as_of=as_of, last_session=last_session)
    path = Path(path)
    if not path.exists():
        raise RunConfigError(f"{path}: config file not found")
    try:
        text = read_text(path)
    except TextFileError as exc:
        raise RunConfigError(f"{path}: {exc}") from None
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except DuplicateKeyError as exc:
        raise RunConfigError(f"{path}: line {exc.line}: {exc}") from None
    except yaml.reader.ReaderError as exc:
        raise RunConfigError(f"{path}: line {line_of_offset(text, exc.position)}: invalid YAML "
                             f"(character U+{exc.character:04X} is not allowed)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(parse)"
        raise RunConfigError(f"{path}: {where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    except (ValueError, TypeError, RecursionError) as exc:  # a value PyYAML cannot construct
        raise RunConfigError(f"{path}: invalid YAML ({exc})") from None
    if isinstance(data, dict):
        data = _resolve_relative_paths(data, path)
    return parse_run_config(data, source=str(path), as_of=as_of, last_session=last_session)


def _resolve_relative_paths(data: dict[str, Any], path: Path) -> dict[str, Any]:
    data = dict(data)
    for section, key in (("universe", "watchlist"), ("data", "csv_dir")):
        values = data.get(section)
        if isinstance(values, dict) and isinstance(values.get(key), str) and values[key].strip():
            try:
                value = Path(values[key]).expanduser()
                if not value.is_absolute():
                    data[section] = values | {key: str((path.parent / value).resolve())}
            except (RuntimeError, ValueError, OSError) as exc:  # ~unknown_user, a NUL character
                raise RunConfigError(f"{path}: {section}.{key}: not a usable path {values[key]!r} ({exc})") from None
    return data
