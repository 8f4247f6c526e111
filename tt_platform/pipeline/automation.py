"""What the platform's schedules and sensors decide, without Dagster: which days were exchange
sessions (and why not), which month partition a session belongs to, the run keys that keep a
tick or a policy from being run twice, and the state the fold sensor carries between ticks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time
from typing import Any

import pandas as pd

from tt_platform.data.calendars import DEFAULT_CALENDAR, get_exchange_calendar
from tt_platform.pipeline.months import month_key

# what the calendars are called in messages
EXCHANGE_NAMES = {"XNYS": "NYSE", "XNAS": "Nasdaq"}

# run tags the platform's automation sets (and the UI filters on)
KIND_TAG = "tt/kind"
SESSION_TAG = "tt/session"
EARLY_CLOSE_TAG = "tt/early_close"
WEEK_TAG = "tt/week"
POLICY_TAG = "tt/policy_id"
PLAN_TAG = "tt/walk_forward_plan"
STEP_TAG = "tt/walk_forward_step"

# Dagster's own tags on runs its daemon starts
SENSOR_NAME_TAG = "dagster/sensor_name"
SCHEDULE_NAME_TAG = "dagster/schedule_name"
# only ``tt`` sets this one: it names the process that executes the run in place
TT_PID_TAG = "tt/pid"

# keys of the run-config resource that say how a run executed, not what it computes
EXECUTION_ONLY_KEYS = ("resume_checkpoint", "progress")


@dataclass(frozen=True)
class SessionCheck:
    """Whether ``day`` was a session of ``calendar``; ``reason`` says why not (empty on a session)."""

    day: date
    calendar: str
    is_session: bool
    reason: str = ""
    early_close: time | None = None  # the local close on a half day

    @property
    def partition_key(self) -> str:
        """The month partition holding this session's bars."""
        return month_key(self.day)


def exchange_name(calendar: str) -> str:
    return EXCHANGE_NAMES.get(calendar, calendar)


def check_session(day: date, calendar: str = DEFAULT_CALENDAR) -> SessionCheck:
    """Ask the exchange calendar about ``day``: a session (half days are sessions), or a weekend
    or holiday, named when the calendar names it. A day outside the calendar's range is a
    ``ValueError`` naming the range."""
    cal = get_exchange_calendar(calendar)
    stamp = pd.Timestamp(day)
    first, last = cal.first_session.date(), cal.last_session.date()
    if not first <= day <= last:
        raise ValueError(f"{day} is outside the {cal.name} calendar ({first}..{last})")
    exchange = exchange_name(cal.name)
    if cal.is_session(stamp):
        early = None
        if stamp in cal.early_closes:
            early = cal.session_close(stamp).tz_convert(cal.tz).time()
        return SessionCheck(day, cal.name, True, early_close=early)
    weekday = day.strftime("%A")
    if day.weekday() >= 5:
        return SessionCheck(day, cal.name, False, f"{day} is a {weekday}: not a {exchange} session")
    holiday = _holiday_name(cal, stamp)
    what = f"holiday: {holiday}" if holiday else "holiday"
    return SessionCheck(day, cal.name, False, f"{day} ({weekday}) is not a {exchange} session ({what})")


def _holiday_name(cal: Any, stamp: pd.Timestamp) -> str | None:
    """The calendar's name for a regular holiday; ad hoc closures (national days of mourning,
    storms) carry no name in exchange_calendars."""
    regular = getattr(cal, "regular_holidays", None)
    if regular is None:
        return None
    names = regular.holidays(stamp, stamp, return_name=True)
    return str(names.iloc[0]) if len(names) else None


def nightly_run_key(session: date) -> str:
    """One nightly ingest per session: a tick evaluated again (daemon restart) is not run twice."""
    return f"nightly-bars:{session.isoformat()}"


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def retrain_run_key(day: date) -> str:
    """One retraining per ISO week."""
    return f"retrain:{iso_week(day)}"


def walk_forward_run_key(policy_id: str) -> str:
    return f"walk-forward:{policy_id}"


def fold_run_key(plan_key: str, fold_key: str) -> str:
    return f"{plan_key}:{fold_key}"


def report_run_key(plan_key: str) -> str:
    return f"{plan_key}:report"


def started_by_automation(tags: Mapping[str, str]) -> bool:
    """Whether a run was requested by a sensor or a schedule (and not executed by ``tt``, which
    follows a walk-forward plan with its folds and report itself)."""
    if TT_PID_TAG in tags:
        return False
    return SENSOR_NAME_TAG in tags or SCHEDULE_NAME_TAG in tags


def run_config_section(run_config: Mapping[str, Any], resource_key: str = "run_config") -> dict[str, Any]:
    """The run-config keys a Dagster run was given (``resources.<resource_key>.config``), without
    the keys that only said how that run executed (a checkpoint to resume, a progress bar)."""
    try:
        section = run_config["resources"][resource_key]["config"]
    except (KeyError, TypeError):
        raise ValueError(f"the run has no resources.{resource_key}.config in its run config") from None
    if not isinstance(section, Mapping):
        raise ValueError(f"resources.{resource_key}.config is a {type(section).__name__}, not a mapping")
    return {key: value for key, value in section.items() if key not in EXECUTION_ONLY_KEYS}


def in_fold_order(keys: Iterable[str]) -> list[str]:
    """Fold partition keys (``f03_2019-06-04``) by fold number, so ``f10`` follows ``f09``."""

    def number(key: str) -> tuple[int, str]:
        head = key.split("_", 1)[0].lstrip("f")
        return (int(head) if head.isdigit() else -1, key)

    return sorted(keys, key=number)


# the fold sensor's stages for the plan it follows
FOLDS_REQUESTED = "folds_requested"
FINISHED = "finished"


@dataclass(frozen=True)
class FoldSensorCursor:
    """The walk_forward_plan materialization (storage id) the fold sensor follows and how far it
    got: its folds requested, or finished (report requested, or nothing to do)."""

    plan_storage_id: int
    stage: str

    def serialize(self) -> str:
        return json.dumps({"plan_storage_id": self.plan_storage_id, "stage": self.stage})

    @classmethod
    def parse(cls, text: str | None) -> FoldSensorCursor | None:
        """None for no cursor; a cursor that is not this sensor's is a ``ValueError`` naming it."""
        if not text:
            return None
        try:
            payload = json.loads(text)
            cursor = cls(int(payload["plan_storage_id"]), str(payload["stage"]))
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"fold sensor cursor {text[:80]!r} is not {{\"plan_storage_id\": ..., \"stage\": ...}}") from None
        if cursor.stage not in (FOLDS_REQUESTED, FINISHED):
            raise ValueError(f"fold sensor cursor stage {cursor.stage!r} is not {FOLDS_REQUESTED} or {FINISHED}")
        return cursor


def policy_cursor(text: str | None) -> int | None:
    """The new-policy sensor's cursor: the storage id of the last trained_policy materialization
    seen; None when the sensor has not run yet."""
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"new-policy sensor cursor {text[:80]!r} is not a storage id (an integer)") from None
