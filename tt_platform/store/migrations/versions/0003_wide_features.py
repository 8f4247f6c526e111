"""Wide feature storage: one row per (feature set, instrument, ts) holding every feature value.

``tt_feature_sets`` records each feature set's ordered feature names; ``tt_feature_values``
holds, per (feature_set_hash, instrument, ts), the normalized values as ``float4[]`` and the
validity mask as ``bool[]``, element i being feature ``feature_names[i]``. The long table
``tt_features`` becomes a view with the same columns that unnests the wide rows, so SQL users
and long-form readers keep working.

Upgrade converts the rows of the long table: per feature set, the feature names found (sorted)
become its recorded order, and an (instrument, ts) lacking one of them stores it as not valid.
Downgrade converts the wide rows back into the long table (value NULL where not valid).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types of store/schema.py at this revision.
TEXT = sa.Text(collation="C")
TS = sa.DateTime(timezone=True)
FLOAT = sa.Double()
JSONB = postgresql.JSONB(astext_type=sa.Text())

# float4 holds finite magnitudes up to about 3.4028235e38; larger values cannot be converted
FLOAT4_MAX = "3.4028234663852886e38"
# magnitudes below float4's smallest normal number are stored as 0 (the conversion rejects underflow)
FLOAT4_TINY = "1.1754943508222875e-38"

ARRAYS_SHAPE = (
    "array_ndims(value) = 1 AND array_lower(value, 1) = 1 AND cardinality(value) = cardinality(valid)"
    " AND array_lower(valid, 1) = 1 AND array_position(value, NULL) IS NULL"
    " AND array_position(valid, NULL) IS NULL"
)

VIEW_SQL = """
CREATE VIEW tt_features AS
SELECT v.instrument,
       v.ts,
       v.feature_set_hash,
       f.feature COLLATE "C" AS feature,
       CASE WHEN f.valid THEN f.value::double precision END AS value,
       f.valid
FROM tt_feature_values AS v
JOIN tt_feature_sets AS s ON s.feature_set_hash = v.feature_set_hash
CROSS JOIN LATERAL unnest(s.feature_names, v.value, v.valid) AS f(feature, value, valid)
"""

VIEW_COMMENT = (
    "One row per (instrument, ts, feature_set_hash, feature), unnested from tt_feature_values; "
    "value is NULL where valid is false."
)


def _create_wide_tables() -> None:
    op.create_table(
        "tt_feature_sets",
        sa.Column("feature_set_hash", TEXT, nullable=False),
        sa.Column("feature_names", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("definition", JSONB, nullable=True),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("array_ndims(feature_names) = 1", name=op.f("ck_tt_feature_sets_names_shape")),
        sa.PrimaryKeyConstraint("feature_set_hash", name=op.f("pk_tt_feature_sets")),
    )
    op.create_table(
        "tt_feature_values",
        sa.Column("feature_set_hash", TEXT, nullable=False),
        sa.Column("instrument", TEXT, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("value", postgresql.ARRAY(sa.REAL()), nullable=False),
        sa.Column("valid", postgresql.ARRAY(sa.Boolean()), nullable=False),
        sa.CheckConstraint(ARRAYS_SHAPE, name=op.f("ck_tt_feature_values_arrays_shape")),
        sa.PrimaryKeyConstraint("feature_set_hash", "instrument", "ts", name=op.f("pk_tt_feature_values")),
    )
    op.create_index(
        op.f("ix_tt_feature_values_instrument_ts"), "tt_feature_values", ["instrument", "ts"], unique=False
    )


def _create_long_table(name: str) -> None:
    """The long table of revision 0001 (constraint and index names as there) under ``name``."""
    op.create_table(
        name,
        sa.Column("instrument", TEXT, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("feature_set_hash", TEXT, nullable=False),
        sa.Column("feature", TEXT, nullable=False),
        sa.Column("value", FLOAT, nullable=True),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("feature_set_hash", "instrument", "ts", "feature", name="pk_tt_features"),
    )
    op.create_index("ix_tt_features_instrument_ts", name, ["instrument", "ts"], unique=False)


def upgrade() -> None:
    # the old table keeps its constraint and index names (no clash with the new ones) until dropped
    op.rename_table("tt_features", "tt_features_long")
    _create_wide_tables()
    op.execute(
        """
        INSERT INTO tt_feature_sets (feature_set_hash, feature_names)
        SELECT feature_set_hash, array_agg(feature ORDER BY feature)
        FROM (SELECT DISTINCT feature_set_hash, feature FROM tt_features_long) AS names
        GROUP BY feature_set_hash
        """
    )
    op.execute(
        f"""
        INSERT INTO tt_feature_values (feature_set_hash, instrument, ts, value, valid)
        SELECT k.feature_set_hash, k.instrument, k.ts,
               array_agg(CASE WHEN l.ok THEN l.value ELSE 0 END::real ORDER BY n.ord),
               array_agg(COALESCE(l.ok, false) ORDER BY n.ord)
        FROM (SELECT DISTINCT feature_set_hash, instrument, ts FROM tt_features_long) AS k
        JOIN tt_feature_sets AS s ON s.feature_set_hash = k.feature_set_hash
        CROSS JOIN LATERAL unnest(s.feature_names) WITH ORDINALITY AS n(feature, ord)
        LEFT JOIN (
            SELECT feature_set_hash, instrument, ts, feature,
                   CASE WHEN abs(value) < {FLOAT4_TINY} THEN 0 ELSE value END AS value,
                   valid AND abs(value) <= {FLOAT4_MAX} AS ok
            FROM tt_features_long
        ) AS l
          ON l.feature_set_hash = k.feature_set_hash AND l.instrument = k.instrument
         AND l.ts = k.ts AND l.feature = n.feature COLLATE "C"
        GROUP BY k.feature_set_hash, k.instrument, k.ts
        """
    )
    op.drop_index("ix_tt_features_instrument_ts", table_name="tt_features_long")
    op.drop_table("tt_features_long")
    op.execute(VIEW_SQL)
    op.execute(f"COMMENT ON VIEW tt_features IS '{VIEW_COMMENT}'")


def downgrade() -> None:
    _create_long_table("tt_features_long")
    op.execute(
        """
        INSERT INTO tt_features_long (instrument, ts, feature_set_hash, feature, value, valid)
        SELECT instrument, ts, feature_set_hash, feature, value, valid FROM tt_features
        """
    )
    op.execute("DROP VIEW tt_features")
    op.drop_index(op.f("ix_tt_feature_values_instrument_ts"), table_name="tt_feature_values")
    op.drop_table("tt_feature_values")
    op.drop_table("tt_feature_sets")
    op.rename_table("tt_features_long", "tt_features")
