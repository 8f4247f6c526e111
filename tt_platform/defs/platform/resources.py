"""Resources every domain shares: platform settings, the run config and the store."""

from __future__ import annotations

import json
from functools import cached_property

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy.engine import Engine

from tt_platform.config.run_config import RunConfig, load_run_config
from tt_platform.settings import PlatformSettings


class RunConfigResource(dg.ConfigurableResource):
    """Which run config the assets follow: a YAML path (empty: the built-in demo config), plus
    dotted overrides as JSON (what ``tt`` flags such as ``--interval`` set)."""

    config_path: str = ""
    overrides_json: str = ""
    # how this run executes, not what it computes: kept out of the run config and its hash
    resume_checkpoint: str = ""
    progress: bool = False

    def load(self) -> RunConfig:
        config = load_run_config(self.config_path or None)
        if self.overrides_json:
            config = config.with_overrides(**json.loads(self.overrides_json))
        return config


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
