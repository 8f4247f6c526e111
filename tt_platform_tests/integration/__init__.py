"""End-to-end runs of the platform as a deployment runs it: `tt ui` (webserver and daemon) on the
machine's PostgreSQL, its schedules and sensors, and the Dagster UI in a headless browser."""
