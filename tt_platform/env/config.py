"""Environment configuration: the ``env`` section of the run config (defined once, in
``tt_platform.config.env``)."""

from tt_platform.config.env import EnvConfig

__all__ = ["EnvConfig"]
