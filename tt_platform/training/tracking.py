"""MLflow tracking: one run per training, with params, metrics, artifacts and a registered model.

Backend choice: MLflow 3 refuses its file store (``file:`` URIs / plain folders) unless
``MLFLOW_ALLOW_FILE_STORE`` is set, and the file store is in maintenance mode. A ``file:`` URI
(the platform default, ``$TT_HOME/mlruns``) is therefore mapped to a SQLite backend inside that
folder — ``<folder>/mlflow.db`` with artifacts under ``<folder>/artifacts`` — which also supports
the model registry. Browse it with
``mlflow ui --backend-store-uri sqlite:///<folder>/mlflow.db``. ``sqlite:``, ``postgresql+psycopg2:``
and ``http(s):`` URIs are used as given.

Everything goes through an explicit ``MlflowClient`` (no global ``mlflow.set_tracking_uri``), so
several trackers can live in one process.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tt_platform.settings import mask_url_password

log = logging.getLogger(__name__)

# Parameter names that may carry secrets are never logged.
SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[_-]?key|account|credential|db_url|dsn",
                        re.IGNORECASE)
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
PARAM_BATCH = 100
METRIC_BATCH = 1000
DEFAULT_UI_URL = "http://localhost:5000"
PARENT_RUN_TAG = "mlflow.parentRunId"  # how MLflow nests a run under another
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# the process that owns a run, so a run left RUNNING by a killed process can be recognised
# (``tt_platform.pipeline.recovery``)
PID_TAG = "tt.pid"
HOST_TAG = "tt.host"


def process_tags() -> dict[str, str]:
    """This process's pid and host, as stored on every run it starts."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


@dataclass(frozen=True)
class TrackingBackend:
    store_uri: str
    artifact_location: str | None  # None: the server decides


def resolve_backend(tracking_uri: str) -> TrackingBackend:
    """Map a tracking URI to the store MLflow can use (see the module docstring)."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme in ("", "file"):
        folder = Path(unquote(parsed.path) if parsed.scheme == "file" else tracking_uri)
        folder = folder.expanduser().resolve()
        folder.mkdir(parents=True, exist_ok=True)
        return TrackingBackend(store_uri=f"sqlite:///{folder / 'mlflow.db'}",
                               artifact_location=(folder / "artifacts").as_uri())
    if parsed.scheme == "postgresql":
        # SQLAlchemy 2 maps bare postgresql:// to psycopg 3, which is not installed.
        return TrackingBackend(tracking_uri.replace("postgresql://", "postgresql+psycopg2://", 1), None)
    return TrackingBackend(tracking_uri, None)


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mappings to dotted keys; values as strings (JSON for lists); secrets dropped."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if SECRET_KEY.search(str(key)):
            continue
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, prefix=f"{name}."))
            continue
        if isinstance(value, (list, tuple)):
            text = json.dumps(value, default=str)
        else:
            text = str(value)
        flat[name] = text[:MAX_PARAM_CHARS]
    return flat


class TrackedRun:
    """Handle on an active MLflow run."""

    def __init__(self, tracker: MlflowTracker, run_id: str, experiment_id: str) -> None:
        self.tracker = tracker
        self.client = tracker.client
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.registered_version: str | None = None

    @property
    def ui_url(self) -> str:
        return f"{self.tracker.ui_url}/#/experiments/{self.experiment_id}/runs/{self.run_id}"

    def log_params(self, params: Mapping[str, Any]) -> None:
        items = [Param(k, v) for k, v in flatten_params(params).items()]
        for i in range(0, len(items), PARAM_BATCH):
            self.client.log_batch(self.run_id, params=items[i:i + PARAM_BATCH])

    def log_metrics(self, metrics: Mapping[str, float | None], step: int | None = None) -> None:
        """Logs finite numbers; None (an undefined metric) is skipped."""
        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()
                 if v is not None]
        for i in range(0, len(items), METRIC_BATCH):
            self.client.log_batch(self.run_id, metrics=items[i:i + METRIC_BATCH])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        items = [RunTag(k, str(v)) for k, v in tags.items() if not SECRET_KEY.search(k)]
        if items:
            self.client.log_batch(self.run_id, tags=items)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"artifact {path} does not exist")
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_dict(self, data: Any, filename: str, artifact_path: str | None = None) -> None:
        """Write ``data`` as JSON named ``filename`` into the run's artifacts."""
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / filename
            target.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
            self.client.log_artifact(self.run_id, str(target), artifact_path)

    def register_model(self, artifact_path: str, name: str | None = None) -> str:
        """Register ``runs:/<run>/<artifact_path>`` as a new version of ``name``; returns the
        version number."""
        name = name or self.tracker.registered_model_name
        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = self.client.create_model_version(
            name, f"runs:/{self.run_id}/{artifact_path}", run_id=self.run_id)
        self.registered_version = str(version.version)
        return self.registered_version


class MlflowTracker:
    """``with tracker.start_run(run_name=...) as run:`` -- one run per training.

    ``tracking_uri`` None uses ``get_settings().mlflow_uri``. The run ends FINISHED, or FAILED
    when the block raises (the exception propagates). Each run is tagged with the pid and host
    of the process that started it (``tt.pid``, ``tt.host``), so that a run whose process died
    without ending it can be marked FAILED later (``tt_platform.pipeline.recovery``).
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str = "tt-platform", *,
                 registered_model_name: str = "tt-policy", ui_url: str | None = None) -> None:
        if tracking_uri is None:
            from tt_platform.settings import get_settings

            tracking_uri = get_settings().mlflow_uri
        if not experiment:
            raise ValueError("MlflowTracker.experiment must be a non-empty name")
        self.tracking_uri = tracking_uri
        self.backend = resolve_backend(tracking_uri)
        self.experiment = experiment
        self.registered_model_name = registered_model_name
        if ui_url is None:
            ui_url = tracking_uri if urlparse(tracking_uri).scheme in ("http", "https") else DEFAULT_UI_URL
            # the link lands in Dagster metadata and logs: never with credentials in it
            ui_url = mask_url_password(ui_url)
        self.ui_url = ui_url.rstrip("/")
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None
        self._default_tags: dict[str, Any] = {}

    @property
    def client(self) -> MlflowClient:
        # Created on first use: a database-backed client connects (and retries) at creation.
        if self._client is None:
            self._client = MlflowClient(tracking_uri=self.backend.store_uri,
                                        registry_uri=self.backend.store_uri)
        return self._client

    def __repr__(self) -> str:
        # Never show credentials embedded in a database URI.
        parsed = urlparse(self.backend.store_uri)
        shown = self.backend.store_uri
        if parsed.password:
            shown = shown.replace(f":{parsed.password}@", ":***@")
        return f"MlflowTracker(store={shown!r}, experiment={self.experiment!r})"

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                try:
                    # the tag opens the experiment in MLflow's model-training view, not GenAI's
                    self._experiment_id = self.client.create_experiment(
                        self.experiment, artifact_location=self.backend.artifact_location,
                        tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
                except MlflowException as exc:  # created concurrently by another process
                    if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                        raise
                    self._experiment_id = self.client.get_experiment_by_name(
                        self.experiment).experiment_id
            else:
                self._experiment_id = found.experiment_id
                if found.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
                    self.client.set_experiment_tag(self._experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return self._experiment_id

    def child_of(self, parent_run_id: str, tags: Mapping[str, Any] | None = None) -> MlflowTracker:
        """The same store and experiment; every run it starts is a child of ``parent_run_id``
        (a walk-forward's fold and seed runs under the walk-forward's run) with ``tags``."""
        child = copy.copy(self)
        child._default_tags = dict(self._default_tags) | dict(tags or {}) | {PARENT_RUN_TAG: parent_run_id}
        return child

    @contextmanager
    def start_run(self, run_name: str | None = None, tags: Mapping[str, Any] | None = None
                  ) -> Iterator[TrackedRun]:
        run = self.client.create_run(
            self.experiment_id, run_name=run_name,
            tags={k: str(v) for k, v in (self._default_tags | dict(tags or {})).items()
                  if not SECRET_KEY.search(k)}
            | process_tags())
        handle = TrackedRun(self, run.info.run_id, self.experiment_id)
        try:
            yield handle
        except BaseException:
            self.client.set_terminated(handle.run_id, status="FAILED")
            raise
        self.client.set_terminated(handle.run_id, status="FINISHED")
