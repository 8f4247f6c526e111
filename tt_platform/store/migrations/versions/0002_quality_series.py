"""tt_quality_results keyed by the series checked: raw or adjusted bars.

Existing results were all computed on raw bars, so they get ``adjusted = false``. The primary key
grows to (check_name, instrument, partition_key, adjusted), so the results on the adjusted series
of a partition sit next to those on the raw series instead of overwriting them.

Downgrading drops the results on adjusted bars: the old key holds one result per check,
instrument and partition, and the raw series' result is the one it always held.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "tt_quality_results"
PRIMARY_KEY = "pk_tt_quality_results"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("adjusted", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.drop_constraint(op.f(PRIMARY_KEY), TABLE, type_="primary")
    op.create_primary_key(op.f(PRIMARY_KEY), TABLE, ["check_name", "instrument", "partition_key", "adjusted"])


def downgrade() -> None:
    op.execute(sa.text(f"DELETE FROM {TABLE} WHERE adjusted"))
    op.drop_constraint(op.f(PRIMARY_KEY), TABLE, type_="primary")
    op.drop_column(TABLE, "adjusted")
    op.create_primary_key(op.f(PRIMARY_KEY), TABLE, ["check_name", "instrument", "partition_key"])
