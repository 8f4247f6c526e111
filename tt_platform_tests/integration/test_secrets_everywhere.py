"""Secrets set, then looked for everywhere: the platform's ingest, training, walk-forward and a
paper session run with a database password, an IB account id and alert-channel tokens in the
environment, and none of these values may show up in anything the runs leave behind.

How it runs. The database is a PostgreSQL server of the test's own (pgserver) whose
``pg_hba.conf`` makes the platform's role log in with a password (SCRAM), so a password that
any component mangles (decoding, re-encoding, cutting at ``@``, ``/``, ``:``, ``%`` or ``#``) is
refused instead of silently accepted. The store and Dagster's storage (the repository's
dagster.yaml, PostgreSQL storage from ``TT_DB_URL``) both live in its database. IB is the
gateway emulator in threads of this process, reporting the secret account. Each step is the
``tt`` command in its own process, as a person runs it: ``tt ingest`` (IB minute bars),
``tt train``, ``tt walk-forward``, ``tt live`` refused by a gateway that does not manage the
account (a failed run), and ``tt live`` as a paper session on a replaying gateway.

Where it looks: the commands' stdout and stderr; every run and event record of the Dagster
instance; MLflow's experiments, params, tags, metric names, registry and logged models; every
file under TT_HOME and DAGSTER_HOME (reports, artifacts, checkpoints, compute logs; zip members
and SQLite rows opened up); every row of every table of the database (tt_ tables, Dagster's,
Alembic's); what the run-failure alert sensor logs and sends when its webhook, Telegram and
SMTP receivers refuse it; and the messages of calls made to fail on purpose (a wrong password, a
server that is not there, a gateway that does not manage the account).

Quick tests beside these (not slow): the search finds every spelling of a secret; the role gets in
with its percent-encoded password and only with it; a password written into a URL without
percent-encoding is refused without being shown (SQLAlchemy would take the part after its '@' for
host, port or database, and messages show those); a webhook receiver's refusal quoting the
token is masked.

The machine's shared PostgreSQL (TT_TEST_DATABASE_URL) trusts every local login, so a password
there proves nothing about authentication; the last test uses it for the TCP spelling of the URL
(``role:password@127.0.0.1:5432``) and checks who the platform is connected as.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._core.events import DagsterEventType
from sqlalchemy.engine import URL

from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator import GatewayEmulator, GatewayThread, ReplayConfig, serve_in_thread
from tt_platform.live.config import LIVE_JOB, LIVE_OP
from tt_platform.runtime import REPO_ROOT, dagster_environment, write_instance_copy
from tt_platform.settings import PlatformSettings
from tt_platform.store.embedded import EmbeddedPostgres
from tt_platform.store.engine import (
    DRIVER,
    StoreConfigError,
    check_connection,
    connect_store,
    create_store_engine,
    normalize_url,
    safe_url,
)
from tt_platform.training.tracking import resolve_backend
from tt_platform_tests.alerts import HttpReceiver, SmtpReceiver, free_port, http_receiver, smtp_receiver
from tt_platform_tests.fixtures.db import server_folder
from tt_platform_tests.integration.secret_search import (
    Secret,
    SecretSearch,
    dagster_texts,
    mlflow_texts,
    postgres_tables,
)
from tt_platform_tests.live.policy_factory import REPLAY_START, SYMBOLS, synthetic_source

TT = Path(sys.executable).with_name("tt")

# '@', '/', ':' and '#' end parts of a URL; "%2F" is a percent-escape already, so a password
# decoded twice arrives with a '/' in it
DB_PASSWORD = Secret("database password", "Qw9Zp7@Lk3Hx4/Vn8Mr2:Jy2Bc6%2FTf5Gd1#Ws0Pe9")
WRONG_PASSWORD = Secret("wrong database password", "Zx1Cv2@Bn3Mm4/Wr0ngPw:Pa5sWd%41Xy6#Uv7Tt8")
IB_ACCOUNT = Secret("IB account", "DU7319428")
WEBHOOK_TOKEN = Secret("webhook token", "hk4Tq8Wz2Lp6Ys1Rm3Nd5")
TELEGRAM_TOKEN = Secret("Telegram token", "7403918265:AAHs9Kd2Lm4Qp7Wx1Zc5Vb8Nt3Ry6Ue0Io")
SMTP_PASSWORD = Secret("SMTP password", "Sm7Tp9@Pw3Kd4/Lx2Qz8:Mn5#Rv6")
SECRETS = [DB_PASSWORD, WRONG_PASSWORD, IB_ACCOUNT, WEBHOOK_TOKEN, TELEGRAM_TOKEN, SMTP_PASSWORD]

DATABASE = "tt_secrets"
OTHER_ACCOUNT = "DU5550001"  # what the refusing gateway manages instead
SMTP_USER = "alerts"
COMMAND_SECONDS = 600
# the replaying gateway: one minute bar per 5 s of its clock, which runs 8 times faster than
# real time (a decision about every 0.6 s)
REPLAY_SCALE = 8.0
PAPER_DECISIONS = 3

RUN_CONFIG = f"""\
name: secrets
universe:
  symbols: {list(SYMBOLS)}
data:
  source: ib
  interval: 1min
  start: 2024-03-06
  end: 2024-03-08
env:
  window_size: 5
training:
  total_timesteps: 64
  n_steps: 32
  batch_size: 32
  n_envs: 1
  seed: 7
  net_arch: [16]
  eval_episode: false
evaluation:
  walk_forward:
    scheme: rolling
    train_bars: 400
    min_train_bars: 300
    test_bars: 200
    purge_bars: 2
    max_folds: 2
"""


# --- the password-checking server ----------------------------------------------------------


@dataclass(frozen=True)
class PasswordServer:
    """A PostgreSQL server on which ``role`` must log in with its password (SCRAM over the
    unix socket); the superuser still gets in without one (the test's own access)."""

    server: EmbeddedPostgres
    socket_dir: str
    role: str

    def url(self, password: str, *, socket_dir: str | None = None) -> str:
        """TT_DB_URL as a person writes it: the password percent-encoded."""
        return URL.create(DRIVER, username=self.role, password=password, database=DATABASE,
                          query={"host": socket_dir or self.socket_dir}).render_as_string(hide_password=False)

    def admin_engine(self, database: str = DATABASE) -> sa.Engine:
        return create_store_engine(self.server.url(database), poolclass=sa.pool.NullPool)


@pytest.fixture(scope="module")
def password_server() -> Iterator[PasswordServer]:
    role = f"tt_secret_{os.getpid()}"
    with server_folder() as folder:
        server = EmbeddedPostgres(folder / "pg", durable=False).start()
        try:
            admin = create_store_engine(server.url(), poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                # psycopg2 writes the password into the statement as a quoted literal
                conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN PASSWORD %s', (DB_PASSWORD.value,))
                conn.exec_driver_sql(f'CREATE DATABASE "{DATABASE}" OWNER "{role}"')
                hba = Path(conn.exec_driver_sql("SHOW hba_file").scalar())
                hba.write_text(f"local all {role} scram-sha-256\n" + hba.read_text())
                conn.exec_driver_sql("SELECT pg_reload_conf()")
                socket_dir = str(normalize_url(server.url()).query["host"])
            admin.dispose()
            yield PasswordServer(server, socket_dir, role)
        finally:
            server.stop()


# --- the platform's runs -------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def describe(self) -> str:
        return (f"tt {' '.join(self.args)} -> {self.returncode} in {self.seconds:.0f} s\n"
                f"{self.stdout[-3000:]}\n{self.stderr[-3000:]}")


@dataclass(frozen=True)
class Receivers:
    webhook: HttpReceiver
    telegram: HttpReceiver
    smtp: SmtpReceiver


@dataclass
class Deployment:
    """One machine's platform: its folders, environment, database and alert receivers, and the
    ``tt`` commands run on it."""

    root: Path
    tt_home: Path
    dagster_home: Path
    environment: dict[str, str]
    server: PasswordServer
    receivers: Receivers
    commands: list[Command] = field(default_factory=list)
    policy_id: str | None = None

    def tt(self, *args: str) -> Command:
        started = time.monotonic()
        done = subprocess.run(
            [str(TT), *args], cwd=self.root, env=self.environment, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=COMMAND_SECONDS,
        )
        command = Command(list(args), done.returncode, done.stdout, done.stderr, time.monotonic() - started)
        self.commands.append(command)
        return command

    def live_config(self, name: str, port: int, **settings: object) -> Path:
        config = {"mode": "paper", "policy": f"policy:{self.policy_id}", "clock": "feed", "capital": 100_000.0,
                  "ib": {"host": "127.0.0.1", "port": port, "request_timeout": 10.0}, "heartbeat_seconds": 0.5,
                  "orders": {"min_order_value": 10.0}} | settings
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"ops": {LIVE_OP: {"config": config}}}))
        return path

    def instance_environment(self) -> dict[str, str]:
        """What dagster.yaml reads, as ``tt`` derives it from TT_DB_URL and TT_HOME."""
        settings = PlatformSettings(TT_HOME=str(self.tt_home), TT_DB_URL=self.environment["TT_DB_URL"])
        return dagster_environment(settings, with_dagster_home=False) | {"DAGSTER_HOME": str(self.dagster_home)}


def gateway(account: str, *, replay: bool = False) -> GatewayThread:
    """The IB gateway emulator serving the policy's synthetic minute bars, managing ``account``."""
    if replay:
        emulator = GatewayEmulator(synthetic_source(), clock=ScaledClock(REPLAY_SCALE), account=account,
                                   replay=ReplayConfig(start=REPLAY_START, interval="1min", step_seconds=5.0))
    else:
        emulator = GatewayEmulator(synthetic_source(), account=account)
    return serve_in_thread(emulator)


def platform_environment(root: Path, server: PasswordServer, receivers: Receivers, ib_port: int) -> dict[str, str]:
    """This process's environment without the platform's, Dagster's, MLflow's and IB's
    variables, plus a deployment's: every secret set."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("TT_", "DAGSTER_", "MLFLOW_", "IB_"))}
    return kept | {
        "DAGSTER_HOME": str(root / "dagster_home"),
        "TT_HOME": str(root / "tt_home"),
        "TT_DB_URL": server.url(DB_PASSWORD.value),
        "IB_HOST": "127.0.0.1",
        "IB_PORT": str(ib_port),
        "IB_ACCOUNT": IB_ACCOUNT.value,
        "TT_ALERT_WEBHOOK_URL": f"{receivers.webhook.url}/services/{WEBHOOK_TOKEN.value}",
        "TT_ALERT_TELEGRAM_TOKEN": TELEGRAM_TOKEN.value,
        "TT_ALERT_TELEGRAM_CHAT_ID": "4242",
        "TT_ALERT_TELEGRAM_API": receivers.telegram.url,
        "TT_ALERT_SMTP_HOST": receivers.smtp.host,
        "TT_ALERT_SMTP_PORT": str(receivers.smtp.port),
        "TT_ALERT_SMTP_USER": SMTP_USER,
        "TT_ALERT_SMTP_PASSWORD": SMTP_PASSWORD.value,
        "TT_ALERT_SMTP_FROM": "tt@example.org",
        "TT_ALERT_SMTP_TO": "ops@example.org",
        "TT_ALERT_SMTP_STARTTLS": "false",
        "TT_ALERT_TIMEOUT_SECONDS": "3",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="module")
def receivers() -> Iterator[Receivers]:
    """Alert receivers that refuse: the webhook and Telegram answer 403/401 echoing the path they
    were called on (token included), the SMTP server wants another password."""
    with http_receiver() as webhook, http_receiver() as telegram, \
            smtp_receiver(user=SMTP_USER, password="not-the-configured-password") as smtp:
        webhook.status, webhook.answer = 403, {"message": f"no hook at /services/{WEBHOOK_TOKEN.value}"}
        telegram.status, telegram.answer = 401, {
            "ok": False, "description": f"Unauthorized: /bot{TELEGRAM_TOKEN.value}/sendMessage"}
        yield Receivers(webhook, telegram, smtp)


@pytest.fixture(scope="module")
def deployment(password_server: PasswordServer, receivers: Receivers, tmp_path_factory) -> Iterator[Deployment]:
    """Ingest, training, walk-forward, a refused live session and a paper session, each by
    ``tt`` in its own process, every secret in their environment."""
    root = tmp_path_factory.mktemp("secrets")
    write_instance_copy(root / "dagster_home")
    config = root / "run.yaml"
    config.write_text(RUN_CONFIG)
    data_gateway = gateway(IB_ACCOUNT.value)
    refusing_gateway = gateway(OTHER_ACCOUNT)
    try:
        environment = platform_environment(root, password_server, receivers, data_gateway.port)
        deployment = Deployment(root, root / "tt_home", root / "dagster_home", environment, password_server, receivers)

        for step in (["ingest", "--config", str(config)], ["train", "--config", str(config)]):
            command = deployment.tt(*step)
            assert command.returncode == 0, command.describe()
        admin = password_server.admin_engine()
        with admin.connect() as conn:
            deployment.policy_id = conn.exec_driver_sql(
                "SELECT policy_id FROM tt_policy ORDER BY created_at DESC LIMIT 1").scalar()
        admin.dispose()
        assert deployment.policy_id, "tt train registered no policy"
        command = deployment.tt("walk-forward", "--config", str(config), "--no-features")
        assert command.returncode == 0, command.describe()

        refused = deployment.tt("live", "--config", str(deployment.live_config("refused", refusing_gateway.port)))
        assert refused.returncode == 1, refused.describe()
        assert "not among the 1 account(s)" in refused.stdout + refused.stderr, refused.describe()

        replaying = gateway(IB_ACCOUNT.value, replay=True)
        try:
            paper = deployment.tt("live", "--config", str(deployment.live_config(
                "paper", replaying.port, max_decisions=PAPER_DECISIONS)))
        finally:
            replaying.stop()
        assert paper.returncode == 0, paper.describe()
        yield deployment
    finally:
        data_gateway.stop()
        refusing_gateway.stop()


@pytest.fixture
def instance(deployment: Deployment, monkeypatch) -> Iterator[dg.DagsterInstance]:
    """The Dagster instance the commands recorded their runs in."""
    for key, value in deployment.instance_environment().items():
        monkeypatch.setenv(key, value)
    with dg.DagsterInstance.from_config(str(deployment.dagster_home)) as active:
        yield active


def assert_none_found(search: SecretSearch) -> None:
    assert not search.leaks, "secrets found:\n" + search.report()


# --- the tests -----------------------------------------------------------------------------


def test_the_needles_find_every_spelling_of_a_secret():
    """The search itself: the value, its URL-encoded and ConfigParser-escaped spellings and a
    piece of it are found; the masked account is not."""
    search = SecretSearch([DB_PASSWORD, IB_ACCOUNT])
    url = URL.create(DRIVER, username="u", password=DB_PASSWORD.value, host="h", database="d")
    search.text("probe", "raw", f"password={DB_PASSWORD.value}")
    search.text("probe", "url", url.render_as_string(hide_password=False))
    search.text("probe", "alembic", url.render_as_string(hide_password=False).replace("%", "%%"))
    search.text("probe", "piece", "cut at the colon: Jy2Bc6")
    search.text("probe", "masked", "account DU…9428")
    assert [leak.place for leak in search.leaks] == ["raw", "url", "alembic", "piece"]
    assert DB_PASSWORD.value not in search.report()


@pytest.mark.postgres
def test_the_password_is_checked_and_every_special_character_survives(password_server: PasswordServer):
    """The role gets in with its password written into the URL percent-encoded, and only with it."""
    check_connection(password_server.url(DB_PASSWORD.value))
    engine = connect_store(PlatformSettings(TT_DB_URL=password_server.url(DB_PASSWORD.value)))
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_user").scalar() == password_server.role
    finally:
        engine.dispose()
    with pytest.raises(StoreConfigError, match=f"password authentication failed for user '{password_server.role}'"):
        check_connection(password_server.url(WRONG_PASSWORD.value))
    # the password cut where an unencoded URL would cut it is refused too
    with pytest.raises(StoreConfigError, match="password authentication failed"):
        check_connection(password_server.url(DB_PASSWORD.value.split("@")[0]))


@pytest.mark.parametrize("password", [
    DB_PASSWORD.value,  # SQLAlchemy would take the rest of it for host and database
    "Rk5Ty8@Mn2Bv4:Hg7Fd3",  # for host and port
    "Rk5Ty8@Mn2Bv4",  # for the host
])
def test_a_password_not_percent_encoded_is_refused_without_showing_it(password):
    """An '@' of the password left as it is ends the password early for SQLAlchemy, which takes
    the rest for host, port or database: every message would show it. It is refused instead."""
    url = f"postgresql://tt:{password}@127.0.0.1:5432/tt"
    for call in (normalize_url, check_connection):
        with pytest.raises(StoreConfigError, match="percent-encode the password") as caught:
            call(url)
        search = SecretSearch([Secret("database password", password)])
        search.text("exception", call.__name__, str(caught.value))
        search.text("shown", "safe_url", safe_url(url))
        assert_none_found(search)
    # an '@' in the user name (user@server, as some hosted servers want) still parses
    assert normalize_url("postgresql://tt@server:Rk5Ty8@127.0.0.1/tt").username == "tt@server"


def test_a_webhook_refusal_that_echoes_its_token_is_masked():
    """A receiver's error that quotes the URL's path (or a piece of it) shows no token."""
    from tt_platform.alerts.notifiers import Alert, AlertDeliveryError, WebhookNotifier

    with http_receiver() as receiver:
        receiver.status = 404
        for echoed in (f"/services/{WEBHOOK_TOKEN.value}", f"unknown token {WEBHOOK_TOKEN.value}"):
            receiver.answer = {"message": echoed}
            notifier = WebhookNotifier(f"{receiver.url}/services/{WEBHOOK_TOKEN.value}?key=Pq4Lm8Zx2Nv6", timeout=2)
            with pytest.raises(AlertDeliveryError, match=r"HTTP 404 Not Found \(.*\*\*\*\)") as caught:
                notifier.send(Alert("title", "text"))
            search = SecretSearch([WEBHOOK_TOKEN, Secret("webhook key", "Pq4Lm8Zx2Nv6")])
            search.text("exception", echoed, str(caught.value))
            assert_none_found(search)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_command_output_holds_no_secret(deployment: Deployment):
    search = SecretSearch(SECRETS)
    for command in deployment.commands:
        search.text("stdout", f"tt {' '.join(command.args)} stdout", command.stdout)
        search.text("stderr", f"tt {' '.join(command.args)} stderr", command.stderr)
    assert search.searched == {"stdout": 5, "stderr": 5}
    outputs = [c.stdout + c.stderr for c in deployment.commands]
    # what the output does show of the account: its mask
    assert any("DU…9428" in text for text in outputs), outputs[-1]
    assert_none_found(search)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_dagster_runs_and_event_logs_hold_no_secret(deployment: Deployment, instance: dg.DagsterInstance):
    search = SecretSearch(SECRETS)
    for place, text in dagster_texts(instance):
        search.text("dagster", place, text)
    runs = instance.get_runs()
    jobs = {run.job_name for run in runs}
    assert {"main_job", "walk_forward_job", LIVE_JOB} <= jobs, jobs
    live_runs = [run for run in runs if run.job_name == LIVE_JOB]
    assert sorted(run.status.value for run in live_runs) == ["FAILURE", "SUCCESS"]
    assert {run.tags["tt/ib_account"] for run in live_runs} == {"DU…9428"}
    assert search.searched["dagster"] > 100, search.searched
    assert_none_found(search)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_mlflow_holds_no_secret(deployment: Deployment):
    search = SecretSearch(SECRETS)
    store = resolve_backend(PlatformSettings(TT_HOME=str(deployment.tt_home)).mlflow_uri).store_uri
    texts = list(mlflow_texts(store))
    for kind, place, text in texts:
        search.text(kind, place, text)
    params = [text for kind, _, text in texts if kind == "mlflow params" and text]
    # the training run and the walk-forward's: the search had something to read
    assert len(params) >= 3 and any("train.total_timesteps=64" in text for text in params), params
    assert {"mlflow params", "mlflow tags", "mlflow metric names", "mlflow registry"} <= set(search.searched)
    assert_none_found(search)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_files_reports_and_artifacts_hold_no_secret(deployment: Deployment):
    search = SecretSearch(SECRETS)
    search.tree("TT_HOME", deployment.tt_home)
    search.tree("DAGSTER_HOME", deployment.dagster_home)
    files = [p for p in deployment.tt_home.rglob("*") if p.is_file()]
    names = {p.suffix for p in files}
    # the reports (walk-forward HTML and JSON, the paper session's day), MLflow's artifacts and
    # database, the model checkpoints and Dagster's captured step output were all read
    assert {".html", ".json", ".zip", ".db"} <= names, names
    assert any("live" in p.parts and p.suffix == ".html" for p in files), files
    assert any("compute_logs" in p.parts for p in files), files
    assert_none_found(search)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_database_tables_hold_no_secret(deployment: Deployment):
    search = SecretSearch(SECRETS)
    engine = deployment.server.admin_engine()
    try:
        tables = dict(postgres_tables(engine))
    finally:
        engine.dispose()
    for table, rows in tables.items():
        search.text("table", table, "\n".join(rows))
    # the store's tables and Dagster's, filled by the runs; Dagster's snapshots read uncompressed
    for table in ("public.tt_prices", "public.tt_policy", "public.tt_live_session", "public.tt_live_audit",
                  "public.event_logs", "public.runs", "public.snapshots"):
        assert tables.get(table), (table, {name: len(rows) for name, rows in tables.items()})
    assert any(LIVE_OP in row for row in tables["public.snapshots"])
    assert_none_found(search)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_alert_about_the_refused_session_shows_no_secret(
    deployment: Deployment, instance: dg.DagsterInstance, monkeypatch, caplog, capfd
):
    """The run-failure alert sensor on the failed live run, every channel refusing it."""
    from tt_platform.defs.alerts import run_failure_alert_sensor

    for key, value in deployment.environment.items():
        if key.startswith("TT_ALERT_"):
            monkeypatch.setenv(key, value)
    monkeypatch.chdir(deployment.root)
    failed = [run for run in instance.get_runs() if run.job_name == LIVE_JOB and run.status.value == "FAILURE"]
    assert len(failed) == 1
    failure = instance.all_logs(failed[0].run_id, of_type=DagsterEventType.RUN_FAILURE)[0].dagster_event
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor", dagster_event=failure, dagster_instance=instance,
        dagster_run=failed[0],
    ).for_run_failure()
    receivers = deployment.receivers
    sent_before = len(receivers.webhook.requests), len(receivers.telegram.requests)
    with caplog.at_level(logging.DEBUG):
        outcome = run_failure_alert_sensor(context)
    out, err = capfd.readouterr()

    assert outcome.skip_message.endswith("sent via log; failed: webhook, email, telegram"), outcome.skip_message
    sent = len(receivers.webhook.requests) - sent_before[0], len(receivers.telegram.requests) - sent_before[1]
    assert sent == (1, 1), sent
    alert = receivers.webhook.requests[-1].body
    assert "DU…9428" in alert["message"], alert
    search = SecretSearch(SECRETS)
    search.text("sensor", "tick result", outcome.skip_message)
    search.text("log", "log records", "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records))
    search.text("output", "stdout and stderr", out + err)
    search.text("sent", "webhook body", str(receivers.webhook.requests[-1].body))
    search.text("sent", "Telegram body", str(receivers.telegram.requests[-1].body))
    warnings = [r.getMessage() for r in caplog.records if "alert channel" in r.getMessage()]
    assert len(warnings) >= 3 and any("/bot***/sendMessage" in w for w in warnings), warnings
    assert_none_found(search)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_calls_made_to_fail_name_the_problem_without_secrets(
    password_server: PasswordServer, tmp_path, monkeypatch, caplog, capfd
):
    """A wrong password, a server that is not there, an unusable URL, Dagster's storage on a
    wrong password, ``tt`` on a wrong password, a gateway that does not manage the account, a
    gateway that is not there: every message names the problem, none shows a secret."""
    from tt_platform.ib.trading import IBTrading
    from tt_platform.runtime import PlatformSetupError, ensure_instance_environment

    messages: dict[str, str] = {}

    def failure(name: str, call, expected: type[BaseException] = Exception) -> None:
        with pytest.raises(expected) as caught:
            call()
        messages[name] = "".join(traceback.format_exception(caught.value))

    wrong = password_server.url(WRONG_PASSWORD.value)
    nowhere_socket = password_server.url(DB_PASSWORD.value, socket_dir=str(tmp_path / "no-server"))
    refused_port = URL.create(DRIVER, username=password_server.role, password=DB_PASSWORD.value, host="127.0.0.1",
                              port=free_port(), database=DATABASE).render_as_string(hide_password=False)
    not_postgres = f"mysql://{password_server.role}:{DB_PASSWORD.value}@127.0.0.1/{DATABASE}"
    unencoded = f"postgresql://{password_server.role}:{DB_PASSWORD.value}@127.0.0.1/{DATABASE}"
    with caplog.at_level(logging.DEBUG):
        failure("check_connection, wrong password", lambda: check_connection(wrong), StoreConfigError)
        failure("check_connection, no server", lambda: check_connection(nowhere_socket), StoreConfigError)
        failure("check_connection, refused port", lambda: check_connection(refused_port), StoreConfigError)
        failure("connect_store, wrong password", lambda: connect_store(PlatformSettings(TT_DB_URL=wrong)),
                StoreConfigError)
        failure("a store engine, wrong password", lambda: create_store_engine(wrong).connect(), sa.exc.OperationalError)
        failure("not a PostgreSQL URL", lambda: normalize_url(not_postgres), StoreConfigError)
        # the password written into the URL as it is, not percent-encoded
        failure("password not encoded", lambda: normalize_url(unencoded), StoreConfigError)
        failure("password not encoded, connecting", lambda: check_connection(unencoded), StoreConfigError)
        messages["password not encoded, shown"] = safe_url(unencoded)

        # a Dagster command: the instance fills in its storage URL from TT_DB_URL and checks it
        home = tmp_path / "dagster_home"
        write_instance_copy(home)
        for name in ("TT_DAGSTER_PG_URL", "TT_DAGSTER_STORAGE", "TT_DAGSTER_COMPUTE_LOGS"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("TT_HOME", str(tmp_path / "tt_home"))
        monkeypatch.setenv("TT_DB_URL", wrong)
        from tt_platform.settings import get_settings

        get_settings.cache_clear()
        try:
            failure("Dagster instance set-up, wrong password", ensure_instance_environment, PlatformSetupError)
        finally:
            get_settings.cache_clear()
        # Dagster's PostgreSQL storage given the wrong password directly (a deployment's own URL)
        monkeypatch.setenv("TT_DAGSTER_PG_URL", wrong)
        monkeypatch.setenv("TT_DAGSTER_STORAGE", str(tmp_path / "storage"))
        monkeypatch.setenv("TT_DAGSTER_COMPUTE_LOGS", str(tmp_path / "compute_logs"))

        def list_runs() -> None:
            with dg.DagsterInstance.from_config(str(home)) as broken:
                broken.get_runs()

        failure("Dagster storage, wrong password", list_runs)

        # IB: a gateway managing another account, and no gateway at all
        other = gateway(OTHER_ACCOUNT)
        try:
            trading = IBTrading("127.0.0.1", other.port, 91, account=IB_ACCOUNT.value, request_timeout=5.0)
            failure("IB login, account not managed", lambda: asyncio.run(trading.connect()), ValueError)
        finally:
            other.stop()
        absent = IBTrading("127.0.0.1", free_port(), 92, account=IB_ACCOUNT.value, request_timeout=2.0)
        failure("IB, no gateway", lambda: asyncio.run(absent.connect()), ConnectionError)

    # tt itself on the wrong password
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("TT_", "DAGSTER_", "MLFLOW_", "IB_"))}
    environment = kept | {"TT_HOME": str(tmp_path / "tt_home"), "IB_ACCOUNT": IB_ACCOUNT.value}
    for name, url, args in (("wrong password", wrong, ["info"]),
                            ("wrong password", wrong, ["ingest", "--source", "synthetic", "--symbols", "AAA"]),
                            ("password not encoded", unencoded, ["info"])):
        done = subprocess.run([str(TT), *args], cwd=tmp_path, env=environment | {"TT_DB_URL": url},
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=COMMAND_SECONDS)
        assert done.returncode != 0, done.stdout + done.stderr
        messages[f"tt {args[0]}, {name}"] = done.stdout + done.stderr
    out, err = capfd.readouterr()

    assert "password authentication failed for user" in messages["check_connection, wrong password"]
    assert "no server listening on that socket" in messages["check_connection, no server"]
    assert "connection refused" in messages["check_connection, refused port"]
    assert "password authentication failed" in messages["tt info, wrong password"]
    assert "password authentication failed" in messages["Dagster instance set-up, wrong password"]
    assert "password authentication failed" in messages["Dagster storage, wrong password"]
    assert "DU…9428 is not among" in messages["IB login, account not managed"]
    assert "percent-encode the password" in messages["password not encoded"]
    assert "percent-encode the password" in messages["tt info, password not encoded"]
    search = SecretSearch(SECRETS)
    for name, text in messages.items():
        search.text("exception", name, text)
    search.text("log", "log records", "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records))
    search.text("output", "stdout and stderr", out + err)
    assert_none_found(search)


def compose_entrypoint():
    """docker/with_database_urls.py, which builds the containers' URLs from POSTGRES_* variables."""
    spec = importlib.util.spec_from_file_location("with_database_urls", REPO_ROOT / "docker" / "with_database_urls.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.postgres
def test_the_tcp_url_logs_in_as_the_role_on_the_shared_server(external_database_url: str, tmp_path):
    """``role:password@127.0.0.1:5432``, the password with '@', '/', ':', '%' and '#', built as
    the containers build it: the store, the connection check, Dagster's storage URL and the one
    ``tt`` derives for it all connect as that role. (This server trusts local logins: it checks
    who connects, not the password; the password server above checks the password.)"""
    from dagster_postgres.utils import create_pg_engine

    server = normalize_url(external_database_url)
    role = f"tt_secret_tcp_{os.getpid()}"
    admin = create_store_engine(external_database_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN PASSWORD %s', (DB_PASSWORD.value,))
    try:
        urls = compose_entrypoint().database_urls({
            "POSTGRES_USER": role, "POSTGRES_PASSWORD": DB_PASSWORD.value, "POSTGRES_HOST": server.host or "127.0.0.1",
            "POSTGRES_PORT": str(server.port or 5432), "TT_DB_NAME": server.database,
            "TT_DAGSTER_DB_NAME": server.database,
        })
        assert normalize_url(urls["TT_DB_URL"]).password == DB_PASSWORD.value
        check_connection(urls["TT_DB_URL"])
        settings = PlatformSettings(TT_HOME=str(tmp_path / "tt_home"), TT_DB_URL=urls["TT_DB_URL"])
        derived = dagster_environment(settings, with_dagster_home=False)["TT_DAGSTER_PG_URL"]
        engines = {
            "store": create_store_engine(urls["TT_DB_URL"], poolclass=sa.pool.NullPool),
            "Dagster storage, compose": create_pg_engine(urls["TT_DAGSTER_PG_URL"], poolclass=sa.pool.NullPool),
            "Dagster storage, derived by tt": create_pg_engine(derived, poolclass=sa.pool.NullPool),
        }
        try:
            for name, engine in engines.items():
                with engine.connect() as conn:
                    assert conn.exec_driver_sql("SELECT current_user").scalar() == role, name
        finally:
            for engine in engines.values():
                engine.dispose()
        shown = settings.safe_dump()["TT_DB_URL"]
        assert DB_PASSWORD.value not in shown and f"{role}:***@" in shown, shown
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE "{role}"')
        admin.dispose()
