"""Process set-up shared by the ``tt`` CLI and ``make ui``: where Dagster keeps its state.

Dagster's instance (dagster.yaml at the repository root) reads its database URL and folders from
the environment; this module derives them from the platform settings, so the embedded PostgreSQL
serves Dagster's storage too and a fresh machine needs nothing but TT_HOME. These are per-machine
values, the same for ``tt`` and the webserver; nothing about a single run travels through the
environment.

``workspace_file`` is the workspace the webserver loads (``tt ui``) and whose code location ``tt``
records its runs under.

Plain Dagster commands run from the repository root (``dagster dev``, ``dagster job launch``,
``dagster definitions validate``) read the same dagster.yaml without ``tt`` having set anything:
its ``instance_class`` is ``PlatformInstance``, whose configuration hook fills in the variables
dagster.yaml reads (from TT_HOME, starting the embedded PostgreSQL when TT_DB_URL is unset)
before Dagster resolves them. Variables already set still win, so a deployment that sets them
(docker-compose) is unaffected.

``tt ui`` runs the webserver and the daemon with ``DAGSTER_HOME`` at ``TT_HOME/dagster_home``
(``prepare_ui``): Dagster writes files of its own into DAGSTER_HOME (``.nux/``, ``logs/``,
``.logs_queue/``), which belong next to the platform's other state, not in the checkout. That
folder holds a copy of the repository's dagster.yaml, refreshed at every start, and the same
variables as ``tt`` derives: ``tt`` commands (whose DAGSTER_HOME stays the repository root) and
the UI therefore read and write one instance (one storage URL, one artifact and compute-log
folder).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from typing import Any

from dagster import DagsterInstance

from tt_platform.settings import PlatformSettings
from tt_platform.store.engine import database_url

REPO_ROOT = Path(__file__).resolve().parents[1]


def dagster_home() -> Path:
    configured = os.environ.get("DAGSTER_HOME")
    home = Path(configured) if configured else REPO_ROOT
    if not (home / "dagster.yaml").is_file():
        raise FileNotFoundError(
            f"{home / 'dagster.yaml'} not found: run from a clone of tt-platform or set DAGSTER_HOME "
            "to a folder holding the platform's dagster.yaml"
        )
    return home


def workspace_file(home: Path | None = None) -> Path:
    """The workspace.yaml next to the instance's dagster.yaml (``home``, else DAGSTER_HOME), else
    the repository's."""
    configured = str(home) if home is not None else os.environ.get("DAGSTER_HOME")
    for folder in ([Path(configured)] if configured else []) + [REPO_ROOT]:
        if (folder / "workspace.yaml").is_file():
            return folder / "workspace.yaml"
    raise FileNotFoundError(
        f"workspace.yaml not found in DAGSTER_HOME or {REPO_ROOT}: run from a clone of tt-platform or put "
        "the platform's workspace.yaml next to its dagster.yaml"
    )


PLANNED_EVENTS_FLAG = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


def dagster_environment(settings: PlatformSettings, *, with_dagster_home: bool = True) -> dict[str, str]:
    """The variables dagster.yaml reads, for this process and the ones it starts. Values already
    in the environment win (a deployment may keep Dagster's storage in its own database)."""
    state = settings.home / "dagster"
    dagster_url = database_url(settings)
    if settings.db_url is None:
        # the embedded server is a development store: Dagster writes one event per partition
        # key, and not waiting for each commit's fsync makes long backfills much faster
        dagster_url += ("&" if "?" in dagster_url else "?") + "options=-csynchronous_commit%3Doff"
    derived = {
        **({"DAGSTER_HOME": str(dagster_home())} if with_dagster_home else {}),
        "TT_HOME": str(settings.home),
        "TT_DAGSTER_PG_URL": dagster_url,
        "TT_DAGSTER_STORAGE": str(state / "storage"),
        "TT_DAGSTER_COMPUTE_LOGS": str(state / "compute_logs"),
        # a range of month partitions runs as one run: Dagster then plans it with one event
        # instead of one per partition (half the events of a long backfill)
        PLANNED_EVENTS_FLAG: "1",
    }
    return {key: os.environ.get(key) or value for key, value in derived.items()}


def prepare_dagster(settings: PlatformSettings) -> dict[str, str]:
    env = dagster_environment(settings)
    for folder in (env["TT_DAGSTER_STORAGE"], env["TT_DAGSTER_COMPUTE_LOGS"]):
        Path(folder).mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    return env


UI_HOME_FOLDER = "dagster_home"  # under TT_HOME: DAGSTER_HOME of `tt ui`'s webserver and daemon
INSTANCE_FILE = "dagster.yaml"
_COPY_HEADER = "# Copied from {source} by `tt ui` at every start: edit that file, not this copy.\n"


def ui_dagster_home(settings: PlatformSettings) -> Path:
    """DAGSTER_HOME for ``tt ui``: the one set in the environment when it names a folder other
    than the repository root (a deployment's own instance), else TT_HOME/dagster_home."""
    configured = os.environ.get("DAGSTER_HOME")
    if configured and Path(configured).expanduser().resolve() != REPO_ROOT:
        return dagster_home()
    return settings.home / UI_HOME_FOLDER


def write_instance_copy(home: Path) -> Path:
    """The repository's dagster.yaml, copied into ``home`` unless the copy is current already."""
    source = REPO_ROOT / INSTANCE_FILE
    if not source.is_file():
        raise FileNotFoundError(f"{source} not found: run from a clone of tt-platform or set DAGSTER_HOME")
    text = _COPY_HEADER.format(source=source) + source.read_text(encoding="utf-8")
    target = home / INSTANCE_FILE
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return target
    home.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{INSTANCE_FILE}.{os.getpid()}")
    staging.write_text(text, encoding="utf-8")
    # a webserver starting meanwhile reads the old copy or the new one, never half of one
    staging.replace(target)
    return target


@dataclass(frozen=True)
class UiSetup:
    """What ``tt ui`` starts its processes with."""

    dagster_home: Path
    workspace: Path
    # the variables to add to the environment of the webserver and the daemon
    environment: dict[str, str]


def prepare_ui(settings: PlatformSettings) -> UiSetup:
    """DAGSTER_HOME under TT_HOME (with the repository's dagster.yaml) and the variables ``tt``
    derives for its own runs, so the UI shows the instance ``tt`` writes to."""
    home = ui_dagster_home(settings)
    if home == settings.home / UI_HOME_FOLDER:
        write_instance_copy(home)
        # Dagster's own "seen" marker: no newsletter pop-up over the UI (telemetry is off too)
        nux = home / ".nux" / "nux.yaml"
        if not nux.exists():
            nux.parent.mkdir(parents=True, exist_ok=True)
            nux.write_text("seen: 1\n")
    env = dagster_environment(settings, with_dagster_home=False) | {"DAGSTER_HOME": str(home)}
    for folder in (env["TT_DAGSTER_STORAGE"], env["TT_DAGSTER_COMPUTE_LOGS"]):
        Path(folder).mkdir(parents=True, exist_ok=True)
    return UiSetup(dagster_home=home, workspace=workspace_file(home), environment=env)


# what dagster.yaml reads from the environment
INSTANCE_VARIABLES = ("TT_DAGSTER_PG_URL", "TT_DAGSTER_STORAGE", "TT_DAGSTER_COMPUTE_LOGS")


class PlatformSetupError(RuntimeError):
    """The environment dagster.yaml needs cannot be derived; the message says what to fix."""


def ensure_instance_environment() -> None:
    """Fill in the variables dagster.yaml reads that are not set yet, the way ``tt`` does
    (``dagster_environment``), for a Dagster command started without ``tt``."""
    if all(os.environ.get(name) for name in INSTANCE_VARIABLES):
        return
    from tt_platform.settings import get_settings
    from tt_platform.store.embedded import EmbeddedPostgresError
    from tt_platform.store.engine import StoreConfigError, check_connection

    try:
        settings = get_settings()
        env = dagster_environment(settings, with_dagster_home=False)
        if not os.environ.get("TT_DAGSTER_PG_URL"):
            check_connection(env["TT_DAGSTER_PG_URL"])
        for folder in (env["TT_DAGSTER_STORAGE"], env["TT_DAGSTER_COMPUTE_LOGS"]):
            Path(folder).mkdir(parents=True, exist_ok=True)
    except (StoreConfigError, EmbeddedPostgresError, OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PlatformSetupError(
            f"tt-platform's Dagster instance: {first_line} (set TT_DAGSTER_PG_URL, or fix TT_DB_URL / TT_HOME; "
            "`tt info` checks the settings)"
        ) from None
    for key, value in env.items():
        os.environ.setdefault(key, value)


class PlatformInstance(DagsterInstance):
    """Dagster's instance for dagster.yaml's ``instance_class``: behaves exactly like
    ``DagsterInstance``; Dagster calls ``config_schema`` while reading dagster.yaml, before it
    resolves the ``env:`` values, which is where the platform's defaults are filled in."""

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        try:
            ensure_instance_environment()
        except PlatformSetupError as err:
            # one line for the person at the terminal instead of a long traceback
            print(err, file=sys.stderr)
            raise SystemExit(2) from None
        return {}

    @staticmethod
    def config_defaults(base_dir: str):
        from dagster._core.instance.ref import InstanceRef

        return InstanceRef.config_defaults(base_dir)
