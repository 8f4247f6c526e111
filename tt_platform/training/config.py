"""Training configuration: the ``training`` section of the run config (defined once, in
``tt_platform.config.training``)."""

from tt_platform.config.training import TrainConfig

__all__ = ["TrainConfig"]
