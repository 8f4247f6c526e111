"""The health endpoint over real HTTP on the loopback: 200 when healthy, 503 naming the
problems, 404 elsewhere, 500 naming a failing snapshot's class, and a port freed on stop."""

import errno
import json
import logging
import socket
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tt_platform.live.health import HealthServer, HealthSnapshot

NOW = datetime(2024, 3, 5, 15, 30, tzinfo=UTC)
LOGGER = "tt_platform.live.health"


def snapshot(**overrides) -> HealthSnapshot:
    fields = {"session_id": "s-42", "mode": "paper", "status": "running", "connected": True,
              "market_open": True, "last_bar_time": NOW - timedelta(minutes=1),
              "heartbeat_at": NOW - timedelta(seconds=5), "equity": 100_000.0, "positions": 3, "open_orders": 1,
              "breaker_tripped": False, "consecutive_errors": 0, "now": NOW}
    return HealthSnapshot(**(fields | overrides))


def get(port: int, path: str) -> tuple[int, dict, dict]:
    """Status, JSON body and headers of ``GET path``, errors included."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read()), dict(error.headers)


def port_is_free(port: int) -> bool:
    """Whether a new server could listen on ``port``. SO_REUSEADDR, as servers set it, so the
    closed connections' TIME_WAIT does not count; Linux still refuses it beside a listener."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("127.0.0.1", port))
        return True
    except OSError as exc:
        assert exc.errno == errno.EADDRINUSE
        return False
    finally:
        probe.close()


# ---------------------------------------------------------------------------- the snapshot
def test_snapshot_health_and_its_problems_in_words():
    assert snapshot().healthy(120.0)
    assert snapshot().age_seconds() == 5.0
    stale = snapshot(heartbeat_at=NOW - timedelta(seconds=312))
    assert not stale.healthy(120.0) and stale.healthy(400.0)
    assert stale.problems(120.0) == ["no heartbeat for 312 s"]
    assert snapshot(connected=False).problems(120.0) == ["not connected to IB"]
    assert snapshot(status="stopping").problems(120.0) == ["session is stopping, not running"]
    # a tripped breaker or market hours are states to report, not ill health
    assert snapshot(breaker_tripped=True, market_open=False, consecutive_errors=2).healthy(120.0)


def test_snapshot_as_dict_is_json_with_iso_times():
    body = snapshot(last_bar_time=None, equity=float("nan")).as_dict()
    assert json.loads(json.dumps(body, allow_nan=False)) == body
    assert body["heartbeat_at"] == "2024-03-05T15:29:55+00:00"
    assert body["now"] == "2024-03-05T15:30:00+00:00"
    assert body["last_bar_time"] is None and body["equity"] is None
    assert body["heartbeat_age_seconds"] == 5.0


def test_snapshot_rejects_an_unknown_status_and_naive_times():
    with pytest.raises(ValueError, match="status"):
        snapshot(status="busy")
    with pytest.raises(ValueError, match="heartbeat_at"):
        snapshot(heartbeat_at=datetime(2024, 3, 5, 15, 0))


# ---------------------------------------------------------------------------- over HTTP
def test_healthy_session_answers_200_with_its_state():
    with HealthServer(lambda: snapshot()) as server:
        status, body, headers = get(server.bound_port, "/health")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body["healthy"] is True and body["problems"] == []
    assert body["session_id"] == "s-42" and body["open_orders"] == 1 and body["equity"] == 100_000.0


def test_disconnected_session_answers_503_naming_the_problem():
    with HealthServer(lambda: snapshot(connected=False)) as server:
        status, body, _ = get(server.bound_port, "/health")
    assert status == 503
    assert body["problems"] == ["not connected to IB"]
    assert body["connected"] is False and body["session_id"] == "s-42"


def test_stale_heartbeat_answers_503_after_the_configured_age():
    current = {"snapshot": snapshot(heartbeat_at=NOW - timedelta(seconds=312))}
    with HealthServer(lambda: current["snapshot"], stale_after_seconds=120.0) as server:
        status, body, _ = get(server.bound_port, "/health")
        assert status == 503 and body["problems"] == ["no heartbeat for 312 s"]
        current["snapshot"] = replace(current["snapshot"], heartbeat_at=NOW)  # the loop beats again
        status, body, _ = get(server.bound_port, "/health")
        assert status == 200 and body["problems"] == []


def test_liveness_and_unknown_paths():
    with HealthServer(lambda: snapshot(connected=False)) as server:
        assert get(server.bound_port, "/health/live")[0] == 200  # alive though unhealthy
        assert get(server.bound_port, "/health?verbose=1")[0] == 503
        assert get(server.bound_port, "/metrics")[0] == 404
        assert get(server.bound_port, "/")[0] == 404


def test_a_failing_snapshot_answers_500_with_the_class_name_only(caplog):
    def failing() -> HealthSnapshot:
        raise ConnectionResetError("account DU1234567 at 10.0.0.5")

    with caplog.at_level(logging.DEBUG, logger=LOGGER), HealthServer(failing) as server:
        status, body, _ = get(server.bound_port, "/health")
    assert status == 500
    assert body == {"error": "ConnectionResetError"}
    assert "DU1234567" not in caplog.text and "Traceback" not in caplog.text
    assert "ConnectionResetError" in caplog.text


def test_requests_are_logged_at_debug_only(caplog):
    with caplog.at_level(logging.INFO, logger=LOGGER), HealthServer(lambda: snapshot()) as server:
        get(server.bound_port, "/health")
    assert "GET /health" not in caplog.text
    with caplog.at_level(logging.DEBUG, logger=LOGGER), HealthServer(lambda: snapshot()) as server:
        get(server.bound_port, "/health")
    assert "GET /health" in caplog.text


# ---------------------------------------------------------------------------- lifecycle
def test_stop_frees_the_port_and_is_idempotent():
    server = HealthServer(lambda: snapshot())
    port = server.start()
    assert port > 0 and server.bound_port == port
    assert get(port, "/health")[0] == 200
    assert not port_is_free(port)
    with pytest.raises(RuntimeError, match="already started"):
        server.start()
    server.stop()
    server.stop()
    assert server.bound_port is None
    assert port_is_free(port)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2)
    # the same port serves again
    again = HealthServer(lambda: snapshot(), port=port)
    try:
        assert again.start() == port
        assert get(port, "/health/live")[0] == 200
    finally:
        again.stop()


def test_stop_without_start_does_nothing_and_bad_settings_are_refused():
    HealthServer(lambda: snapshot()).stop()
    with pytest.raises(ValueError, match="port"):
        HealthServer(lambda: snapshot(), port=70_000)
    with pytest.raises(ValueError, match="stale_after_seconds"):
        HealthServer(lambda: snapshot(), stale_after_seconds=0)
