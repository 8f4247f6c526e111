"""Shared fixtures. Database fixtures live in fixtures/db.py, market-data fixtures in fixtures/data.py."""

pytest_plugins = ["tt_platform_tests.fixtures.data", "tt_platform_tests.fixtures.db"]
