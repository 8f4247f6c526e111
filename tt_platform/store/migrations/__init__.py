"""Alembic migrations of the tt_ schema; configured in code by ``tt_platform.store.engine``."""
