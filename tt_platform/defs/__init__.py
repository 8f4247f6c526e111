"""The Dagster layer: thin definitions, one folder per domain, wiring tt_platform.pipeline."""
