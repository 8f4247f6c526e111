"""Checks of episode and policy records before the store writes them (pure: no SQL, no I/O).

The store runs these inside the transaction of a write and before its first row, so a refused
batch leaves the store exactly as it was. A failed check raises ``RecordError`` with one sentence
that names the record (episode or policy id), the frame and its table, the column, the step and
the offending value.

Episode row (``check_episode_row``)
- only tt_episode columns; ``episode_id``, ``kind`` and ``started_at`` are required;
- ``kind`` is one of the known kinds;
- ``started_at`` / ``ended_at`` are timestamps, ``ended_at`` not before ``started_at``;
- ``seed``, when given, is an integer in [0, 2**32 - 1] (the seeds numpy and torch accept).

Step frame (``check_step_frame``; actions, rewards, equity, weights, portfolio, holdings)
- only columns of its table, no rows of another episode, the table's required columns present
  (``step``, ``ts``, ``instrument`` for per-instrument tables, the NOT NULL values);
- ``step``: integers >= 0, unique within the frame (per instrument where the table has one);
- ``instrument``: non-empty text;
- numbers finite: no NaN/None in NOT NULL columns and no +-inf in any column. The nullable
  columns (cash, gross_exposure, drawdown, leverage, market_value) may hold NaN, which the store
  writes as NULL ("not known");
- ``ts``: tz-aware, one timestamp per step, strictly increasing with step, and within
  [started_at, ended_at] of the episode;
- ``equity`` (equity curve, portfolio) > 0 at every step but the frame's last. Not "> 0
  everywhere": with shorts and leverage up to 10 the mark that wipes an account out can be 0 or
  negative, and the env ends the episode at exactly that step, so it can only be the last;
- target weights: gross exposure sum |w| of a step <= ``MAX_GROSS_EXPOSURE``.

Frames of one complete episode (``check_frames_agree``)
- actions and target weights cover the same steps: one decision books both;
- every rewarded step is on the equity curve (which also marks step 0, the start, unrewarded).
Deliberately not checked: the same ts for a step across frames (actions and weights are stamped
at the decision bar, rewards and equity at the mark that follows) and equal steps of portfolio
and holdings (a live loop may leave flat holdings out).

Finishing an episode (``check_finish``): ``ended_at`` is not before ``started_at`` nor before
the episode's last recorded step.

Policy (``check_policy_record``, ``check_same_lineage``)
- only tt_policy columns; ``policy_id`` non-empty text without surrounding blanks;
- ``algo``, ``code_version``: non-empty text;
- ``feature_set_hash``, ``data_snapshot_hash``, ``config_hash``: hash-like tokens (letters,
  digits and ``. _ : + -``, at most 128 characters, not "None"/"nan"/"null"). Not strictly hex:
  the writers prefix or shorten digests, and a stringified None is the mistake to catch;
- ``seed``: an integer in [0, 2**32 - 1];
- ``config``: a mapping, or the JSON text of one (stored as the mapping); its
  ``training.total_timesteps``, when present, a positive integer; its ``lineage`` entries, when
  present, equal to the row's own policy_id, hashes and seed;
- re-registering a stored ``policy_id`` keeps its lineage (``LINEAGE_FIELDS``): the same id
  with other data, features, config or seed is refused, not overwritten. The MLflow run, model
  URI, code version and config text may change: re-training the same lineage updates them.
"""

from __future__ import annotations

import json
import numbers
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

# The largest leverage cap a run config allows (``EnvConfig.leverage_cap``): the risk gate never
# books more, so a larger gross exposure is a broken writer.
MAX_GROSS_EXPOSURE = 10.0
# absorbs float rounding of weights that sum exactly to the cap
_EXPOSURE_TOLERANCE = 1e-9
# numpy and torch seeds (``config.training.SEED_LIMIT``)
MAX_SEED = 2**32 - 1
# frame name -> its column that is the portfolio's marked value
PORTFOLIO_VALUE_COLUMNS = {"equity": "equity", "portfolio": "equity"}
WEIGHTS_FRAME, WEIGHT_COLUMN = "weights", "weight"
LINEAGE_FIELDS = ("algo", "feature_set_hash", "data_snapshot_hash", "config_hash", "seed")
POLICY_HASH_FIELDS = ("feature_set_hash", "data_snapshot_hash", "config_hash")
_HASH_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}")
_NULL_WORDS = {"none", "nan", "null", "nat"}


class RecordError(ValueError):
    """A record the store refuses; the message is one sentence naming what to fix."""


@contextmanager
def raised_as(error: type[RecordError]) -> Iterator[None]:
    """Re-raise a ``RecordError`` as ``error`` (a store's own subclass), message unchanged."""
    try:
        yield
    except RecordError as err:
        if isinstance(err, error):
            raise
        raise error(str(err)) from None


@dataclass(frozen=True)
class StepFrameSpec:
    """What the checks need to know of one step table (the store derives it from the schema)."""

    name: str  # the frame's name in the store API ("actions", "weights", ...)
    table: str  # the table it is written to
    columns: tuple[str, ...]  # every column of the table
    required: tuple[str, ...]  # columns every row must give (NOT NULL, no default)
    numeric: Mapping[str, bool]  # floating-point column -> nullable
    per_instrument: bool  # one row per (step, instrument) instead of one per step

    @property
    def key(self) -> list[str]:
        return ["step", "instrument"] if self.per_instrument else ["step"]


@dataclass(frozen=True)
class EpisodeSpan:
    """When an episode started and (once known) ended, in UTC."""

    started_at: pd.Timestamp
    ended_at: pd.Timestamp | None = None


# ----------------------------------------------------------------------------- shared helpers
def _show(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return repr(value)


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, (str, Mapping, list, tuple)) and bool(pd.isna(value)))


def _utc(value: Any) -> pd.Timestamp | None:
    """``value`` as a UTC timestamp (naive means UTC, as everywhere in the store), None if unreadable."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if stamp is pd.NaT:
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _check_seed(subject: str, seed: Any) -> None:
    if not _is_integer(seed) or not 0 <= int(seed) <= MAX_SEED:
        raise RecordError(f"{subject}: seed {_show(seed)} is not an integer in [0, {MAX_SEED}] (2**32 - 1).")


def _check_known_fields(subject: str, record: Mapping[str, Any], columns: Sequence[str]) -> None:
    unknown = sorted(set(record) - set(columns))
    if unknown:
        raise RecordError(f"{subject} has unknown fields {unknown}; known: {list(columns)}.")


# ----------------------------------------------------------------------------- episode row
def check_episode_row(
    row: Mapping[str, Any], *, columns: Sequence[str], kinds: Sequence[str]
) -> EpisodeSpan:
    """Check one tt_episode row; returns its span for the checks of its step frames."""
    episode_id = row.get("episode_id")
    if not isinstance(episode_id, str) or not episode_id:
        raise RecordError(f"An episode row needs a non-empty text episode_id, got {_show(episode_id)}.")
    subject = f"Episode {episode_id!r}"
    _check_known_fields(f"{subject} row", row, columns)
    kind = row.get("kind")
    if kind not in kinds:
        raise RecordError(f"{subject}: kind {_show(kind)} is not one of {tuple(kinds)}.")
    started_at = _utc(row.get("started_at"))
    if started_at is None:
        raise RecordError(f"{subject}: started_at {_show(row.get('started_at'))} is not a timestamp.")
    ended_at = None if _missing(row.get("ended_at")) else _utc(row["ended_at"])
    if not _missing(row.get("ended_at")) and ended_at is None:
        raise RecordError(f"{subject}: ended_at {_show(row['ended_at'])} is not a timestamp.")
    if ended_at is not None and ended_at < started_at:
        raise RecordError(f"{subject}: ended_at {_show(ended_at)} is before started_at {_show(started_at)}.")
    if not _missing(row.get("seed")):
        _check_seed(subject, row["seed"])
    return EpisodeSpan(started_at, ended_at)


def check_finish(
    episode_id: str, span: EpisodeSpan, ended_at: pd.Timestamp, last_step_at: pd.Timestamp | None
) -> None:
    """Check the end time given to a recorded episode against its start and its last step."""
    subject = f"Episode {episode_id!r}"
    if ended_at < span.started_at:
        raise RecordError(f"{subject}: ended_at {_show(ended_at)} is before started_at {_show(span.started_at)}.")
    if last_step_at is not None and ended_at < last_step_at:
        raise RecordError(
            f"{subject}: ended_at {_show(ended_at)} is before its last recorded step at {_show(last_step_at)}."
        )


# ----------------------------------------------------------------------------- step frames
class _Frame:
    """One step frame under check: where its rows are, for messages that name them."""

    def __init__(self, episode_id: str, spec: StepFrameSpec, frame: pd.DataFrame) -> None:
        self.episode_id, self.spec, self.frame = episode_id, spec, frame

    def refuse(self, problem: str) -> RecordError:
        return RecordError(f"Episode {self.episode_id!r}: the {self.spec.name} frame ({self.spec.table}) {problem}.")

    def at(self, position: int) -> str:
        """"step 3, instrument 'AAA'" for the row at ``position``."""
        row = self.frame.iloc[position]
        where = f"step {_show(row['step'])}" if "step" in self.frame else f"row {_show(self.frame.index[position])}"
        if self.spec.per_instrument and "instrument" in self.frame:
            where += f", instrument {_show(row['instrument'])}"
        return where


def check_step_frame(episode_id: str, spec: StepFrameSpec, frame: pd.DataFrame, span: EpisodeSpan) -> None:
    """Check one step frame of ``episode_id`` completely (see the module docstring)."""
    if not isinstance(frame, pd.DataFrame):
        raise RecordError(f"Episode {episode_id!r}: the {spec.name} frame is a {type(frame).__name__}, not a DataFrame.")
    checked = _Frame(episode_id, spec, frame)
    _check_columns(checked)
    steps = _check_steps(checked)
    _check_instruments(checked)
    _check_unique_keys(checked)
    _check_numbers(checked)
    times = _check_step_times(checked, steps)
    _check_within_span(checked, times, span)
    _check_portfolio_value(checked, steps)
    _check_gross_exposure(checked, steps)


def _check_columns(checked: _Frame) -> None:
    spec, frame = checked.spec, checked.frame
    unknown = [str(c) for c in frame.columns if c not in spec.columns]
    if unknown:
        raise checked.refuse(f"has columns {unknown} that are not in the table ({list(spec.columns)})")
    if "episode_id" in frame.columns:
        others = sorted(set(frame["episode_id"].dropna().astype(str)) - {checked.episode_id})
        if others:
            raise checked.refuse(f"holds rows of other episodes {others[:3]}")
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        raise checked.refuse(f"lacks the required columns {missing}")


def _check_steps(checked: _Frame) -> np.ndarray:
    raw = checked.frame["step"]
    if ptypes.is_bool_dtype(raw.dtype):
        raise checked.refuse("has booleans in column 'step', which must hold integers")
    numbers_ = pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    bad = ~np.isfinite(numbers_) | (numbers_ != np.round(numbers_))
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise checked.refuse(
            f"has step {_show(raw.iloc[position])} at row {_show(checked.frame.index[position])}, not an integer"
        )
    if (numbers_ < 0).any():
        position = int(np.flatnonzero(numbers_ < 0)[0])
        raise checked.refuse(f"has the negative step {_show(raw.iloc[position])}")
    return numbers_.astype(np.int64)


def _check_instruments(checked: _Frame) -> None:
    if not checked.spec.per_instrument:
        return
    names = checked.frame["instrument"]
    empty = names.map(lambda v: not isinstance(v, str) or not v.strip()).to_numpy(dtype=bool)
    if empty.any():
        position = int(np.flatnonzero(empty)[0])
        step = checked.frame["step"].iloc[position]
        raise checked.refuse(f"has instrument {_show(names.iloc[position])} at step {_show(step)}, not a symbol")


def _check_unique_keys(checked: _Frame) -> None:
    repeated = checked.frame.duplicated(checked.spec.key, keep=False).to_numpy()
    if repeated.any():
        position = int(np.flatnonzero(repeated)[0])
        raise checked.refuse(f"has {checked.at(position)} more than once")


def _check_numbers(checked: _Frame) -> None:
    for column, nullable in checked.spec.numeric.items():
        if column in checked.frame.columns:
            _check_number_column(checked, column, nullable)


def _check_number_column(checked: _Frame, column: str, nullable: bool) -> None:
    raw = checked.frame[column]
    if ptypes.is_bool_dtype(raw.dtype):
        raise checked.refuse(f"has booleans in column {column!r}, which must hold numbers")
    parsed = pd.to_numeric(raw, errors="coerce")
    not_number = (parsed.isna() & raw.notna()).to_numpy(dtype=bool)
    if not_number.any():
        position = int(np.flatnonzero(not_number)[0])
        raise checked.refuse(f"has {_show(raw.iloc[position])} in column {column!r} at {checked.at(position)}, not a number")
    values = parsed.to_numpy(dtype="float64", na_value=np.nan)
    infinite = np.isinf(values)
    if infinite.any():
        position = int(np.flatnonzero(infinite)[0])
        raise checked.refuse(f"has {values[position]} in column {column!r} at {checked.at(position)}, not a finite number")
    missing = np.isnan(values)
    if not nullable and missing.any():
        position = int(np.flatnonzero(missing)[0])
        raise checked.refuse(
            f"has a missing value ({_show(raw.iloc[position])}) in NOT NULL column {column!r} at {checked.at(position)}"
        )


def _timestamps(checked: _Frame) -> pd.Series:
    raw = checked.frame["ts"]
    if ptypes.is_datetime64_dtype(raw.dtype) and not isinstance(raw.dtype, pd.DatetimeTZDtype):
        raise checked.refuse("has timestamps without a time zone in column 'ts'; localize them (e.g. to UTC)")
    try:
        return pd.to_datetime(raw, utc=True)
    except (TypeError, ValueError) as err:
        raise checked.refuse(f"has values in column 'ts' that are not timestamps ({err})") from None


def _check_step_times(checked: _Frame, steps: np.ndarray) -> pd.Series:
    """The one timestamp of each step, by step; refuses steps without, with two, or out of order."""
    stamps = _timestamps(checked)
    missing = stamps.isna().to_numpy()
    if missing.any():
        raise checked.refuse(f"has no ts at {checked.at(int(np.flatnonzero(missing)[0]))}")
    pairs = pd.DataFrame({"step": steps, "ts": stamps.reset_index(drop=True)}).drop_duplicates()
    doubled = pairs["step"].duplicated(keep=False).to_numpy()
    if doubled.any():
        step = pairs["step"].iloc[int(np.flatnonzero(doubled)[0])]
        both = sorted(pairs.loc[pairs["step"] == step, "ts"])[:2]
        raise checked.refuse(f"has two timestamps at step {step}: {_show(both[0])} and {_show(both[1])}")
    times = pairs.set_index("step")["ts"].sort_index()
    not_later = (times.diff() <= pd.Timedelta(0)).to_numpy()
    if not_later.any():
        position = int(np.flatnonzero(not_later)[0])
        raise checked.refuse(
            f"has step {times.index[position]} at {_show(times.iloc[position])}, not after step "
            f"{times.index[position - 1]} at {_show(times.iloc[position - 1])}: timestamps must increase with step"
        )
    return times


def _check_within_span(checked: _Frame, times: pd.Series, span: EpisodeSpan) -> None:
    early = (times < span.started_at).to_numpy()
    if early.any():
        position = int(np.flatnonzero(early)[0])
        raise checked.refuse(
            f"has step {times.index[position]} at {_show(times.iloc[position])}, before the episode "
            f"started ({_show(span.started_at)})"
        )
    if span.ended_at is not None:
        late = (times > span.ended_at).to_numpy()
        if late.any():
            position = int(np.flatnonzero(late)[0])
            raise checked.refuse(
                f"has step {times.index[position]} at {_show(times.iloc[position])}, after the episode "
                f"ended ({_show(span.ended_at)})"
            )


def _check_portfolio_value(checked: _Frame, steps: np.ndarray) -> None:
    column = PORTFOLIO_VALUE_COLUMNS.get(checked.spec.name)
    if column is None or not len(steps):
        return
    values = pd.to_numeric(checked.frame[column]).to_numpy(dtype="float64")
    wiped_out_early = (values <= 0) & (steps < steps.max())
    if wiped_out_early.any():
        position = int(np.flatnonzero(wiped_out_early)[0])
        raise checked.refuse(
            f"has {column} {values[position]} at {checked.at(position)}, but only the last step "
            f"(here {steps.max()}) may have {column} <= 0: a wiped-out account ends its episode"
        )


def _check_gross_exposure(checked: _Frame, steps: np.ndarray) -> None:
    if checked.spec.name != WEIGHTS_FRAME or not len(steps):
        return
    weights = pd.to_numeric(checked.frame[WEIGHT_COLUMN]).to_numpy(dtype="float64")
    gross = pd.Series(np.abs(weights)).groupby(steps).sum()
    over = gross[gross > MAX_GROSS_EXPOSURE + _EXPOSURE_TOLERANCE]
    if len(over):
        raise checked.refuse(
            f"has a gross exposure (sum of |weight|) of {over.iloc[0]:.6g} at step {over.index[0]}, "
            f"above the maximum leverage {MAX_GROSS_EXPOSURE:g}"
        )


# ----------------------------------------------------------------------------- across frames
def check_frames_agree(episode_id: str, frames: Mapping[str, pd.DataFrame | None]) -> None:
    """Steps that frames of one complete episode must share (frames already checked one by one)."""
    steps = {
        name: set(pd.to_numeric(frame["step"]).astype("int64"))
        for name, frame in frames.items()
        if frame is not None and len(frame)
    }
    subject = f"Episode {episode_id!r}"
    if "actions" in steps and WEIGHTS_FRAME in steps and steps["actions"] != steps[WEIGHTS_FRAME]:
        step = min(steps["actions"] ^ steps[WEIGHTS_FRAME])
        only = "actions" if step in steps["actions"] else WEIGHTS_FRAME
        raise RecordError(
            f"{subject}: step {step} is in the {only} frame only, but one decision books both an action "
            "and a target weight, so both frames must cover the same steps."
        )
    if "rewards" in steps and "equity" in steps and not steps["rewards"] <= steps["equity"]:
        step = min(steps["rewards"] - steps["equity"])
        raise RecordError(f"{subject}: step {step} has a reward but no point on the equity curve.")


# ----------------------------------------------------------------------------- policies
def check_policy_record(record: Mapping[str, Any], *, columns: Sequence[str]) -> dict[str, Any]:
    """Check one tt_policy record; returns it as written (a JSON-text config parsed)."""
    policy_id = record.get("policy_id")
    if not isinstance(policy_id, str) or not policy_id.strip() or policy_id != policy_id.strip():
        raise RecordError(f"A policy record needs a non-empty policy_id without surrounding blanks, got {_show(policy_id)}.")
    subject = f"Policy {policy_id!r}"
    _check_known_fields(f"{subject} record", record, columns)
    for field in ("algo", "code_version"):
        value = record.get(field)
        if not isinstance(value, str) or not value.strip():
            raise RecordError(f"{subject}: {field} {_show(value)} is not a non-empty text.")
    for field in POLICY_HASH_FIELDS:
        _check_hash(subject, field, record.get(field))
    _check_seed(subject, record.get("seed"))
    config = _config_mapping(subject, record.get("config"))
    _check_timesteps(subject, config)
    _check_config_lineage(subject, record, config)
    return dict(record) | {"config": config}


def _check_hash(subject: str, field: str, value: Any) -> None:
    if not isinstance(value, str) or not _HASH_TOKEN.fullmatch(value) or value.lower() in _NULL_WORDS:
        raise RecordError(
            f"{subject}: {field} {_show(value)} is not a hash (1 to 128 letters, digits or . _ : + -)."
        )


def _config_mapping(subject: str, config: Any) -> dict[str, Any]:
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError as err:
            raise RecordError(f"{subject}: config is text that is not JSON ({err}).") from None
    if not isinstance(config, Mapping):
        raise RecordError(f"{subject}: config is a {type(config).__name__}, not a mapping of settings.")
    return dict(config)


def _check_timesteps(subject: str, config: Mapping[str, Any]) -> None:
    training = config.get("training")
    if not isinstance(training, Mapping) or "total_timesteps" not in training:
        return
    timesteps = training["total_timesteps"]
    if not _is_integer(timesteps) or timesteps <= 0:
        raise RecordError(f"{subject}: config training.total_timesteps {_show(timesteps)} is not a positive integer.")


def _check_config_lineage(subject: str, record: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    # the pipeline copies the lineage into the config (seed as text): both must name the same run
    lineage = config.get("lineage")
    if not isinstance(lineage, Mapping):
        return
    for field in ("policy_id", *POLICY_HASH_FIELDS, "seed"):
        if field in lineage and str(lineage[field]) != str(record.get(field)):
            raise RecordError(
                f"{subject}: config lineage {field} {_show(lineage[field])} differs from the record's "
                f"{field} {_show(record.get(field))}."
            )


def check_same_lineage(policy_id: str, stored: Mapping[str, Any], record: Mapping[str, Any]) -> None:
    """Refuse re-registering ``policy_id`` with a lineage other than the stored one."""
    for field in LINEAGE_FIELDS:
        before, after = stored.get(field), record.get(field)
        same = int(before) == int(after) if field == "seed" else before == after
        if not same:
            raise RecordError(
                f"Policy {policy_id!r} is already registered with {field} {_show(before)}, not {_show(after)}: "
                "one policy id names one lineage (algo, data, features, config, seed), so register the "
                "new policy under its own id."
            )

