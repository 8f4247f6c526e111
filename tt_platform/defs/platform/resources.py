"""Resources every domain shares: platform settings, the run config and the store."""

from __future__ import annotations

from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from pydantic import PrivateAttr
from sqlalchemy.engine import Engine

from tt_platform.config.dagster import config_values, dagster_config_class
from tt_platform.config.run_config import RunConfig, load_run_config, parse_run_config
from tt_platform.settings import PlatformSettings

RUN_CONFIG_RESOURCE_KEY = "run_config"
# where a bad value sits in a Dagster run config; error messages start with it
RUN_CONFIG_SOURCE = f"resources.{RUN_CONFIG_RESOURCE_KEY}.config"

# One Dagster field per run-config key, generated from RunConfig: same sections, keys, defaults
# and descriptions, so the Launchpad scaffolds a complete run config.
_RunConfigFields = dagster_config_class(RunConfig, base=dg.ConfigurableResource, name="RunConfigFields")


class RunConfigResource(_RunConfigFields):  # type: ignore[misc, valid-type]
    """The run config as Dagster config: the same keys as a run-config YAML file (name, mode,
    universe, data, env, training, evaluation), validated into a ``RunConfig`` by ``load()``.

    ``data.end`` left empty means the last completed session as of the run's creation, so every
    step of a run (and its re-executions) reads the same range.
    """

    # how this run executes, not what it computes: kept out of the run config and its hash
    # (null, which Dagster's schema allows for a key with a default, means the default)
    resume_checkpoint: str | None = ""
    progress: bool | None = False

    _as_of: datetime | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._as_of = _run_created_at(context)

    def load(self, *, last_session: date | None = None) -> RunConfig:
        """The validated run config; a bad value raises ``RunConfigError`` naming the key path
        (``resources.run_config.config: env.window_size: ...``).

        ``last_session`` pins what an omitted or later ``data.end`` resolves to (e.g. the
        market clock's session); by default the last session completed when the run was created.
        """
        config = parse_run_config(self.run_config_values(), source=RUN_CONFIG_SOURCE, as_of=self._as_of,
                                  last_session=last_session)
        for note in config.notes:
            dg.get_dagster_logger().warning(note)
        return config

    def run_config_values(self) -> dict[str, Any]:
        """The run-config keys of this resource as a plain mapping (as in a YAML file)."""
        return config_values(self, RunConfig)

    @classmethod
    def from_run_config(cls, config: RunConfig, *, resume_checkpoint: Path | None = None,
                        progress: bool = False) -> RunConfigResource:
        """The resource carrying ``config`` (e.g. for ``Definitions`` or a test)."""
        return cls(**_resource_config(config, resume_checkpoint=resume_checkpoint, progress=progress))


def deployment_run_config_resource() -> RunConfigResource:
    """The ``run_config`` resource of the definitions: the deployment's run config as its
    defaults (a run config given at launch wins), the class defaults when TT_RUN_CONFIG is unset."""
    from tt_platform.settings import get_settings

    if get_settings().run_config_file is None:
        return RunConfigResource()
    return RunConfigResource.from_run_config(deployment_config())


def deployment_config() -> RunConfig:
    """The run config of runs started without one (schedules, sensors, automation): the file
    TT_RUN_CONFIG names, else the built-in demo config."""
    from tt_platform.settings import get_settings

    return load_run_config(get_settings().run_config_file)


def dagster_run_config(config: RunConfig, *, resume_checkpoint: Path | None = None,
                       progress: bool = False) -> dict[str, Any]:
    """The Dagster run config that runs ``config``: ``{"resources": {"run_config": {"config":
    {...}}}}`` with every key, for ``execute_in_process``, ``RunRequest`` or the Launchpad.

    ``data.end`` stays as written (empty: the last completed session when the run is created);
    paths are made absolute, since a launched run does not know where the YAML file was.
    """
    values = _resource_config(config, resume_checkpoint=resume_checkpoint, progress=progress)
    return {"resources": {RUN_CONFIG_RESOURCE_KEY: {"config": values}}}


def dagster_run_config_yaml(config: RunConfig, *, resume_checkpoint: Path | None = None,
                            progress: bool = False) -> str:
    """``dagster_run_config`` as YAML, for ``dagster job launch -c``."""
    run_config = dagster_run_config(config, resume_checkpoint=resume_checkpoint, progress=progress)
    return yaml.safe_dump(run_config, sort_keys=False, default_flow_style=False)


def _resource_config(config: RunConfig, *, resume_checkpoint: Path | None, progress: bool) -> dict[str, Any]:
    values = config.as_written()
    for section, key in (("universe", "watchlist"), ("data", "csv_dir")):
        if values[section][key] is not None:
            values[section][key] = str(Path(values[section][key]).resolve())
    return values | {
        "resume_checkpoint": str(Path(resume_checkpoint).resolve()) if resume_checkpoint else "",
        "progress": progress,
    }


def _run_created_at(context: dg.InitResourceContext) -> datetime | None:
    """When the run (or the run it re-executes) was created; None outside a recorded run."""
    run, instance = context.dagster_run, context.instance
    if run is None or instance is None:
        return None
    try:
        record = instance.get_run_record_by_id(run.root_run_id or run.run_id)
    except Exception:  # noqa: BLE001 - the clock is a fine fallback
        return None
    return None if record is None else record.create_timestamp


class PlatformResource(dg.ConfigurableResource):
    """Platform settings (TT_HOME, TT_DB_URL, IB_*, MLflow) and the store engine.

    ``tt_home`` overrides the environment when given; secrets stay in the environment and never
    become Dagster config or metadata.
    """

    tt_home: str = ""

    _engine: Engine | None = PrivateAttr(default=None)

    @cached_property
    def settings(self) -> PlatformSettings:
        overrides = {"TT_HOME": self.tt_home} if self.tt_home else {}
        return PlatformSettings(**overrides)

    def engine(self) -> Engine:
        if self._engine is None:
            from tt_platform.pipeline.store_access import open_store

            self._engine = open_store(self.settings)
        return self._engine
