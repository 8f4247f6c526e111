"""Training: SB3 policies on the trading env, checkpoints and MLflow tracking."""

from tt_platform.training.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from tt_platform.training.config import TrainConfig
from tt_platform.training.tracking import MlflowTracker, TrackedRun
from tt_platform.training.trainer import TrainResult, train_policy

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "MlflowTracker",
    "TrackedRun",
    "TrainConfig",
    "TrainResult",
    "load_checkpoint",
    "save_checkpoint",
    "train_policy",
]
