"""Paper / live trading: sessions, the append-only decision audit, live order and fill details.

- ``tt_live_session``: one row per trading session; at most one running session per account_key
  (kept by ``tt_platform.store.live.open_session``), with heartbeats and how it ended.
- ``tt_live_audit``: one row per decision (session, step). Append-only: the trigger function
  ``tt_live_audit_append_only`` raises on every UPDATE and DELETE (row level) and on TRUNCATE
  (statement level).
- ``tt_order`` gains the broker's view of an order: order_ref (IB orderRef, the idempotency key,
  unique), tif, submitted_at, updated_at, filled_quantity, avg_fill_price and message. Existing
  orders get filled_quantity 0 and updated_at the time of the upgrade.
- ``tt_fill`` gains shadow_price (the paper simulation's price for the same execution) and
  divergence_bps (signed: positive = the real fill was worse for the order's side).

Downgrading drops all of it, the audit included.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types of store/schema.py at this revision.
TEXT = sa.Text(collation="C")
TS = sa.DateTime(timezone=True)
FLOAT = sa.Double()
JSONB = postgresql.JSONB(astext_type=sa.Text())

GUARD_FUNCTION = "tt_live_audit_append_only"
AUDIT_COMMENT = (
    "Decision audit of the paper / live loop, one row per (session_id, step); append-only: "
    f"{GUARD_FUNCTION} refuses UPDATE, DELETE and TRUNCATE."
)

GUARD_FUNCTION_SQL = f"""
CREATE FUNCTION {GUARD_FUNCTION}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'tt_live_audit is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'decisions are recorded once; a correction is a new row of a later step';
END
$$
"""

GUARD_TRIGGERS = {
    "tt_live_audit_no_update_delete": "BEFORE UPDATE OR DELETE ON tt_live_audit FOR EACH ROW",
    "tt_live_audit_no_truncate": "BEFORE TRUNCATE ON tt_live_audit FOR EACH STATEMENT",
}

ORDER_COLUMNS = ("order_ref", "tif", "submitted_at", "updated_at", "filled_quantity", "avg_fill_price", "message")
FILL_COLUMNS = ("shadow_price", "divergence_bps")


def _create_live_session() -> None:
    op.create_table(
        "tt_live_session",
        sa.Column("session_id", TEXT, nullable=False),
        sa.Column("run_id", TEXT, nullable=True),
        sa.Column("account_key", TEXT, nullable=False),
        sa.Column("mode", TEXT, nullable=False),
        sa.Column("policy_id", TEXT, nullable=True),
        sa.Column("policy_version", TEXT, nullable=False),
        sa.Column("feature_set_hash", TEXT, nullable=False),
        sa.Column("status", TEXT, nullable=False),
        sa.Column("started_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("heartbeat_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("restarts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_bar_time", TS, nullable=True),
        sa.Column("equity", FLOAT, nullable=True),
        sa.Column("reason", TEXT, nullable=True),
        sa.Column("config", JSONB, nullable=False),
        sa.CheckConstraint("mode IN ('paper', 'live')", name=op.f("ck_tt_live_session_mode")),
        sa.CheckConstraint(
            "status IN ('running', 'stopped', 'canceled', 'failed', 'abandoned')",
            name=op.f("ck_tt_live_session_status"),
        ),
        sa.CheckConstraint("(status = 'running') = (ended_at IS NULL)", name=op.f("ck_tt_live_session_ended")),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_tt_live_session")),
    )
    op.create_index(
        op.f("ix_tt_live_session_account_key_status"), "tt_live_session", ["account_key", "status"], unique=False
    )


def _create_live_audit() -> None:
    op.create_table(
        "tt_live_audit",
        sa.Column("audit_id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("session_id", TEXT, nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("run_id", TEXT, nullable=False),
        sa.Column("bar_time", TS, nullable=False),
        sa.Column("policy_version", TEXT, nullable=False),
        sa.Column("feature_set_hash", TEXT, nullable=False),
        sa.Column("verdict", TEXT, nullable=False),
        sa.Column("breaches", TEXT, nullable=False),
        sa.Column("n_orders", sa.Integer(), nullable=False),
        sa.Column("order_refs", JSONB, nullable=False),
        sa.Column("latency_ms", FLOAT, nullable=False),
        sa.Column("guard_status", TEXT, nullable=False),
        sa.Column("guard_reasons", TEXT, nullable=False),
        sa.Column("guard_trading_day", TEXT, nullable=False),
        sa.Column("guard_equity", FLOAT, nullable=False),
        sa.Column("guard_session_drawdown", FLOAT, nullable=True),
        sa.Column("guard_session_drawdown_threshold", FLOAT, nullable=True),
        sa.Column("guard_breaker_tripped_now", sa.Boolean(), nullable=False),
        sa.Column("guard_daily_halted", sa.Boolean(), nullable=False),
        sa.Column("guard_daily_loss_limit", FLOAT, nullable=True),
        sa.Column("guard_flattening", sa.Boolean(), nullable=False),
        sa.CheckConstraint("step >= 0", name=op.f("ck_tt_live_audit_step")),
        sa.CheckConstraint(
            "CASE WHEN jsonb_typeof(order_refs) = 'array' THEN jsonb_array_length(order_refs) = n_orders "
            "ELSE false END",
            name=op.f("ck_tt_live_audit_order_refs"),
        ),
        sa.PrimaryKeyConstraint("audit_id", name=op.f("pk_tt_live_audit")),
        sa.UniqueConstraint("session_id", "step", name=op.f("uq_tt_live_audit_session_id_step")),
        comment=AUDIT_COMMENT,
    )
    op.execute(GUARD_FUNCTION_SQL)
    for name, when in GUARD_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION {GUARD_FUNCTION}()")


def _extend_orders_and_fills() -> None:
    op.add_column("tt_order", sa.Column("order_ref", TEXT, nullable=True))
    op.add_column("tt_order", sa.Column("tif", TEXT, nullable=True))
    op.add_column("tt_order", sa.Column("submitted_at", TS, nullable=True))
    op.add_column("tt_order", sa.Column("updated_at", TS, server_default=sa.text("now()"), nullable=False))
    op.add_column("tt_order", sa.Column("filled_quantity", FLOAT, server_default=sa.text("0"), nullable=False))
    op.add_column("tt_order", sa.Column("avg_fill_price", FLOAT, nullable=True))
    op.add_column("tt_order", sa.Column("message", TEXT, nullable=True))
    op.create_unique_constraint(op.f("uq_tt_order_order_ref"), "tt_order", ["order_ref"])
    op.add_column("tt_fill", sa.Column("shadow_price", FLOAT, nullable=True))
    op.add_column("tt_fill", sa.Column("divergence_bps", FLOAT, nullable=True))


def upgrade() -> None:
    _create_live_session()
    _create_live_audit()
    _extend_orders_and_fills()


def downgrade() -> None:
    for name in FILL_COLUMNS:
        op.drop_column("tt_fill", name)
    op.drop_constraint(op.f("uq_tt_order_order_ref"), "tt_order", type_="unique")
    for name in ORDER_COLUMNS:
        op.drop_column("tt_order", name)
    for name in GUARD_TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON tt_live_audit")
    op.execute(f"DROP FUNCTION {GUARD_FUNCTION}()")
    op.drop_table("tt_live_audit")
    op.drop_index(op.f("ix_tt_live_session_account_key_status"), table_name="tt_live_session")
    op.drop_table("tt_live_session")
