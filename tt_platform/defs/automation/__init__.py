"""Schedules and sensors that run the platform unattended: the nightly ingest, the weekly
retraining and the walk-forward of every new policy."""

from tt_platform.defs.automation.schedules import nightly_bars, retrain_job, weekly_retrain
from tt_platform.defs.automation.sensors import walk_forward_folds, walk_forward_new_policies

SCHEDULES = [nightly_bars, weekly_retrain]
SENSORS = [walk_forward_new_policies, walk_forward_folds]
JOBS = [retrain_job]

__all__ = ["JOBS", "SCHEDULES", "SENSORS"]
