"""tt_bar_coverage: what each (instrument, month) partition of the bars holds.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types of store/schema.py at this revision.
TEXT = sa.Text(collation="C")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tt_bar_coverage",
        sa.Column("instrument", TEXT, nullable=False),
        sa.Column("interval", TEXT, nullable=False),
        sa.Column("adjusted", sa.Boolean(), nullable=False),
        sa.Column("partition_key", TEXT, nullable=False),
        sa.Column("status", TEXT, nullable=False),
        sa.Column("reason", TEXT, nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("first_ts", TS, nullable=True),
        sa.Column("last_ts", TS, nullable=True),
        sa.Column("fetched_through", TS, nullable=False),
        sa.Column("source", TEXT, nullable=False),
        sa.Column("updated_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('stored', 'absent')", name=op.f("ck_tt_bar_coverage_status")),
        sa.PrimaryKeyConstraint("instrument", "interval", "adjusted", "partition_key", name=op.f("pk_tt_bar_coverage")),
    )


def downgrade() -> None:
    op.drop_table("tt_bar_coverage")
