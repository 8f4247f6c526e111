"""MLflow tracking as a Dagster resource (a small ConfigurableResource rather than the legacy
dagster-mlflow resource, whose run only closes through a job hook)."""

from __future__ import annotations

import dagster as dg

from tt_platform.settings import get_settings
from tt_platform.training.tracking import MlflowTracker


class MlflowResource(dg.ConfigurableResource):
    """``tracking_uri`` empty means MLFLOW_TRACKING_URI, or the local store under TT_HOME."""

    tracking_uri: str = ""
    experiment: str = "tt-platform"

    def tracker(self) -> MlflowTracker:
        return MlflowTracker(self.tracking_uri or get_settings().mlflow_uri, self.experiment)
