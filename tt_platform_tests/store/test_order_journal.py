"""The journal of the paper / live loop's orders (tt_order_event): the database writes a row for
every change of an order with an order_ref, in the change's own transaction, and refuses to
change or remove a journal row, whichever platform function or role tries."""

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from tt_platform.store.live import (
    open_session,
    order_journal,
    record_new_orders,
    record_order,
    record_order_progress,
    update_order,
)
from tt_platform.store.schema import ORDER_EVENT_GUARD, ORDER_JOURNAL

TS = pd.Timestamp("2024-03-04 15:00", tz="UTC").to_pydatetime()


def _order(ref: str, **overrides) -> dict:
    return {"order_id": ref, "order_ref": ref, "episode_id": "s1", "ts": TS, "instrument": "AAA", "side": "buy",
            "quantity": 10.0, "order_type": "MARKET", "status": "pending_submit", "tif": "DAY"} | overrides


@pytest.fixture
def engine(store_engine):
    open_session(store_engine, session_id="s1", run_id="run-1", account_key="acct-1", mode="live", policy_id=None,
                 policy_version="v1", feature_set_hash="fs1", config={}, stale_after=dt.timedelta(minutes=5))
    return store_engine


def test_every_change_of_an_order_is_journaled_in_order(engine):
    record_new_orders(engine, [_order("r1"), _order("r2", instrument="BBB", side="sell")])
    update_order(engine, "r1", status="submitted", broker_order_id=17)
    record_order_progress(engine, [{"fill_id": "e1", "order_id": "r1", "ts": TS, "instrument": "AAA",
                                    "quantity": 4.0, "price": 10.0, "commission": 1.0}],
                          [{"order_id": "r1", "status": "partially_filled", "filled_quantity": 4.0,
                            "avg_fill_price": 10.0}])
    record_order(engine, _order("r1", status="filled", filled_quantity=10.0, avg_fill_price=10.1))
    journal = order_journal(engine, order_id="r1")
    assert journal["operation"].tolist() == ["INSERT", "UPDATE", "UPDATE", "UPDATE"]
    assert journal["status"].tolist() == ["pending_submit", "submitted", "partially_filled", "filled"]
    assert journal["filled_quantity"].tolist() == [0.0, 0.0, 4.0, 10.0]
    assert journal["broker_order_id"].tolist()[1:] == ["17", "17", "17"]
    assert journal["recorded_at"].is_monotonic_increasing and journal["event_id"].is_unique
    assert order_journal(engine, session_id="s1")["order_id"].tolist() == ["r1", "r2", "r1", "r1", "r1"]


def test_an_unchanged_update_writes_nothing_and_backtest_orders_are_not_journaled(engine):
    record_new_orders(engine, [_order("r1")])
    update_order(engine, "r1", status="pending_submit")  # no change
    record_order(engine, _order("bt-1", order_ref=None, episode_id=None))
    assert order_journal(engine)["order_id"].tolist() == ["r1"]


def test_a_rolled_back_change_leaves_no_journal_row(engine):
    record_new_orders(engine, [_order("r1")])
    with pytest.raises(RuntimeError, match="after the update"):
        with engine.begin() as conn:
            update_order(conn, "r1", status="submitted")
            raise RuntimeError("after the update")
    journal = order_journal(engine)
    assert journal["status"].tolist() == ["pending_submit"]


def test_a_deleted_order_is_journaled_with_its_last_state(engine):
    record_new_orders(engine, [_order("r1", status="cancelled")])
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM tt_order WHERE order_id = 'r1'")
    journal = order_journal(engine)
    assert journal["operation"].tolist() == ["INSERT", "DELETE"] and journal["status"].iloc[-1] == "cancelled"


@pytest.mark.parametrize("statement", [
    "UPDATE tt_order_event SET status = 'filled'",
    "DELETE FROM tt_order_event",
    "TRUNCATE tt_order_event",
    "INSERT INTO tt_order_event (operation, order_id, order_ref, instrument, side, quantity, order_type, status, "
    "filled_quantity) VALUES ('DELETE', 'r1', 'r1', 'AAA', 'buy', 1, 'MARKET', 'filled', 0); "
    "UPDATE tt_order_event SET message = 'x' WHERE order_id = 'r1'",
])
def test_the_journal_refuses_update_delete_and_truncate_by_the_platforms_role(engine, statement):
    record_new_orders(engine, [_order("r1")])
    update_order(engine, "r1", status="submitted")
    before = order_journal(engine)
    with pytest.raises(sa.exc.IntegrityError, match="tt_order_event is append-only"):
        with engine.begin() as conn:
            conn.exec_driver_sql(statement)
    pd.testing.assert_frame_equal(order_journal(engine), before)


def test_the_journal_and_its_guard_are_installed(engine):
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT c.relname, t.tgname, p.proname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
            "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE p.proname IN (:journal, :guard) AND n.nspname = current_schema() ORDER BY 1, 2"
        ), {"journal": ORDER_JOURNAL, "guard": ORDER_EVENT_GUARD}).all()
    assert [tuple(r) for r in rows] == [
        ("tt_order", "tt_order_journal_delete", ORDER_JOURNAL),
        ("tt_order", "tt_order_journal_write", ORDER_JOURNAL),
        ("tt_order_event", "tt_order_event_no_truncate", ORDER_EVENT_GUARD),
        ("tt_order_event", "tt_order_event_no_update_delete", ORDER_EVENT_GUARD),
    ]


def test_a_write_ahead_batch_that_clashes_is_refused_whole_and_names_the_clash(engine):
    from tt_platform.store.live import LiveRecordConflict, get_orders

    record_new_orders(engine, [_order("r1")])
    with pytest.raises(LiveRecordConflict, match=r"orders already recorded: r1; an order is never recorded twice"):
        record_new_orders(engine, [_order("r2"), _order("r1")])
    with pytest.raises(LiveRecordConflict, match="already recorded: r1"):  # another id, the same ref
        record_new_orders(engine, [_order("r3"), _order("r4", order_ref="r1")])
    with pytest.raises(KeyError, match=r"episode\(s\) \['nope'\] that are not recorded"):
        record_new_orders(engine, [_order("r5"), _order("r6", episode_id="nope")])
    assert set(get_orders(engine, ["r1", "r2", "r3", "r4", "r5", "r6"])) == {"r1"}
    # inside a caller's transaction the refusal undoes only the batch
    with engine.begin() as conn:
        record_new_orders(conn, [_order("r7")])
        with pytest.raises(LiveRecordConflict, match="already recorded: r1"):
            record_new_orders(conn, [_order("r8"), _order("r1")])
        record_new_orders(conn, [_order("r9")])
    assert set(get_orders(engine, ["r7", "r8", "r9"])) == {"r7", "r9"}


def test_progress_updates_of_many_orders_set_each_order_its_own_fields(engine):
    from tt_platform.store.live import get_orders

    record_new_orders(engine, [_order(f"r{i}", order_type="LIMIT", limit_price=10.0 + i) for i in range(5)])
    record_order_progress(engine, [], [
        {"order_id": "r0", "status": "submitted", "broker_order_id": 100, "quantity": 9.0, "limit_price": None},
        {"order_id": "r1", "status": "submitted", "broker_order_id": 101, "quantity": 8.0, "limit_price": None},
        {"order_id": "r2", "status": "submitted", "broker_order_id": 102, "quantity": 7.0, "limit_price": 12.5},
        {"order_id": "r3", "message": "submit failed: no answer"},
        {"order_id": "r4", "message": "rounds to less than one lot", "status": "not_sent"},
    ])
    rows = get_orders(engine, [f"r{i}" for i in range(5)])
    assert [(rows[f"r{i}"]["status"], rows[f"r{i}"]["broker_order_id"], rows[f"r{i}"]["quantity"],
             rows[f"r{i}"]["limit_price"]) for i in range(3)] == [
        ("submitted", "100", 9.0, None), ("submitted", "101", 8.0, None), ("submitted", "102", 7.0, 12.5)]
    assert (rows["r3"]["status"], rows["r3"]["message"], rows["r3"]["limit_price"]) == (
        "pending_submit", "submit failed: no answer", 13.0)
    assert (rows["r4"]["status"], rows["r4"]["message"]) == ("not_sent", "rounds to less than one lot")
    # every change is journaled, one row per order changed
    assert sorted(order_journal(engine, session_id="s1").query("operation == 'UPDATE'")["order_id"]) == [
        f"r{i}" for i in range(5)]
    # an order named twice: both apply in turn, the later fields winning
    record_order_progress(engine, [], [{"order_id": "r0", "status": "partially_filled", "filled_quantity": 2.0},
                                       {"order_id": "r1", "message": "first"},
                                       {"order_id": "r0", "status": "filled", "avg_fill_price": 11.0}])
    rows = get_orders(engine, ["r0", "r1"])
    assert (rows["r0"]["status"], rows["r0"]["filled_quantity"], rows["r0"]["avg_fill_price"]) == ("filled", 2.0, 11.0)
    assert rows["r1"]["message"] == "first"
    with pytest.raises(ValueError, match="status"):
        record_order_progress(engine, [], [{"order_id": "r0", "status": "teleported"}, {"order_id": "r1", "status": "filled"}])
    assert get_orders(engine, ["r1"])["r1"]["status"] == "submitted"  # nothing of the refused call
