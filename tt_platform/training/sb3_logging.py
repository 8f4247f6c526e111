"""SB3's own training numbers (losses, KL, entropy, explained variance, fps) in the MLflow run.

SB3 records them with its ``Logger`` at every update; this output format forwards each dump to
the run as metrics stepped by env timesteps, so the MLflow UI charts them next to the episode
metrics. Names keep SB3's, with ``/`` (``train/value_loss``): MLflow groups them by prefix.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from stable_baselines3.common.logger import KVWriter, Logger

from tt_platform.training.tracking import TrackedRun

# rollout/ep_* duplicate our own episode metrics; time/* other than fps are clock readings
SKIPPED_PREFIXES = ("rollout/ep_", "time/iterations", "time/time_elapsed", "time/total_timesteps")


class MlflowOutputFormat(KVWriter):
    def __init__(self, run: TrackedRun) -> None:
        self.run = run

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        metrics = {
            key: float(value)
            for key, value in key_values.items()
            if isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(float(value)) and not key.startswith(SKIPPED_PREFIXES)
        }
        if metrics:
            self.run.log_metrics(metrics, step=int(step))

    def close(self) -> None:
        """Nothing to release: the run belongs to the trainer."""


def mlflow_logger(run: TrackedRun) -> Logger:
    """An SB3 logger writing only to ``run`` (set it with ``model.set_logger``)."""
    return Logger(folder=None, output_formats=[MlflowOutputFormat(run)])
