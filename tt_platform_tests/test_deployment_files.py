"""The deployment files at the repository root stay consistent with the platform."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_has_the_platform_services_and_no_literal_secrets():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert {"postgres", "dagster-webserver", "dagster-daemon", "mlflow"} <= set(compose["services"])
    text = (ROOT / "docker-compose.yml").read_text()
    assert "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD" in text
    for service in compose["services"].values():
        for value in (service.get("environment") or {}).values():
            assert "password" not in str(value).lower() or "${" in str(value)
    for dockerfile in ("docker/platform.Dockerfile", "docker/mlflow.Dockerfile"):
        assert (ROOT / dockerfile).is_file()


def test_dagster_instance_reads_everything_host_specific_from_the_environment():
    instance = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert instance["storage"]["postgres"]["postgres_url"] == {"env": "TT_DAGSTER_PG_URL"}
    assert instance["run_coordinator"]["class"] == "DefaultRunCoordinator"
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == "tt_platform.definitions"


def test_ci_starts_postgres_and_runs_make_test():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pg_ctlcluster --skip-systemctl-redirect" in ci
    assert "make test" in ci
    assert "TT_REQUIRE_SHARED_DATA=1" in ci and "TT_REQUIRE_EXTERNAL_DB=1" in ci
