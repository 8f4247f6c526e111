"""The deployment files at the repository root stay consistent with the platform.

docker-compose.yml is validated by the compose tool itself (``docker-compose config``: no Docker
engine is needed for that) and every service's command, healthcheck, ports and environment are
checked against the installed code: the CLIs parse the arguments, the code location and the
workspace agree, the platform reads every variable the file sets, and the database URLs the
containers build decode back to the password they were given.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlsplit

import click
import pytest
import yaml
from sqlalchemy.engine import make_url
from tt_platform_tests.test_instance_config import instance_env_names

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENTRYPOINT_SCRIPT = ROOT / "docker" / "with_database_urls.py"
ENTRYPOINT = "with-database-urls"  # the name the images install the script under
CONTAINER_WORKSPACE = "docker/workspace.docker.yaml"
CONTAINER_INSTANCE = "deploy/dagster.postgres.yaml"
INIT_SQL = ROOT / "docker" / "postgres-init.sql"
# a password with every character that means something in a URL
AWKWARD_PASSWORD = "p@ss:w/rd%?#"
AWKWARD_USER = "t t@x"
PLATFORM_SERVICES = ("code-server", "dagster-webserver", "dagster-daemon", "ib-gateway-emulator")
EMULATOR_PROFILE = "emulator"


# --- running the compose tool ---------------------------------------------------------------


def compose_command() -> list[str]:
    """``docker-compose`` (Debian's package validates offline), else the ``docker compose`` plugin."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            return ["docker", "compose"]
    pytest.fail("no compose tool to validate docker-compose.yml: install Debian's docker-compose (apt-get install docker-compose)")


def run_compose(tmp_path: Path, *args: str, **variables: str) -> subprocess.CompletedProcess:
    """The compose tool on docker-compose.yml with only ``variables`` set: no .env, nothing from
    the caller's environment, so the result does not depend on the machine."""
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **variables}
    return subprocess.run(
        [*compose_command(), "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), "--env-file", str(empty_env_file), *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )


@pytest.fixture(scope="module")
def resolved(tmp_path_factory) -> dict:
    """docker-compose.yml as the compose tool resolves it, every profile on, with an awkward
    password and user name."""
    result = run_compose(
        tmp_path_factory.mktemp("compose"), "--profile", EMULATOR_PROFILE, "config",
        POSTGRES_PASSWORD=AWKWARD_PASSWORD, POSTGRES_USER=AWKWARD_USER,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def raw_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def service_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def healthcheck_command(service: dict) -> list[str]:
    test = service["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL"), test
    return list(test[1:])


def option(command: list[str], name: str) -> str:
    assert name in command, f"{name} missing from {command}"
    return command[command.index(name) + 1]


def published_ports(service: dict) -> list[tuple[str, int, int]]:
    """(host address, published port, container port) of each port, short or long syntax."""
    ports = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.append((entry.get("host_ip", ""), int(entry["published"]), int(entry["target"])))
        else:
            parts = str(entry).split("/")[0].split(":")
            ports.append((parts[0] if len(parts) == 3 else "", int(parts[-2]), int(parts[-1])))
    return ports


def init_sql_databases() -> set[str]:
    return set(re.findall(r"CREATE DATABASE (\w+);", INIT_SQL.read_text()))


def run_entrypoint(env: dict[str, str], *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ENTRYPOINT_SCRIPT), *command],
        capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"], **env},
    )


def environment_after_entrypoint(env: dict[str, str]) -> dict[str, str]:
    """The environment the container's command receives from with-database-urls."""
    result = run_entrypoint(env, sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- the compose file as a whole ------------------------------------------------------------


def test_compose_config_is_valid_and_refuses_to_start_without_a_password(tmp_path):
    assert run_compose(tmp_path, "config", "-q", POSTGRES_PASSWORD=AWKWARD_PASSWORD).returncode == 0
    missing = run_compose(tmp_path, "config", "-q")
    assert missing.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in missing.stderr


def test_compose_has_the_platform_services_and_the_emulator_only_in_its_profile(resolved):
    services = resolved["services"]
    assert set(services) == {"postgres", "code-server", "dagster-webserver", "dagster-daemon", "mlflow", "ib-gateway-emulator"}
    assert services["ib-gateway-emulator"]["profiles"] == [EMULATOR_PROFILE]
    assert [name for name, service in services.items() if service.get("profiles")] == ["ib-gateway-emulator"]


def test_every_long_running_service_restarts_and_reports_its_health(resolved):
    services = resolved["services"]
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        assert not service["healthcheck"].get("disable"), name
        assert healthcheck_command(service), name
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert condition["condition"] == "service_healthy", (name, dependency)
            assert "healthcheck" in services[dependency], (name, dependency)
    # the webserver and daemon reach the code location only once the code server serves it
    for name in ("dagster-webserver", "dagster-daemon"):
        assert "code-server" in services[name]["depends_on"]
    assert "postgres" in services["code-server"]["depends_on"]
    assert "mlflow" in services["code-server"]["depends_on"]


def test_no_password_on_any_command_line_or_in_any_url_of_the_file(resolved, raw_compose):
    for name, service in resolved["services"].items():
        lines = [
            *(service.get("command") or []), *(service.get("entrypoint") or []), *healthcheck_command(service),
        ]
        assert not any("p@ss" in str(part) for part in lines), name
        others = {key: value for key, value in service_env(service).items() if key != "POSTGRES_PASSWORD"}
        assert not any("p@ss" in value for value in others.values()), name
    text = COMPOSE_FILE.read_text()
    assert not re.search(r"://[^/\s]*:[^@\s/]*@", text), "a URL with credentials in docker-compose.yml"
    # the password variable is only ever the value of POSTGRES_PASSWORD
    for line in text.splitlines():
        if "${POSTGRES_PASSWORD" in line:
            assert line.strip().startswith("POSTGRES_PASSWORD: ${POSTGRES_PASSWORD"), line
    assert raw_compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


# --- database URLs built inside the containers ----------------------------------------------


def test_the_entrypoint_builds_urls_that_decode_to_the_given_password(resolved):
    from tt_platform.store.engine import normalize_url

    services = resolved["services"]
    postgres_env = service_env(services["postgres"])
    expected_databases = {
        "TT_DB_URL": postgres_env["POSTGRES_DB"],
        "TT_DAGSTER_PG_URL": "dagster",
        "MLFLOW_BACKEND_STORE_URI": "mlflow",
    }
    assert {"dagster", "mlflow"} <= init_sql_databases()
    wanted = {"code-server": ("TT_DB_URL", "TT_DAGSTER_PG_URL"), "mlflow": ("MLFLOW_BACKEND_STORE_URI",)}
    for name, variables in wanted.items():
        env = environment_after_entrypoint(service_env(services[name]))
        for variable in variables:
            url = make_url(env[variable])
            assert url.drivername == "postgresql+psycopg2"
            assert url.username == AWKWARD_USER == postgres_env["POSTGRES_USER"]
            assert url.password == AWKWARD_PASSWORD == postgres_env["POSTGRES_PASSWORD"]
            assert (url.host, url.port) == ("postgres", 5432)
            assert url.database == expected_databases[variable]
            # the platform's own URL handling reads the same password back
            assert normalize_url(env[variable]).password == AWKWARD_PASSWORD
        assert set(env) & set(expected_databases) == set(variables), name


def test_the_entrypoint_keeps_a_given_url_and_names_a_missing_variable():
    given = "postgresql+psycopg2://other@db.example:5432/tt"
    env = environment_after_entrypoint(
        {"TT_DB_NAME": "tt", "TT_DB_URL": given, "POSTGRES_USER": "tt", "POSTGRES_PASSWORD": "x", "POSTGRES_HOST": "postgres"}
    )
    assert env["TT_DB_URL"] == given
    assert "TT_DAGSTER_PG_URL" not in env

    missing = run_entrypoint({"TT_DAGSTER_DB_NAME": "dagster", "POSTGRES_USER": "tt", "POSTGRES_HOST": "postgres"}, "true")
    assert missing.returncode == 2
    assert missing.stderr.strip() == "with-database-urls: POSTGRES_PASSWORD is not set (needed to build TT_DAGSTER_PG_URL)"

    bad_port = run_entrypoint(
        {"TT_DB_NAME": "tt", "POSTGRES_USER": "tt", "POSTGRES_PASSWORD": "x", "POSTGRES_HOST": "h", "POSTGRES_PORT": "54x"}, "true"
    )
    assert bad_port.returncode == 2 and "POSTGRES_PORT must be a port number" in bad_port.stderr

    no_command = run_entrypoint({})
    assert no_command.returncode == 2 and "usage: with-database-urls COMMAND" in no_command.stderr


def test_the_entrypoint_url_reaches_postgres(external_database_url):
    """Built from parts with an awkward password, the URL opens a connection (the test server
    trusts local connections, so it proves host, port, user and database survive encoding)."""
    server = make_url(external_database_url)
    env = {
        "TT_DB_NAME": server.database, "POSTGRES_USER": server.username, "POSTGRES_PASSWORD": AWKWARD_PASSWORD,
        "POSTGRES_HOST": server.host, "POSTGRES_PORT": str(server.port or 5432),
    }
    probe = "import os; from tt_platform.store.engine import check_connection; check_connection(os.environ['TT_DB_URL']); print('connected')"
    result = run_entrypoint(env, sys.executable, "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "connected"


# --- commands and healthchecks against the installed CLIs -----------------------------------


def console_script_command(program: str) -> click.Command:
    """The click command behind an installed console script (as the images install it)."""
    assert (Path(sys.executable).parent / program).is_file(), f"{program} is not installed in {Path(sys.executable).parent}"
    # mlflow and mlflow-skinny both declare `mlflow`, with the same target
    (script,) = {ep.value: ep for ep in entry_points(group="console_scripts") if ep.name == program}.values()
    loaded = script.load()
    if isinstance(loaded, click.Command):
        return loaded
    command = getattr(importlib.import_module(script.module), "cli")
    assert isinstance(command, click.Command), program
    return command


def parse_tt(args: list[str]) -> dict:
    """``tt SUBCOMMAND ...``: tt is a Typer app (its own copy of click); the one subcommand the
    compose file runs, gateway-sim, hands its arguments to the emulator's parser."""
    import typer

    from tt_platform.cli import app
    from tt_platform.ib.emulator.cli import build_parser

    assert (Path(sys.executable).parent / "tt").is_file()
    assert 'tt = "tt_platform.cli:app"' in (ROOT / "pyproject.toml").read_text()
    assert args and args[0] in typer.main.get_command(app).commands, f"tt has no subcommand {args[:1]}"
    assert args[0] == "gateway-sim", f"tt {args[0]}: not a command the compose file is expected to run"
    return vars(build_parser().parse_args(args[1:]))


def parse_with_cli(command_line: list[str]) -> dict:
    """Parse ``command_line`` with the installed CLI as it would at start, without running it;
    return the parsed parameters. Unknown subcommands or options fail the test."""
    program, *args = command_line
    if program == "tt":
        return parse_tt(args)
    command = console_script_command(program)
    path = [program]
    while isinstance(command, click.Group):
        assert args, f"{' '.join(path)} needs a subcommand"
        sub = command.get_command(click.Context(command), args[0])
        assert sub is not None, f"{' '.join(path)} has no subcommand {args[0]!r}"
        path.append(args.pop(0))
        command = sub
    try:
        return command.make_context(" ".join(path), list(args), resilient_parsing=False).params
    except click.UsageError as err:
        pytest.fail(f"{' '.join(command_line)}: {err.format_message()}")


def without_entrypoint(command_line: list[str]) -> list[str]:
    return command_line[1:] if command_line and command_line[0] == ENTRYPOINT else command_line


def test_every_service_command_parses_with_the_installed_cli(resolved, monkeypatch):
    monkeypatch.chdir(ROOT)  # the images' working directory is the repository root
    services = resolved["services"]
    parsed = {name: parse_with_cli(without_entrypoint(services[name]["command"])) for name in (*PLATFORM_SERVICES, "mlflow")}

    code_server = parsed["code-server"]
    assert code_server["host"] == "0.0.0.0"
    webserver, daemon = parsed["dagster-webserver"], parsed["dagster-daemon"]
    assert webserver["workspace"] == daemon["workspace"] == (CONTAINER_WORKSPACE,)
    assert (ROOT / CONTAINER_WORKSPACE).is_file()
    assert webserver["host"] == "0.0.0.0"
    assert parsed["mlflow"]["host"] == "0.0.0.0"
    emulator = parsed["ib-gateway-emulator"]
    assert emulator["host"] == "0.0.0.0" and emulator["synthetic"] == "*"


def test_healthchecks_use_real_subcommands_and_the_served_ports(resolved, monkeypatch):
    monkeypatch.chdir(ROOT)
    services = resolved["services"]

    grpc_check = parse_with_cli(healthcheck_command(services["code-server"]))
    assert grpc_check["port"] == int(option(services["code-server"]["command"], "--port"))

    # the liveness check opens the instance, and a healthcheck skips the image's entrypoint
    daemon_check = healthcheck_command(services["dagster-daemon"])
    assert daemon_check[0] == ENTRYPOINT
    parse_with_cli(without_entrypoint(daemon_check))

    def probed_url(name: str) -> str:
        check = healthcheck_command(services[name])
        assert check[:2] == ["python", "-c"], check
        (url,) = re.findall(r"https?://[^'\"]+", check[2])
        return url

    webserver_url = urlsplit(probed_url("dagster-webserver"))
    assert webserver_url.port == int(option(services["dagster-webserver"]["command"], "--port"))
    from dagster_webserver.webserver import DagsterWebserver

    assert f'Route("{webserver_url.path}"' in inspect.getsource(DagsterWebserver)

    mlflow_url = urlsplit(probed_url("mlflow"))
    assert mlflow_url.port == int(option(services["mlflow"]["command"], "--port"))
    from mlflow.server import app as mlflow_app

    assert mlflow_url.path in {rule.rule for rule in mlflow_app.url_map.iter_rules()}

    emulator_check = healthcheck_command(services["ib-gateway-emulator"])
    assert f"('127.0.0.1', {option(services['ib-gateway-emulator']['command'], '--port')})" in emulator_check[2]

    postgres_check = " ".join(healthcheck_command(services["postgres"]))
    assert postgres_check.startswith("pg_isready -h 127.0.0.1 -p 5432")


def test_published_ports_are_the_served_ones_and_stay_on_this_machine_by_default(resolved):
    services = resolved["services"]
    for name in ("dagster-webserver", "mlflow"):
        (port,) = published_ports(services[name])
        assert port == ("127.0.0.1", int(option(services[name]["command"], "--port")), port[2])
        assert port[1] == port[2]
    for name in ("postgres", "code-server", "dagster-daemon", "ib-gateway-emulator"):
        assert not published_ports(services[name]), name


# --- the code location, the workspace and the instance --------------------------------------


def test_code_server_serves_the_location_the_workspaces_name(resolved):
    import dagster as dg
    from dagster._core.remote_origin import GrpcServerCodeLocationOrigin
    from dagster._core.workspace.load import location_origins_from_yaml_paths

    from tt_platform.orchestration import DEFINITIONS_MODULE

    command = resolved["services"]["code-server"]["command"]
    module_name, attribute = option(command, "--module-name"), option(command, "--attribute")
    assert module_name == DEFINITIONS_MODULE
    assert isinstance(getattr(importlib.import_module(module_name), attribute), dg.Definitions)

    (local,) = location_origins_from_yaml_paths([str(ROOT / "workspace.yaml")])
    (container,) = location_origins_from_yaml_paths([str(ROOT / CONTAINER_WORKSPACE)])
    assert isinstance(container, GrpcServerCodeLocationOrigin)
    # runs `tt` records under workspace.yaml's location show under the same one in the containers
    assert container.location_name == local.location_name == option(command, "--location-name")
    assert container.host == "code-server" and "code-server" in resolved["services"]
    assert container.port == int(option(command, "--port"))


def container_instance() -> dict:
    path = ROOT / CONTAINER_INSTANCE
    assert path.is_file(), f"{CONTAINER_INSTANCE} (the containers' Dagster instance) is missing"
    return yaml.safe_load(path.read_text())


def test_containers_use_the_postgres_instance_with_a_queue_the_daemon_serves():
    instance = container_instance()
    assert instance["storage"]["postgres"]["postgres_url"] == {"env": "TT_DAGSTER_PG_URL"}
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    dockerfile = (ROOT / "docker" / "platform.Dockerfile").read_text()
    assert "ENV DAGSTER_HOME=/opt/dagster-home" in dockerfile
    assert f'{CONTAINER_INSTANCE} "$DAGSTER_HOME/dagster.yaml"' in dockerfile


def settings_variables() -> set[str]:
    from tt_platform.alerts.settings import AlertSettings
    from tt_platform.settings import PlatformSettings

    return {field.alias for model in (PlatformSettings, AlertSettings) for field in model.model_fields.values() if field.alias}


def test_the_platform_reads_every_variable_the_compose_file_sets(resolved):
    from tt_platform import runtime

    sys.path.insert(0, str(ENTRYPOINT_SCRIPT.parent))
    try:
        import with_database_urls as entrypoint
    finally:
        sys.path.remove(str(ENTRYPOINT_SCRIPT.parent))

    instance_reads = instance_env_names(container_instance())
    read_by_code = (
        settings_variables() | set(runtime.INSTANCE_VARIABLES) | {runtime.PLANNED_EVENTS_FLAG} | instance_reads
        | set(entrypoint.DATABASE_URL_VARIABLES) | set(entrypoint.CREDENTIAL_VARIABLES)
    )
    for name in PLATFORM_SERVICES:
        env = service_env(resolved["services"][name])
        assert set(env) <= read_by_code, (name, sorted(set(env) - read_by_code))
        # the instance finds every variable it reads, some built by the entrypoint
        produced = set(env) | {entrypoint.DATABASE_URL_VARIABLES[key] for key in env if key in entrypoint.DATABASE_URL_VARIABLES}
        assert instance_reads <= produced, (name, sorted(instance_reads - produced))
        # Dagster's files live on the shared volume, so the webserver shows what runs wrote
        (volume,) = resolved["services"][name]["volumes"]
        mount = volume["target"] if isinstance(volume, dict) else volume.split(":")[1]
        assert mount == env["TT_HOME"]
        for folder in ("TT_DAGSTER_STORAGE", "TT_DAGSTER_COMPUTE_LOGS"):
            assert env[folder].startswith(env["TT_HOME"] + "/")
    assert entrypoint.DATABASE_URL_VARIABLES["MLFLOW_DB_NAME"] == "MLFLOW_BACKEND_STORE_URI"


def test_the_compose_environment_is_valid_for_the_settings(resolved, monkeypatch):
    from tt_platform.alerts.settings import AlertSettings
    from tt_platform.settings import PlatformSettings

    services = resolved["services"]
    env = service_env(services["code-server"])
    for name in settings_variables():
        monkeypatch.delenv(name, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = PlatformSettings(_env_file=None)
    AlertSettings(_env_file=None)  # empty alert variables mean "channel off", not an error

    tracking = urlsplit(settings.mlflow_uri)
    assert tracking.hostname == "mlflow" and "mlflow" in services
    assert tracking.port == int(option(services["mlflow"]["command"], "--port"))
    # the emulator listens where IB_PORT points by default
    assert settings.ib_port == int(option(services["ib-gateway-emulator"]["command"], "--port"))


def test_mlflow_reads_its_backend_store_from_the_environment_and_knows_its_host_names(resolved):
    from mlflow.cli import server

    (backend,) = [param for param in server.params if "--backend-store-uri" in getattr(param, "opts", [])]
    assert backend.envvar == "MLFLOW_BACKEND_STORE_URI"
    mlflow = resolved["services"]["mlflow"]
    assert "--backend-store-uri" not in mlflow["command"]
    assert service_env(mlflow)["MLFLOW_DB_NAME"] == "mlflow"
    allowed = option(mlflow["command"], "--allowed-hosts").split(",")
    tracking = urlsplit(service_env(resolved["services"]["code-server"])["MLFLOW_TRACKING_URI"])
    assert tracking.netloc in allowed
    assert f"localhost:{tracking.port}" in allowed and f"127.0.0.1:{tracking.port}" in allowed


def test_images_start_through_the_entrypoint_that_builds_the_urls():
    for dockerfile in ("docker/platform.Dockerfile", "docker/mlflow.Dockerfile"):
        text = (ROOT / dockerfile).read_text()
        assert f'ENTRYPOINT ["{ENTRYPOINT}"]' in text, dockerfile
        assert re.search(rf"docker/with_database_urls\.py /usr/local/bin/{ENTRYPOINT}\b", text), dockerfile
        assert "USER " in text, f"{dockerfile} runs as root"
    assert "psycopg2-binary" in (ROOT / "docker" / "mlflow.Dockerfile").read_text()
    assert ENTRYPOINT_SCRIPT.read_text().startswith("#!/usr/bin/env python3")


# --- .dockerignore --------------------------------------------------------------------------


def dockerignore_rules() -> list[tuple[bool, re.Pattern]]:
    """(excludes, pattern) per line, in Docker's syntax: ``**`` any folders, ``*`` within one,
    ``!`` re-includes; the last matching rule wins."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        rules.append((excludes, re.compile(regex)))
    return rules


def ignored_by_docker(path: str) -> bool:
    parts = path.split("/")
    ignored = False
    for excludes, pattern in dockerignore_rules():
        # a path is matched by a pattern matching it or any of its parent folders
        if any(pattern.fullmatch("/".join(parts[:end])) for end in range(1, len(parts) + 1)):
            ignored = excludes
    return ignored


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python", ".env", ".env.production", ".tt_home/pg/data/base/1", ".git/HEAD",
        "tt_platform/__pycache__/cli.cpython-311.pyc", "tt_platform.egg-info/PKG-INFO", "mlruns/0/meta.yaml",
        "bench-results.json", ".pytest_cache/v/cache", ".hypothesis/examples/x", ".nux/nux.yaml", ".logs_queue/x",
    ],
)
def test_dockerignore_keeps_local_state_secrets_and_caches_out_of_the_image(path):
    assert ignored_by_docker(path), path


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml", "README.md", "tt_platform/definitions.py", "tt_platform/store/migrations/env.py",
        "tt_platform/env/market.py", "workspace.yaml", "dagster.yaml", CONTAINER_WORKSPACE, CONTAINER_INSTANCE,
        "docker/with_database_urls.py", ".env.example",
    ],
)
def test_dockerignore_keeps_what_the_image_needs(path):
    assert not ignored_by_docker(path), path


# --- the rest of the deployment -------------------------------------------------------------


def test_dagster_instance_reads_everything_host_specific_from_the_environment():
    instance = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert instance["storage"]["postgres"]["postgres_url"] == {"env": "TT_DAGSTER_PG_URL"}
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == "tt_platform.definitions"


def test_ci_starts_postgres_and_runs_make_test():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pg_ctlcluster --skip-systemctl-redirect" in ci
    assert "make test" in ci
    assert "TT_REQUIRE_SHARED_DATA=1" in ci and "TT_REQUIRE_EXTERNAL_DB=1" in ci
