"""The paper / live loop's store: one running session per account, an append-only decision audit,
idempotent decisions, orders and fills."""

import datetime as dt
import threading

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command

from tt_platform.live.decision import AuditRecord
from tt_platform.live.guardrails import GuardrailVerdict
from tt_platform.store.engine import alembic_config, create_store_engine, ensure_schema
from tt_platform.store.episodes import read_episode
from tt_platform.store.live import (
    AUDIT_COLUMNS,
    LiveRecordConflict,
    LiveSessionConflict,
    LiveSessionNotRunning,
    close_session,
    get_session,
    heartbeat,
    known_order_refs,
    last_audit,
    next_step,
    open_orders,
    open_session,
    read_audit,
    read_holdings,
    read_marks,
    record_decision,
    record_fill,
    record_mark,
    record_order,
    running_sessions,
    session_fills,
    session_orders,
    update_order,
)
from tt_platform.store.policies import register_policy
from tt_platform.store.schema import LIVE_AUDIT_GUARD, metadata
from tt_platform_tests.store.test_migrations import _diffs

ACCOUNT = "acct-5e1f0c2a"
STALE_AFTER = dt.timedelta(minutes=5)
BAR0 = pd.Timestamp("2024-03-04 15:00", tz="UTC")
AUDIT = metadata.tables["tt_live_audit"]
SESSION = metadata.tables["tt_live_session"]


@pytest.fixture
def engine(store_engine):
    """The store engine; afterwards the audit rows are removed with triggers off (replica role),
    as the append-only guard refuses the TRUNCATE that empties the tables between tests."""
    yield store_engine
    with store_engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.exec_driver_sql("TRUNCATE tt_live_audit")


def open_(engine, session_id="s1", account_key=ACCOUNT, mode="paper", **overrides):
    arguments = dict(
        session_id=session_id, run_id="run-1", account_key=account_key, mode=mode, policy_id=None,
        policy_version="v1", feature_set_hash="fs1", config={"symbols": ["AAA", "BBB"]}, stale_after=STALE_AFTER,
    )
    return open_session(engine, **(arguments | overrides))


def audit_row(step=0, verdict="pass", refs=("tt:ab12cd34:s0x3k0:AAA:B:0",), equity=1e5, tripped=False):
    guard = GuardrailVerdict(
        status="tripped" if tripped else "pass", reasons=("session_drawdown",) if tripped else (),
        trading_day="2024-03-04", equity=equity, session_drawdown=0.01, session_drawdown_threshold=0.05,
        breaker_tripped_now=tripped, daily_halted=False, daily_loss_limit=None, flattening=False,
    )
    record = AuditRecord(
        run_id="run-1", bar_time=(BAR0 + pd.Timedelta(minutes=5 * step)).to_pydatetime(), policy_version="v1",
        feature_set_hash="fs1", verdict=verdict, breaches="", guardrails=guard, order_refs=tuple(refs),
        latency_ms=12.5,
    )
    return record.as_row()


def decide(engine, step=0, session_id="s1", **audit):
    return record_decision(
        engine, session_id=session_id, step=step, audit=audit_row(step, **audit),
        actions={"AAA": 0.4, "BBB": -0.1}, target_weights={"AAA": 0.6, "BBB": 0.0},
    )


def age_heartbeat(engine, session_id, by):
    with engine.begin() as conn:
        conn.execute(sa.update(SESSION).where(SESSION.c.session_id == session_id)
                     .values(heartbeat_at=sa.func.now() - by))


def audit_count(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(AUDIT)).scalar()


# --- sessions --------------------------------------------------------------------------------


def test_opening_a_session_records_it_running_with_its_episode(engine):
    row = open_(engine)
    assert (row["status"], row["restarts"], row["mode"], row["ended_at"]) == ("running", 0, "paper", None)
    assert row["config"] == {"symbols": ["AAA", "BBB"]} and row["account_key"] == ACCOUNT
    assert get_session(engine, "s1") == row
    log = read_episode(engine, "s1")
    assert (log.row["kind"], log.row["policy_id"], log.row["ended_at"]) == ("paper", None, None)
    assert log.row["started_at"] == row["started_at"]
    assert list(running_sessions(engine, ACCOUNT)["session_id"]) == ["s1"]
    assert running_sessions(engine, "acct-other").empty


def test_a_fresh_running_session_holds_its_account(engine):
    open_(engine, "s1")
    with pytest.raises(LiveSessionConflict, match=r"running paper session 's1', last heartbeat \d+ s ago") as caught:
        open_(engine, "s2", mode="live")
    assert ACCOUNT not in str(caught.value)
    assert get_session(engine, "s2") is None and get_session(engine, "s1")["status"] == "running"
    # another account is free
    assert open_(engine, "s3", account_key="acct-other")["status"] == "running"


def test_a_stale_session_is_abandoned_by_the_next_one_and_may_not_record_any_more(engine):
    open_(engine, "s1")
    age_heartbeat(engine, "s1", dt.timedelta(minutes=10))
    last_seen = get_session(engine, "s1")["heartbeat_at"]
    assert open_(engine, "s2")["status"] == "running"
    abandoned = get_session(engine, "s1")
    assert abandoned["status"] == "abandoned" and abandoned["ended_at"] == last_seen
    assert "no heartbeat for more than 300 s" in abandoned["reason"] and "'s2'" in abandoned["reason"]
    assert read_episode(engine, "s1").row["ended_at"] == last_seen
    with pytest.raises(LiveSessionNotRunning, match="'s1' is abandoned"):
        heartbeat(engine, "s1")
    with pytest.raises(LiveSessionNotRunning):
        decide(engine, session_id="s1")
    assert audit_count(engine) == 0
    assert list(running_sessions(engine)["session_id"]) == ["s2"]


def test_a_session_that_is_not_stale_yet_is_kept(engine):
    open_(engine, "s1")
    age_heartbeat(engine, "s1", dt.timedelta(minutes=4))
    with pytest.raises(LiveSessionConflict, match="'s1'"):
        open_(engine, "s2")
    assert get_session(engine, "s1")["status"] == "running"


def test_reopening_the_same_session_counts_a_restart_and_clears_its_end(engine):
    first = open_(engine, "s1")
    again = open_(engine, "s1", run_id="run-2")
    assert (again["restarts"], again["run_id"], again["started_at"]) == (1, "run-2", first["started_at"])
    close_session(engine, "s1", "failed", "gateway lost")
    assert read_episode(engine, "s1").row["ended_at"] is not None
    resumed = open_(engine, "s1", run_id="run-3")
    assert (resumed["status"], resumed["restarts"]) == ("running", 2)
    assert resumed["ended_at"] is None and resumed["reason"] is None
    assert read_episode(engine, "s1").row["ended_at"] is None


def test_a_session_keeps_its_account_mode_and_policy(engine):
    open_(engine, "s1")
    with pytest.raises(ValueError, match="mode: stored 'paper', given 'live'"):
        open_(engine, "s1", mode="live")
    with pytest.raises(ValueError, match="account_key differs") as caught:
        open_(engine, "s1", account_key="acct-other")
    assert "acct-other" not in str(caught.value) and ACCOUNT not in str(caught.value)
    assert get_session(engine, "s1")["restarts"] == 0


def test_open_session_checks_its_arguments(engine):
    with pytest.raises(ValueError, match="looks like a raw broker account id") as caught:
        open_(engine, account_key="DU1234567")
    assert "DU1234567" not in str(caught.value)
    with pytest.raises(ValueError, match="mode must be one of"):
        open_(engine, mode="sim")
    with pytest.raises(ValueError, match="stale_after must be a positive timedelta"):
        open_(engine, stale_after=dt.timedelta(0))
    with pytest.raises(ValueError, match="policy_id 'ppo-9' is not registered"):
        open_(engine, policy_id="ppo-9")
    assert get_session(engine, "s1") is None


def test_a_registered_policy_is_linked_through_the_episode(engine):
    register_policy(engine, {
        "policy_id": "ppo-1", "algo": "ppo", "feature_set_hash": "fs1", "data_snapshot_hash": "ds1",
        "config_hash": "c1", "config": {}, "seed": 1, "code_version": "0.1",
    })
    open_(engine, policy_id="ppo-1", mode="live")
    assert (read_episode(engine, "s1").row["policy_id"], read_episode(engine, "s1").row["kind"]) == ("ppo-1", "live")


def test_two_sessions_opening_on_one_account_at_once_leave_one_running(engine):
    barrier, outcomes = threading.Barrier(2), {}

    def run(session_id):
        barrier.wait()
        try:
            open_(engine, session_id)
            outcomes[session_id] = "opened"
        except LiveSessionConflict:
            outcomes[session_id] = "refused"

    threads = [threading.Thread(target=run, args=(s,)) for s in ("s1", "s2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes.values()) == ["opened", "refused"]
    assert len(running_sessions(engine, ACCOUNT)) == 1


def test_heartbeat_moves_the_bar_time_forward_only(engine):
    before = open_(engine)["heartbeat_at"]
    heartbeat(engine, "s1", last_bar_time=BAR0 + pd.Timedelta(minutes=5), equity=101_000.0)
    heartbeat(engine, "s1", last_bar_time=BAR0)
    row = get_session(engine, "s1")
    assert row["heartbeat_at"] > before
    assert (pd.Timestamp(row["last_bar_time"]), row["equity"]) == (BAR0 + pd.Timedelta(minutes=5), 101_000.0)
    with pytest.raises(KeyError, match="'nope' is not recorded"):
        heartbeat(engine, "nope")
    with pytest.raises(ValueError, match="last_bar_time must be tz-aware"):
        heartbeat(engine, "s1", last_bar_time=dt.datetime(2024, 3, 4, 15))


def test_closing_a_session_ends_it_once(engine):
    open_(engine)
    close_session(engine, "s1", "stopped", "end of day")
    row = get_session(engine, "s1")
    assert (row["status"], row["reason"]) == ("stopped", "end of day") and row["ended_at"] is not None
    assert read_episode(engine, "s1").row["ended_at"] == row["ended_at"]
    close_session(engine, "s1", "failed", "late error")  # the first ending stands
    assert get_session(engine, "s1") == row
    with pytest.raises(ValueError, match="status must be one of"):
        close_session(engine, "s1", "running")
    with pytest.raises(KeyError, match="'nope'"):
        close_session(engine, "nope", "stopped")
    # the account is free again
    assert open_(engine, "s2")["status"] == "running"


# --- decisions and marks ---------------------------------------------------------------------


def test_a_decision_writes_its_audit_actions_and_weights(engine):
    open_(engine)
    assert set(AUDIT_COLUMNS) == set(audit_row())  # AuditRecord.as_row() fills every audit column
    audit_id = decide(engine, 0)
    audit = read_audit(engine, "s1")
    assert list(audit["audit_id"]) == [audit_id] and list(audit["step"]) == [0]
    assert audit["order_refs"][0] == ["tt:ab12cd34:s0x3k0:AAA:B:0"] and audit["n_orders"][0] == 1
    assert audit["bar_time"][0] == BAR0 and audit["guard_status"][0] == "pass"
    log = read_episode(engine, "s1")
    assert dict(zip(log["actions"]["instrument"], log["actions"]["action"])) == {"AAA": 0.4, "BBB": -0.1}
    assert dict(zip(log["weights"]["instrument"], log["weights"]["weight"])) == {"AAA": 0.6, "BBB": 0.0}
    assert set(log["actions"]["ts"]) == {BAR0} and set(log["actions"]["step"]) == {0}


def test_recording_a_decision_again_is_a_no_op_and_other_content_is_refused(engine):
    open_(engine)
    audit_id = decide(engine, 0)
    assert decide(engine, 0) == audit_id
    # recomputed after a restart: another run, another latency, the same decision
    again = audit_row(0) | {"run_id": "run-2", "latency_ms": 30.0}
    assert record_decision(engine, session_id="s1", step=0, audit=again, actions={"AAA": 0.4, "BBB": -0.1},
                           target_weights={"AAA": 0.6, "BBB": 0.0}) == audit_id
    assert audit_count(engine) == 1
    assert read_audit(engine, "s1")[["run_id", "latency_ms"]].values.tolist() == [["run-1", 12.5]]
    with pytest.raises(LiveRecordConflict, match=r"step 0 .*\(verdict: stored 'pass', given 'clamped'"):
        decide(engine, 0, verdict="clamped")
    with pytest.raises(LiveRecordConflict, match=r"actions\['AAA'\]: stored 0.4, given 0.5"):
        record_decision(engine, session_id="s1", step=0, audit=audit_row(0), actions={"AAA": 0.5, "BBB": -0.1},
                        target_weights={"AAA": 0.6, "BBB": 0.0})
    with pytest.raises(LiveRecordConflict, match=r"target_weights: stored for \['AAA', 'BBB'\], given for \['AAA'\]"):
        record_decision(engine, session_id="s1", step=0, audit=audit_row(0), actions={"AAA": 0.4, "BBB": -0.1},
                        target_weights={"AAA": 0.6})
    assert read_audit(engine, "s1")["verdict"].tolist() == ["pass"]
    assert read_episode(engine, "s1")["actions"]["action"].tolist() == [0.4, -0.1]
    # a replay is answered even after the session ended
    close_session(engine, "s1", "stopped")
    assert decide(engine, 0) == audit_id


def test_bad_audit_rows_are_refused_before_anything_is_written(engine):
    open_(engine)
    row = audit_row(0)
    del row["guard_equity"]
    with pytest.raises(ValueError, match=r"missing columns \['guard_equity'\]"):
        record_decision(engine, session_id="s1", step=0, audit=row, actions={}, target_weights={})
    with pytest.raises(ValueError, match="n_orders is 3 but order_refs holds 1"):
        record_decision(engine, session_id="s1", step=0, audit=audit_row(0) | {"n_orders": 3}, actions={},
                        target_weights={})
    with pytest.raises(ValueError, match="another policy than the session's .*policy_version: stored 'v1', given 'v2'"):
        record_decision(engine, session_id="s1", step=0, audit=audit_row(0) | {"policy_version": "v2"}, actions={},
                        target_weights={})
    with pytest.raises(ValueError, match=r"actions\['AAA'\] must be a finite number"):
        record_decision(engine, session_id="s1", step=0, audit=audit_row(0), actions={"AAA": float("nan")},
                        target_weights={})
    assert audit_count(engine) == 0 and read_episode(engine, "s1")["actions"].empty


@pytest.mark.parametrize("statement", [
    "UPDATE tt_live_audit SET verdict = 'blocked'",
    "DELETE FROM tt_live_audit",
    "TRUNCATE tt_live_audit",
])
def test_the_audit_refuses_update_delete_and_truncate(engine, statement):
    open_(engine)
    decide(engine, 0)
    decide(engine, 1)
    before = read_audit(engine, "s1")
    with pytest.raises(sa.exc.IntegrityError, match="tt_live_audit is append-only"):
        with engine.begin() as conn:
            conn.exec_driver_sql(statement)
    pd.testing.assert_frame_equal(read_audit(engine, "s1"), before)


def test_the_append_only_guard_is_installed_on_the_audit(engine):
    with engine.connect() as conn:
        triggers = conn.execute(sa.text(
            "SELECT tgname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE t.tgrelid = 'tt_live_audit'::regclass AND p.proname = :guard ORDER BY tgname"
        ), {"guard": LIVE_AUDIT_GUARD}).scalars().all()
    assert triggers == ["tt_live_audit_no_truncate", "tt_live_audit_no_update_delete"]


def test_steps_continue_after_a_restart_and_the_last_decision_resumes_the_breaker(engine):
    open_(engine)
    assert next_step(engine, "s1") == 0 and last_audit(engine, "s1") is None
    decide(engine, 0)
    decide(engine, 1, tripped=True, equity=94_000.0, refs=())
    open_(engine, "s1", run_id="run-2")  # restart
    assert next_step(engine, "s1") == 2
    last = last_audit(engine, "s1")
    assert (last["step"], last["guard_status"], last["guard_reasons"], last["guard_equity"]) == (
        1, "tripped", "session_drawdown", 94_000.0)
    assert last["guard_breaker_tripped_now"] is True and last["order_refs"] == [] and last["n_orders"] == 0
    record_mark(engine, session_id="s1", step=4, ts=BAR0 + pd.Timedelta(minutes=20), cash=1.0, equity=2.0,
                leverage=None, holdings={})
    assert next_step(engine, "s1") == 5


def test_marks_replace_their_step_and_holdings_read_the_latest_step(engine):
    open_(engine)
    ts = BAR0 + pd.Timedelta(minutes=1)
    record_mark(engine, session_id="s1", step=0, ts=ts, cash=50_000.0, equity=100_000.0, leverage=0.5,
                holdings={"AAA": (100.0, 30_000.0), "BBB": (-20.0, -20_000.0)})
    record_mark(engine, session_id="s1", step=1, ts=ts + pd.Timedelta(minutes=5), cash=60_000.0,
                equity=100_500.0, leverage=0.4, holdings={"AAA": (120.0, 40_500.0)})
    record_mark(engine, session_id="s1", step=1, ts=ts + pd.Timedelta(minutes=5), cash=60_000.0,
                equity=100_600.0, leverage=0.4, holdings={"AAA": (120.0, 40_600.0)})  # the same step again
    marks = read_marks(engine, "s1")
    assert marks["step"].tolist() == [0, 1] and marks["equity"].tolist() == [100_000.0, 100_600.0]
    latest = read_holdings(engine, "s1")
    assert latest[["step", "instrument", "quantity", "market_value"]].values.tolist() == [[1, "AAA", 120.0, 40_600.0]]
    first = read_holdings(engine, "s1", step=0)
    assert first["instrument"].tolist() == ["AAA", "BBB"] and first["quantity"].tolist() == [100.0, -20.0]
    with pytest.raises(ValueError, match=r"holdings\['AAA'\] must be \(quantity, market_value\)"):
        record_mark(engine, session_id="s1", step=2, ts=ts, cash=1.0, equity=1.0, leverage=None,
                    holdings={"AAA": 5.0})
    with pytest.raises(KeyError, match="'nope' is not recorded"):
        record_mark(engine, session_id="nope", step=0, ts=ts, cash=1.0, equity=1.0, leverage=None, holdings={})


# --- orders and fills ------------------------------------------------------------------------

REF = "tt:ab12cd34:s0x3k0:AAA:B:0"


def an_order(order_id=REF, **extra):
    return {"order_id": order_id, "episode_id": "s1", "ts": BAR0, "instrument": "AAA", "side": "buy",
            "quantity": 100.0, "order_type": "MARKET", "limit_price": None, "status": "pending_submit",
            "order_ref": order_id} | extra


def test_orders_are_upserted_and_updated_field_by_field(engine):
    open_(engine)
    record_order(engine, an_order())
    record_order(engine, an_order())  # the same order again changes nothing
    record_order(engine, an_order(status="submitted", broker_order_id=17, submitted_at=BAR0, tif="DAY"))
    update_order(engine, REF, status="partially_filled", filled_quantity=40.0, avg_fill_price=101.5)
    stored = session_orders(engine, "s1").iloc[0]
    assert (stored["status"], stored["broker_order_id"], stored["tif"], stored["filled_quantity"]) == (
        "partially_filled", "17", "DAY", 40.0)
    assert stored["avg_fill_price"] == 101.5 and stored["submitted_at"] == BAR0 and stored["quantity"] == 100.0
    with pytest.raises(KeyError, match="order 'nope' is not recorded"):
        update_order(engine, "nope", status="filled")
    with pytest.raises(ValueError, match="tt_order has no field 'colour'"):
        update_order(engine, REF, colour="red")
    with pytest.raises(ValueError, match="filled_quantity 150.0 exceeds quantity 100.0"):
        update_order(engine, REF, filled_quantity=150.0)
    with pytest.raises(LiveRecordConflict, match="side: stored 'buy', given 'sell'"):
        record_order(engine, an_order(side="sell"))
    with pytest.raises(ValueError, match="a LIMIT order needs a limit_price"):
        record_order(engine, an_order("o-2", order_type="LIMIT"))
    with pytest.raises(KeyError, match="episode 'other' is not recorded"):
        record_order(engine, an_order("o-3", episode_id="other"))
    assert session_orders(engine, "s1")["status"].tolist() == ["partially_filled"]


def test_open_orders_and_known_refs(engine):
    open_(engine)
    open_(engine, "s2", account_key="acct-other")
    record_order(engine, an_order("tt:ab12cd34:s0x3k0:AAA:B:0", status="submitted"))
    record_order(engine, an_order("tt:ab12cd34:s0x3k0:BBB:B:0", instrument="BBB", status="filled"))
    record_order(engine, an_order("tt:ab12cd34:s0x3k0:CCC:S:0", instrument="CCC", side="sell",
                                  status="cancel_pending"))
    record_order(engine, an_order("paper-1", order_ref=None, status="submitted"))
    record_order(engine, an_order("tt:99999999:s0x3k0:AAA:B:0", episode_id="s2", status="submitted"))
    assert open_orders(engine, "s1")["order_id"].tolist() == [
        "paper-1", "tt:ab12cd34:s0x3k0:AAA:B:0", "tt:ab12cd34:s0x3k0:CCC:S:0"]
    assert known_order_refs(engine, "s1") == {
        "tt:ab12cd34:s0x3k0:AAA:B:0", "tt:ab12cd34:s0x3k0:BBB:B:0", "tt:ab12cd34:s0x3k0:CCC:S:0"}
    assert known_order_refs(engine, "s2") == {"tt:99999999:s0x3k0:AAA:B:0"}
    with pytest.raises(LiveRecordConflict, match="already belongs to order 'tt:ab12cd34:s0x3k0:BBB:B:0'"):
        update_order(engine, "paper-1", order_ref="tt:ab12cd34:s0x3k0:BBB:B:0")


def test_fills_are_idempotent_and_a_conflicting_fill_is_refused(engine):
    open_(engine)
    record_order(engine, an_order())
    execution = {"fill_id": "0001f4e8.65e5b1a2.01.01", "order_id": REF, "ts": BAR0 + pd.Timedelta(seconds=3),
                 "instrument": "AAA", "quantity": 40.0, "price": 101.5, "shadow_price": 101.4,
                 "divergence_bps": 9.86}
    assert record_fill(engine, execution) is True
    assert record_fill(engine, execution) is False  # IB re-sends executions
    assert record_fill(engine, execution | {"commission": 0.35}) is False  # its commission report came later
    with pytest.raises(LiveRecordConflict, match="quantity: stored 40.0, given 50.0"):
        record_fill(engine, execution | {"quantity": 50.0})
    with pytest.raises(LiveRecordConflict, match="price: stored 101.5, given 101.6"):
        record_fill(engine, execution | {"price": 101.6})
    # no shadow price (NaN, as the store reads it everywhere): NULL, and so is the divergence
    assert record_fill(engine, execution | {"fill_id": "x1", "quantity": 10.0, "shadow_price": float("nan"),
                                            "divergence_bps": float("nan")}) is True
    fills = session_fills(engine, "s1")
    assert fills["fill_id"].tolist() == ["0001f4e8.65e5b1a2.01.01", "x1"]
    assert fills[["quantity", "price", "commission", "shadow_price", "divergence_bps"]].iloc[0].tolist() == [
        40.0, 101.5, 0.35, 101.4, 9.86]
    with engine.connect() as conn:
        nulls = conn.execute(sa.text("SELECT shadow_price IS NULL AND divergence_bps IS NULL FROM tt_fill "
                                     "WHERE fill_id = 'x1'")).scalar()
    assert nulls is True
    with pytest.raises(ValueError, match="wrong sign for a buy order"):
        record_fill(engine, execution | {"fill_id": "x2", "quantity": -40.0})
    with pytest.raises(KeyError, match="order 'nope' is not recorded; record_order it first"):
        record_fill(engine, execution | {"fill_id": "x3", "order_id": "nope"})
    with pytest.raises(ValueError, match="price must be a finite number"):
        record_fill(engine, execution | {"fill_id": "x4", "price": float("nan")})
    assert len(session_fills(engine, "s1")) == 2


# --- migration -------------------------------------------------------------------------------


def test_migration_0006_round_trip(fresh_schema_url):
    engine = create_store_engine(fresh_schema_url)
    try:
        ensure_schema(engine)
        command.downgrade(alembic_config(fresh_schema_url), "0005")
        inspector = sa.inspect(engine)
        assert not {"tt_live_session", "tt_live_audit"} & set(inspector.get_table_names())
        assert "order_ref" not in {c["name"] for c in inspector.get_columns("tt_order")}
        assert "shadow_price" not in {c["name"] for c in inspector.get_columns("tt_fill")}
        with engine.connect() as conn:
            # resolved through the search_path: this schema only
            assert conn.execute(sa.text("SELECT to_regprocedure(:f)"), {"f": f"{LIVE_AUDIT_GUARD}()"}).scalar() is None
        command.upgrade(alembic_config(fresh_schema_url), "head")
        assert _diffs(engine) == []
        with engine.connect() as conn:
            conn.execute(sa.insert(SESSION).values(
                session_id="m", account_key="k", mode="paper", policy_version="v", feature_set_hash="f",
                status="running", config={}))
            with pytest.raises(sa.exc.IntegrityError, match="ck_tt_live_session_ended"):
                conn.execute(sa.update(SESSION).values(status="stopped"))
    finally:
        engine.dispose()
