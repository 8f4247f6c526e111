import os
import subprocess
import sys

import psycopg2
import pytest
from pgserver.utils import PostmasterInfo

from tt_platform.store.embedded import EmbeddedPostgres, EmbeddedPostgresError
from tt_platform_tests.fixtures.db import server_folder

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def own_server():
    """A server of this module's own, so stopping it does not disturb the session's server."""
    with server_folder() as folder:
        server = EmbeddedPostgres(folder / "pg", durable=False)
        yield server
        server.stop()


def _pid(server: EmbeddedPostgres) -> int:
    return PostmasterInfo.read_from_pgdata(server.data_dir).pid


def _select_one(url: str) -> int:
    host = url.split("host=")[1]
    with psycopg2.connect(dbname="postgres", user="postgres", host=host) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        return cur.fetchone()[0]


def test_url_is_a_psycopg2_unix_socket_url_that_connects(own_server):
    url = own_server.url()
    assert url.startswith("postgresql+psycopg2://postgres:@/postgres?host=/")
    assert _select_one(url) == 1
    assert own_server.is_running()


def test_second_handle_in_the_same_process_reuses_the_server(own_server):
    url, pid = own_server.url(), _pid(own_server)
    again = EmbeddedPostgres(own_server.data_dir, durable=False)
    assert again.url() == url
    assert _pid(again) == pid


def test_another_process_reuses_the_server_and_leaves_it_running(own_server):
    url, pid = own_server.url(), _pid(own_server)
    code = "import sys; from tt_platform.store.embedded import EmbeddedPostgres; print(EmbeddedPostgres(sys.argv[1]).url())"
    result = subprocess.run(
        [sys.executable, "-c", code, str(own_server.data_dir)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == url
    assert _pid(own_server) == pid  # not restarted
    assert own_server.is_running()  # the other process exiting did not stop it
    assert _select_one(url) == 1


def test_stop_then_url_starts_it_again(own_server):
    own_server.url()
    own_server.stop()
    assert not own_server.is_running()
    own_server.stop()  # stopping a stopped server is a no-op
    assert _select_one(own_server.url()) == 1


def test_unusable_folder_raises_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(EmbeddedPostgresError, match="not-a-folder"):
        EmbeddedPostgres(blocker / "pg").start()


def test_throwaway_server_runs_without_fsync(own_server):
    own_server.start()
    host = own_server.url().split("host=")[1]
    with psycopg2.connect(dbname="postgres", user="postgres", host=host) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_setting('fsync'), current_setting('synchronous_commit')")
        assert cur.fetchone() == ("off", "off")


def test_stale_pid_file_naming_another_program_does_not_block_start(own_server):
    own_server.stop()
    pid_file = own_server.data_dir / "postmaster.pid"
    # what a reboot can leave: the recorded pid now belongs to some other live process
    pid_file.write_text(f"{os.getpid()}\n{own_server.data_dir}\n0\n5432\n{own_server.data_dir}\n\n0 0\nready\n")
    assert not own_server.is_running()
    assert _select_one(own_server.url()) == 1
    assert _pid(own_server) != os.getpid()
