from tt_platform.config.run_config import Mode, RunConfig, RunConfigError, load_run_config, parse_run_config

__all__ = ["Mode", "RunConfig", "RunConfigError", "load_run_config", "parse_run_config"]
