from tt_platform.config.env import EnvConfig
from tt_platform.config.run_config import (
    DataConfig,
    EvaluationConfig,
    Mode,
    RunConfig,
    RunConfigError,
    UniverseConfig,
    load_run_config,
    parse_run_config,
)
from tt_platform.config.training import TrainConfig

__all__ = [
    "DataConfig",
    "EnvConfig",
    "EvaluationConfig",
    "Mode",
    "RunConfig",
    "RunConfigError",
    "TrainConfig",
    "UniverseConfig",
    "load_run_config",
    "parse_run_config",
]
