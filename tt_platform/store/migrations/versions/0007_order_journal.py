"""Append-only journal of live and paper orders.

- ``tt_order_event``: one row per change of a ``tt_order`` row that carries an order_ref (the
  orders of the paper / live loop; backtest orders have none): what the order looked like after
  its INSERT or UPDATE, or before its DELETE. A trigger on ``tt_order`` writes it in the same
  transaction as the change, so no code path of the platform can change an order unrecorded.
- The journal itself is append-only: the trigger function ``tt_order_event_append_only`` refuses
  UPDATE and DELETE (row level) and TRUNCATE (statement level), for the platform's own role too.

Downgrading drops the journal and its triggers.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types of store/schema.py at this revision.
TEXT = sa.Text(collation="C")
TS = sa.DateTime(timezone=True)
FLOAT = sa.Double()

JOURNAL_FUNCTION = "tt_order_journal"
GUARD_FUNCTION = "tt_order_event_append_only"
COMMENT = (
    "Journal of the paper / live loop's orders, one row per change of a tt_order row with an "
    f"order_ref, written by the trigger function {JOURNAL_FUNCTION}; append-only: {GUARD_FUNCTION} "
    "refuses UPDATE, DELETE and TRUNCATE."
)
# the state each event keeps: its column -> the order's column (the session is the order's episode)
STATE = {name: name for name in ("order_id", "order_ref", "instrument", "side", "quantity", "order_type",
                                 "limit_price", "status", "broker_order_id", "filled_quantity", "avg_fill_price",
                                 "message")} | {"session_id": "episode_id"}

JOURNAL_FUNCTION_SQL = f"""
CREATE FUNCTION {JOURNAL_FUNCTION}() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r tt_order%ROWTYPE;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    INSERT INTO tt_order_event (operation, {", ".join(STATE)})
    VALUES (TG_OP, {", ".join("r." + column for column in STATE.values())});
    RETURN NULL;
END
$$
"""

GUARD_FUNCTION_SQL = f"""
CREATE FUNCTION {GUARD_FUNCTION}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'tt_order_event is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'order events are recorded once, by the trigger on tt_order';
END
$$
"""

TRIGGERS = {
    ("tt_order_journal_write", "tt_order"):
        f"AFTER INSERT OR UPDATE ON tt_order FOR EACH ROW WHEN (NEW.order_ref IS NOT NULL) "
        f"EXECUTE FUNCTION {JOURNAL_FUNCTION}()",
    ("tt_order_journal_delete", "tt_order"):
        f"AFTER DELETE ON tt_order FOR EACH ROW WHEN (OLD.order_ref IS NOT NULL) EXECUTE FUNCTION {JOURNAL_FUNCTION}()",
    ("tt_order_event_no_update_delete", "tt_order_event"):
        f"BEFORE UPDATE OR DELETE ON tt_order_event FOR EACH ROW EXECUTE FUNCTION {GUARD_FUNCTION}()",
    ("tt_order_event_no_truncate", "tt_order_event"):
        f"BEFORE TRUNCATE ON tt_order_event FOR EACH STATEMENT EXECUTE FUNCTION {GUARD_FUNCTION}()",
}


def upgrade() -> None:
    op.create_table(
        "tt_order_event",
        sa.Column("event_id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("recorded_at", TS, server_default=sa.text("clock_timestamp()"), nullable=False),
        sa.Column("operation", TEXT, nullable=False),
        sa.Column("order_id", TEXT, nullable=False),
        sa.Column("order_ref", TEXT, nullable=False),
        sa.Column("session_id", TEXT, nullable=True),
        sa.Column("instrument", TEXT, nullable=False),
        sa.Column("side", TEXT, nullable=False),
        sa.Column("quantity", FLOAT, nullable=False),
        sa.Column("order_type", TEXT, nullable=False),
        sa.Column("limit_price", FLOAT, nullable=True),
        sa.Column("status", TEXT, nullable=False),
        sa.Column("broker_order_id", TEXT, nullable=True),
        sa.Column("filled_quantity", FLOAT, nullable=False),
        sa.Column("avg_fill_price", FLOAT, nullable=True),
        sa.Column("message", TEXT, nullable=True),
        sa.CheckConstraint("operation IN ('INSERT', 'UPDATE', 'DELETE')", name=op.f("ck_tt_order_event_operation")),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_tt_order_event")),
        comment=COMMENT,
    )
    op.create_index(op.f("ix_tt_order_event_order_id"), "tt_order_event", ["order_id"], unique=False)
    op.create_index(op.f("ix_tt_order_event_session_id"), "tt_order_event", ["session_id"], unique=False)
    op.execute(JOURNAL_FUNCTION_SQL)
    op.execute(GUARD_FUNCTION_SQL)
    for (name, _table), definition in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {definition}")


def downgrade() -> None:
    for name, table in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON {table}")
    op.execute(f"DROP FUNCTION {JOURNAL_FUNCTION}()")
    op.execute(f"DROP FUNCTION {GUARD_FUNCTION}()")
    op.drop_index(op.f("ix_tt_order_event_session_id"), table_name="tt_order_event")
    op.drop_index(op.f("ix_tt_order_event_order_id"), table_name="tt_order_event")
    op.drop_table("tt_order_event")
