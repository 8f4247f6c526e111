"""The Dagster instance files (dagster.yaml and the deploy/ variants) load with Dagster's own
validation, queue runs with the limits deploy/README.md documents, and ``tt`` and ``tt ui`` open
one instance.

Instances that need no service besides PostgreSQL are built for real on a schema of the external
test server; the Kubernetes launcher, which needs a cluster to start, is checked against its own
config schema and by building the Job of a run from it without a cluster.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._config import process_config, validate_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.storage.dagster_run import DagsterRun
from dagster._utils.tags import TagConcurrencyLimitsCounter

from tt_platform import runtime
from tt_platform.runtime import REPO_ROOT, PlatformInstance, dagster_environment, prepare_ui
from tt_platform.settings import PlatformSettings

DEPLOY = REPO_ROOT / "deploy"
VARIANTS = {
    "embedded": REPO_ROOT / "dagster.yaml",
    "postgres": DEPLOY / "dagster.postgres.yaml",
    "docker": DEPLOY / "dagster.docker.yaml",
    "k8s": DEPLOY / "dagster.k8s.yaml",
}
# the variants built into a DagsterInstance here, and the run launcher each one uses
LAUNCHERS = {
    "embedded": "DefaultRunLauncher",
    "postgres": "DefaultRunLauncher",
    "docker": "DockerRunLauncher",
}
# identical in every variant: the queue, monitoring, retries, and where Dagster keeps its state
SHARED_SECTIONS = (
    "storage",
    "run_coordinator",
    "concurrency",
    "run_monitoring",
    "run_retries",
    "local_artifact_storage",
    "compute_logs",
    "telemetry",
)
LIVE = {"tt/kind": "live"}


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def documented_limits() -> tuple[int, list[dict]]:
    """deploy/README.md's "Run queue limits" table, as Dagster's run queue settings."""
    text = (DEPLOY / "README.md").read_text()
    section = text.split("### Run queue limits", 1)[1].split("\n\n", 2)[1]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in section.splitlines() if line.startswith("|")]
    assert rows[0] == ["tag", "value", "runs at a time"], rows[0]
    max_runs, limits = None, []
    for tag, value, limit in rows[2:]:
        if tag == "(any run)":
            max_runs = int(limit)
            continue
        key = tag.strip("`")
        if value == "each value on its own":
            limits.append({"key": key, "value": {"applyLimitPerUniqueValue": True}, "limit": int(limit)})
        else:
            limits.append({"key": key, "value": value.strip("`"), "limit": int(limit)})
    assert max_runs is not None and limits, section
    return max_runs, limits


def _home_with(tmp_path: Path, source: Path) -> Path:
    home = tmp_path / f"home-{source.stem}"
    home.mkdir()
    shutil.copy(source, home / "dagster.yaml")
    return home


@pytest.fixture(scope="module")
def dagster_database_url(external_database_url, schema_registry) -> str:
    """An empty schema on the external server for Dagster's tables, dropped after the module."""
    schema, url = schema_registry.create(external_database_url, prefix="tt_dagster")
    yield url
    schema_registry.drop(external_database_url, schema)


@pytest.fixture
def instance_env(monkeypatch, tmp_path, dagster_database_url) -> dict[str, str]:
    env = {
        "TT_DAGSTER_PG_URL": dagster_database_url,
        "TT_DAGSTER_STORAGE": str(tmp_path / "dagster" / "storage"),
        "TT_DAGSTER_COMPUTE_LOGS": str(tmp_path / "dagster" / "compute_logs"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return env


def test_the_readme_table_is_what_the_repository_instance_says():
    max_runs, limits = documented_limits()
    runs = _load(VARIANTS["embedded"])["concurrency"]["runs"]
    assert runs == {"max_concurrent_runs": max_runs, "tag_concurrency_limits": limits}
    assert {"key": "tt/ib_account", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
    assert {"key": "tt/kind", "value": "training", "limit": 1} in limits


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_passes_dagsters_instance_validation(variant, instance_env, tmp_path):
    config, instance_class = dagster_instance_config(str(_home_with(tmp_path, VARIANTS[variant])))
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_monitoring"]["enabled"] is True
    # the platform's instance class (with its embedded-server fallback) only outside production
    assert (instance_class is PlatformInstance) == (variant == "embedded")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_shares_the_queue_monitoring_and_retries(variant):
    reference, config = _load(VARIANTS["embedded"]), _load(VARIANTS[variant])
    for section in SHARED_SECTIONS:
        assert config[section] == reference[section], section
    assert config["run_monitoring"]["max_resume_run_attempts"] == 0
    assert config["run_retries"] == {"enabled": True, "max_retries": 0}
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "TT_DAGSTER_PG_URL"}


@pytest.mark.parametrize("variant", sorted(LAUNCHERS))
def test_instances_queue_runs_with_the_documented_limits(variant, instance_env, tmp_path):
    max_runs, limits = documented_limits()
    with dg.DagsterInstance.from_config(str(_home_with(tmp_path, VARIANTS[variant]))) as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == max_runs
        assert queue.tag_concurrency_limits == limits
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_resume_run_attempts == 0
        assert instance.run_monitoring_settings["start_timeout_seconds"] == 180
        assert instance.run_monitoring_settings["cancel_timeout_seconds"] == 180
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 0
        assert type(instance.run_launcher).__name__ == LAUNCHERS[variant]
        assert instance.run_storage.postgres_url == instance_env["TT_DAGSTER_PG_URL"]
        assert instance.compute_log_manager._base_dir == instance_env["TT_DAGSTER_COMPUTE_LOGS"]
        assert instance.root_directory == instance_env["TT_DAGSTER_STORAGE"]


def test_the_limits_keep_live_sessions_per_account_and_trainings_apart():
    _, limits = documented_limits()

    def run(**tags: str) -> DagsterRun:
        return DagsterRun(job_name="probe", tags=tags)

    live_a = run(**LIVE, **{"tt/ib_account": "DU…4567"})
    training = run(**{"tt/kind": "training"})
    in_progress = TagConcurrencyLimitsCounter(limits, [live_a, training])
    assert in_progress.is_blocked(run(**LIVE, **{"tt/ib_account": "DU…4567"}))
    assert not in_progress.is_blocked(run(**LIVE, **{"tt/ib_account": "U…0001"}))
    assert in_progress.is_blocked(run(**{"tt/kind": "training"}))
    assert not in_progress.is_blocked(run(**{"tt/kind": "ingest"}))
    assert not in_progress.is_blocked(run(**{"tt/kind": "walk_forward"}))
    assert not TagConcurrencyLimitsCounter(limits, []).is_blocked(run(**{"tt/kind": "training"}))


def test_the_production_variant_refuses_to_load_without_the_database_url(monkeypatch, tmp_path):
    monkeypatch.delenv("TT_DAGSTER_PG_URL", raising=False)
    monkeypatch.setenv("TT_HOME", str(tmp_path / "tt_home"))
    monkeypatch.delenv("TT_DB_URL", raising=False)
    with pytest.raises(DagsterInvalidConfigError, match="TT_DAGSTER_PG_URL"):
        dg.DagsterInstance.from_config(str(_home_with(tmp_path, VARIANTS["postgres"])))
    # no embedded server stands in for production's database
    assert not (tmp_path / "tt_home").exists()


def instance_env_names(config: object) -> set[str]:
    """Every ``{env: NAME}`` in an instance configuration."""
    if isinstance(config, dict):
        names = {config["env"]} if set(config) == {"env"} else set()
        return names.union(*(instance_env_names(value) for value in config.values()))
    if isinstance(config, list):
        return set().union(*(instance_env_names(value) for value in config))
    return set()


def test_docker_runs_get_the_network_volume_and_every_variable_the_instance_reads(instance_env, tmp_path):
    with dg.DagsterInstance.from_config(str(_home_with(tmp_path, VARIANTS["docker"]))) as instance:
        launcher = instance.run_launcher
        context = launcher.get_container_context(DagsterRun(job_name="probe"))
    assert context.networks == ["tt-platform"]
    assert context.container_kwargs["volumes"] == ["tt-home:/var/lib/tt"]
    passed = set(context.env_vars)
    # a run container opens the same instance and the platform's store
    assert instance_env_names(_load(VARIANTS["docker"])) <= passed
    assert {"TT_HOME", "TT_DB_URL", "MLFLOW_TRACKING_URI", "IB_ACCOUNT"} <= passed


def test_the_k8s_launcher_config_validates_against_its_schema_and_builds_a_run_job(monkeypatch):
    import dagster_k8s.launcher
    from dagster_k8s import K8sRunLauncher
    from dagster_k8s.job import construct_dagster_k8s_job

    config = _load(VARIANTS["k8s"])["run_launcher"]
    assert (config["module"], config["class"]) == ("dagster_k8s", "K8sRunLauncher")
    schema = K8sRunLauncher.config_type()
    assert validate_config(schema, config["config"]).success
    without_config_map = {k: v for k, v in config["config"].items() if k != "instance_config_map"}
    assert not validate_config(schema, without_config_map).success  # the check can fail
    processed = process_config(schema, config["config"])
    assert processed.success, processed.errors

    # build the Job a run gets, without a cluster: the launcher only loads credentials at start
    monkeypatch.setattr(dagster_k8s.launcher, "load_kubernetes_config", lambda **_: None)
    launcher = K8sRunLauncher(**processed.value)
    run = DagsterRun(job_name="probe", run_id="0123456789abcdef0123456789abcdef", tags={"tt/kind": "training"})
    context = launcher.get_container_context_for_run(run)
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(job_image="tt-platform:test", run_launcher=launcher),
        args=["dagster", "api", "execute_run", "{}"],
        job_name="dagster-run-probe",
        pod_name="dagster-run-probe",
        component="run_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={},
    )
    pod = job.spec.template.spec
    (container,) = pod.containers
    assert context.namespace == "tt-platform"
    assert pod.service_account_name == "tt-platform"
    assert [(v.name, v.persistent_volume_claim.claim_name) for v in pod.volumes] == [("tt-home", "tt-home")]
    assert [m.mount_path for m in container.volume_mounts] == ["/var/lib/tt"]
    assert {(s.config_map_ref or s.secret_ref).name for s in container.env_from} == {"tt-platform-env", "tt-platform-secrets"}
    assert container.resources.requests == {"cpu": "1", "memory": "2Gi"}
    assert job.spec.backoff_limit == 0  # Kubernetes never starts a failed run again on its own


def _isolated_settings(monkeypatch, tmp_path: Path, db_url: str) -> PlatformSettings:
    for name in (*runtime.INSTANCE_VARIABLES, "DAGSTER_HOME", "TT_HOME", "TT_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    return PlatformSettings(TT_HOME=str(tmp_path / "tt_home"), TT_DB_URL=db_url)


def test_tt_and_tt_ui_open_one_instance(monkeypatch, tmp_path, dagster_database_url):
    settings = _isolated_settings(monkeypatch, tmp_path, dagster_database_url)
    setup = prepare_ui(settings)
    ui_home = settings.home / "dagster_home"
    assert setup.dagster_home == ui_home
    assert setup.environment["DAGSTER_HOME"] == str(ui_home)
    assert setup.workspace == REPO_ROOT / "workspace.yaml"
    assert _load(ui_home / "dagster.yaml") == _load(REPO_ROOT / "dagster.yaml")

    tt_env = dagster_environment(settings)  # what `tt` sets before opening its instance
    assert tt_env["DAGSTER_HOME"] == str(REPO_ROOT)
    for name in runtime.INSTANCE_VARIABLES:
        assert setup.environment[name] == tt_env[name], name
        assert str(settings.home) in setup.environment[name] or name == "TT_DAGSTER_PG_URL"
        monkeypatch.setenv(name, setup.environment[name])

    run_id = "fedcba9876543210fedcba9876543210"
    with dg.DagsterInstance.from_config(str(REPO_ROOT)) as tt_instance:
        tt_instance.add_run(DagsterRun(job_name="probe", run_id=run_id))
        tt_logs = tt_instance.compute_log_manager._base_dir
        tt_storage = tt_instance.root_directory
    with dg.DagsterInstance.from_config(str(ui_home)) as ui_instance:
        assert ui_instance.get_run_by_id(run_id).job_name == "probe"
        assert ui_instance.compute_log_manager._base_dir == tt_logs
        assert ui_instance.root_directory == tt_storage


def test_tt_ui_keeps_dagster_home_out_of_the_repository(monkeypatch, tmp_path, dagster_database_url):
    settings = _isolated_settings(monkeypatch, tmp_path, dagster_database_url)
    # the README's `export DAGSTER_HOME=$PWD` for `dagster job launch` does not send the UI there
    monkeypatch.setenv("DAGSTER_HOME", str(REPO_ROOT))
    assert prepare_ui(settings).dagster_home == settings.home / "dagster_home"

    # a deployment's own DAGSTER_HOME is used as it is, and nothing is written into it
    deployment = tmp_path / "deployment"
    deployment.mkdir()
    (deployment / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(deployment))
    setup = prepare_ui(settings)
    assert setup.dagster_home == deployment
    assert setup.environment["DAGSTER_HOME"] == str(deployment)
    assert sorted(p.name for p in deployment.iterdir()) == ["dagster.yaml"]
    assert (deployment / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def test_the_instance_copy_follows_the_repository_file(tmp_path):
    home = tmp_path / "dagster_home"
    copy = runtime.write_instance_copy(home)
    text = copy.read_text()
    assert text.endswith((REPO_ROOT / "dagster.yaml").read_text())
    assert re.match(r"# Copied from .*dagster\.yaml by `tt ui`", text)
    written_at = copy.stat().st_mtime_ns
    assert runtime.write_instance_copy(home).stat().st_mtime_ns == written_at  # current: untouched
    copy.write_text("run_coordinator: stale\n")
    assert runtime.write_instance_copy(home).read_text() == text
    assert sorted(p.name for p in home.iterdir()) == ["dagster.yaml"]  # no staging file left
