"""The tt_ tables: one ``MetaData`` that the Alembic migrations reproduce exactly.

Conventions:
- every timestamp is ``timestamptz``; daily values (bars, corporate-action ex-dates) are stamped
  00:00 UTC of their date, the same convention as ``tt_platform.data.bars``;
- market data (prices, features, quality results) is keyed by the symbol text, not by a foreign
  key to ``tt_instruments``: importers write bars for symbols IB has not resolved yet;
- every table keyed by episode references ``tt_episode`` with ``ON DELETE CASCADE`` (deleting an
  episode removes its log) and has an index on ``(episode_id, ts)``;
- text columns use the "C" collation (see ``TEXT``);
- columns with ``onupdate=func.now()`` are refreshed by ``upsert_frame`` whenever a row changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

EPISODE_KINDS = ("train", "eval", "backtest", "paper", "live")
ORDER_SIDES = ("buy", "sell")
LIVE_MODES = ("paper", "live")
LIVE_SESSION_STATUSES = ("running", "stopped", "canceled", "failed", "abandoned")

TS = sa.DateTime(timezone=True)
FLOAT = sa.Double()
# Text here is identifiers and codes: byte-order collation keeps key comparisons fast (no locale
# rules) and their order the same on every server.
TEXT = sa.Text(collation="C")


# Dagster (and MLflow) keep their own Alembic history in ``alembic_version``; ours must not
# collide when they share a database.
VERSION_TABLE = "tt_alembic_version"


def _now() -> sa.ColumnElement:
    return sa.func.now()


def _episode_fk(nullable: bool = False) -> sa.Column:
    return sa.Column(
        "episode_id",
        TEXT,
        sa.ForeignKey("tt_episode.episode_id", ondelete="CASCADE"),
        nullable=nullable,
    )


prices = sa.Table(
    "tt_prices",
    metadata,
    sa.Column("instrument", TEXT, nullable=False),
    sa.Column("interval", TEXT, nullable=False),
    sa.Column("adjusted", sa.Boolean, nullable=False),
    sa.Column("ts", TS, nullable=False),
    sa.Column("open", FLOAT, nullable=False),
    sa.Column("high", FLOAT, nullable=False),
    sa.Column("low", FLOAT, nullable=False),
    sa.Column("close", FLOAT, nullable=False),
    sa.Column("volume", FLOAT, nullable=False),
    sa.Column("source", TEXT, nullable=False),
    sa.Column("ingested_at", TS, nullable=False, server_default=_now(), onupdate=_now()),
    # The key order makes the primary-key index serve (instrument, interval, adjusted, ts) range scans.
    sa.PrimaryKeyConstraint("instrument", "interval", "adjusted", "ts"),
)

watchlist_version = sa.Table(
    "tt_watchlist_version",
    metadata,
    sa.Column("snapshot_hash", TEXT, primary_key=True),
    sa.Column("symbols", JSONB, nullable=False),
    sa.Column("source", TEXT, nullable=False),
    sa.Column("created_at", TS, nullable=False, server_default=_now()),
)

instruments = sa.Table(
    "tt_instruments",
    metadata,
    sa.Column("symbol", TEXT, primary_key=True),
    sa.Column("con_id", sa.BigInteger, nullable=True),
    sa.Column("exchange", TEXT, nullable=True),
    sa.Column("primary_exchange", TEXT, nullable=True),
    sa.Column("currency", TEXT, nullable=True),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("listed_at", TS, nullable=True),
    sa.Column("delisted_at", TS, nullable=True),
    # Why IB could not resolve the symbol (ambiguous, unknown, ...); NULL once resolved.
    sa.Column("unresolved_reason", TEXT, nullable=True),
    sa.Column("updated_at", TS, nullable=False, server_default=_now(), onupdate=_now()),
)

corporate_actions = sa.Table(
    "tt_corporate_actions",
    metadata,
    sa.Column("symbol", TEXT, nullable=False),
    sa.Column("ex_date", TS, nullable=False),
    sa.Column("action_type", TEXT, nullable=False),
    # split ratio (e.g. 7.0 for 7:1) or cash dividend per share, depending on action_type
    sa.Column("value", FLOAT, nullable=False),
    sa.Column("source", TEXT, nullable=False),
    sa.PrimaryKeyConstraint("symbol", "ex_date", "action_type"),
)

# Features are stored wide: one row per (feature set, instrument, ts) whose arrays hold every
# feature of the set, in the order ``tt_feature_sets.feature_names`` gives. ``tt_features`` is a
# view that unnests them into one row per feature (see ``features_view``).
ARRAYS_SHAPE = (
    "array_ndims(value) = 1 AND array_lower(value, 1) = 1 AND cardinality(value) = cardinality(valid)"
    " AND array_lower(valid, 1) = 1 AND array_position(value, NULL) IS NULL"
    " AND array_position(valid, NULL) IS NULL"
)

feature_sets = sa.Table(
    "tt_feature_sets",
    metadata,
    sa.Column("feature_set_hash", TEXT, primary_key=True),
    # element i names element i of every tt_feature_values.value / .valid array of this set
    sa.Column("feature_names", sa.ARRAY(sa.Text), nullable=False),
    # the set's canonical recipe (FeatureSet.canonical()), when the writer had it
    sa.Column("definition", JSONB, nullable=True),
    sa.Column("created_at", TS, nullable=False, server_default=_now()),
    sa.CheckConstraint("array_ndims(feature_names) = 1", name="names_shape"),
)

feature_values = sa.Table(
    "tt_feature_values",
    metadata,
    # no foreign key to tt_feature_sets: the writers register the set in the same transaction,
    # and a per-row key check would double the cost of bulk writes
    sa.Column("feature_set_hash", TEXT, nullable=False),
    sa.Column("instrument", TEXT, nullable=False),
    sa.Column("ts", TS, nullable=False),
    # normalized values as float4, exactly the float32 policies consume; 0 where not valid
    sa.Column("value", sa.ARRAY(sa.REAL), nullable=False),
    # False during warm-up windows or where an input was missing
    sa.Column("valid", sa.ARRAY(sa.Boolean), nullable=False),
    sa.PrimaryKeyConstraint("feature_set_hash", "instrument", "ts"),
    sa.Index(None, "instrument", "ts"),
    # one dimension from index 1, equal lengths, no NULL elements: every row has the same layout
    sa.CheckConstraint(ARRAYS_SHAPE, name="arrays_shape"),
)

# The ``tt_features`` view (created by migration 0003, not part of ``metadata``): one row per
# (instrument, ts, feature set, feature), as the long table it replaced; ``value`` is NULL where
# ``valid`` is false.
features_view = sa.table(
    "tt_features",
    sa.column("instrument", TEXT),
    sa.column("ts", TS),
    sa.column("feature_set_hash", TEXT),
    sa.column("feature", TEXT),
    sa.column("value", FLOAT),
    sa.column("valid", sa.Boolean),
)

quality_results = sa.Table(
    "tt_quality_results",
    metadata,
    sa.Column("check_name", TEXT, nullable=False),
    # '*' for checks over a whole partition rather than one instrument
    sa.Column("instrument", TEXT, nullable=False),
    sa.Column("partition_key", TEXT, nullable=False),
    # the series checked: raw (false) or split- and dividend-adjusted (true) bars; the results of
    # one never overwrite those of the other
    sa.Column("adjusted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("severity", TEXT, nullable=False),
    sa.Column("value", FLOAT, nullable=True),
    sa.Column("details", JSONB, nullable=True),
    sa.Column("checked_at", TS, nullable=False, server_default=_now(), onupdate=_now()),
    sa.PrimaryKeyConstraint("check_name", "instrument", "partition_key", "adjusted"),
)

policy = sa.Table(
    "tt_policy",
    metadata,
    sa.Column("policy_id", TEXT, primary_key=True),
    sa.Column("mlflow_run_id", TEXT, nullable=True),
    sa.Column("algo", TEXT, nullable=False),
    sa.Column("feature_set_hash", TEXT, nullable=False),
    sa.Column("data_snapshot_hash", TEXT, nullable=False),
    sa.Column("config_hash", TEXT, nullable=False),
    sa.Column("config", JSONB, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("code_version", TEXT, nullable=False),
    sa.Column("created_at", TS, nullable=False, server_default=_now()),
    sa.Column("model_uri", TEXT, nullable=True),
)

episode = sa.Table(
    "tt_episode",
    metadata,
    sa.Column("episode_id", TEXT, primary_key=True),
    # NULL for baseline strategies that are not a trained policy
    sa.Column("policy_id", TEXT, sa.ForeignKey("tt_policy.policy_id"), nullable=True, index=True),
    sa.Column("kind", TEXT, nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("ended_at", TS, nullable=True),
    sa.Column("seed", sa.BigInteger, nullable=True),
    sa.Column("config", JSONB, nullable=True),
    sa.Column("metrics", JSONB, nullable=True),
    sa.CheckConstraint(f"kind IN {EPISODE_KINDS!r}", name="kind"),
)

action = sa.Table(
    "tt_action",
    metadata,
    _episode_fk(),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("ts", TS, nullable=False),
    sa.Column("instrument", TEXT, nullable=False),
    sa.Column("action", FLOAT, nullable=False),
    sa.PrimaryKeyConstraint("episode_id", "step", "instrument"),
    sa.Index(None, "episode_id", "ts"),
)

reward = sa.Table(
    "tt_reward",
    metadata,
    _episode_fk(),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("ts", TS, nullable=False),
    sa.Column("reward", FLOAT, nullable=False),
    sa.Column("components", JSONB, nullable=True),
    sa.PrimaryKeyConstraint("episode_id", "step"),
    sa.Index(None, "episode_id", "ts"),
)

equity_curve = sa.Table(
    "tt_equity_curve",
    metadata,
    _episode_fk(),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("ts", TS, nullable=False),
    sa.Column("equity", FLOAT, nullable=False),
    sa.Column("cash", FLOAT, nullable=True),
    sa.Column("gross_exposure", FLOAT, nullable=True),
    sa.Column("drawdown", FLOAT, nullable=True),
    sa.PrimaryKeyConstraint("episode_id", "step"),
    sa.Index(None, "episode_id", "ts"),
)

signal_scores = sa.Table(
    "tt_signal_scores",
    metadata,
    sa.Column("run_id", TEXT, nullable=False),
    sa.Column("ts", TS, nullable=False),
    sa.Column("instrument", TEXT, nullable=False),
    sa.Column("score", FLOAT, nullable=True),
    sa.PrimaryKeyConstraint("run_id", "ts", "instrument"),
)

target_weights = sa.Table(
    "tt_target_weights",
    metadata,
    _episode_fk(),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("ts", TS, nullable=False),
    sa.Column("instrument", TEXT, nullable=False),
    sa.Column("weight", FLOAT, nullable=False),
    sa.PrimaryKeyConstraint("episode_id", "step", "instrument"),
    sa.Index(None, "episode_id", "ts"),
)

order = sa.Table(
    "tt_order",
    metadata,
    sa.Column("order_id", TEXT, primary_key=True),
    _episode_fk(nullable=True),
    sa.Column("ts", TS, nullable=False),
    sa.Column("instrument", TEXT, nullable=False),
    sa.Column("side", TEXT, nullable=False),
    sa.Column("quantity", FLOAT, nullable=False),
    sa.Column("order_type", TEXT, nullable=False),
    sa.Column("limit_price", FLOAT, nullable=True),
    sa.Column("status", TEXT, nullable=False),
    sa.Column("broker_order_id", TEXT, nullable=True),
    # IB's orderRef, the idempotency key of a live order (``tt_platform.live.order_refs``)
    sa.Column("order_ref", TEXT, nullable=True, unique=True),
    sa.Column("tif", TEXT, nullable=True),
    sa.Column("submitted_at", TS, nullable=True),
    sa.Column("updated_at", TS, nullable=False, server_default=_now(), onupdate=_now()),
    sa.Column("filled_quantity", FLOAT, nullable=False, server_default=sa.text("0")),
    sa.Column("avg_fill_price", FLOAT, nullable=True),
    # the broker's last word on the order (rejection reason, cancel cause)
    sa.Column("message", TEXT, nullable=True),
    sa.CheckConstraint(f"side IN {ORDER_SIDES!r}", name="side"),
    sa.Index(None, "episode_id", "ts"),
)

fill = sa.Table(
    "tt_fill",
    metadata,
    sa.Column("fill_id", TEXT, primary_key=True),
    sa.Column("order_id", TEXT, sa.ForeignKey("tt_order.order_id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("ts", TS, nullable=False),
    sa.Column("instrument", TEXT, nullable=False),
    # signed: positive bought, negative sold
    sa.Column("quantity", FLOAT, nullable=False),
    sa.Column("price", FLOAT, nullable=False),
    sa.Column("commission", FLOAT, nullable=False, server_default=sa.text("0")),
    sa.Column("slippage", FLOAT, nullable=True),
    # what the paper (shadow) simulation would have filled this execution at
    sa.Column("shadow_price", FLOAT, nullable=True),
    # price vs shadow_price in basis points, signed: positive = the real fill was worse for the
    # order's side (paid more on a buy, got less on a sell)
    sa.Column("divergence_bps", FLOAT, nullable=True),
)

portfolio = sa.Table(
    "tt_portfolio",
    metadata,
    _episode_fk(),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("ts", TS, nullable=False),
    sa.Column("cash", FLOAT, nullable=False),
    sa.Column("equity", FLOAT, nullable=False),
    sa.Column("leverage", FLOAT, nullable=True),
    sa.PrimaryKeyConstraint("episode_id", "step"),
    sa.Index(None, "episode_id", "ts"),
)

holdings = sa.Table(
    "tt_holdings",
    metadata,
    _episode_fk(),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("ts", TS, nullable=False),
    sa.Column("instrument", TEXT, nullable=False),
    sa.Column("quantity", FLOAT, nullable=False),
    sa.Column("market_value", FLOAT, nullable=True),
    sa.PrimaryKeyConstraint("episode_id", "step", "instrument"),
    sa.Index(None, "episode_id", "ts"),
)

# What each (instrument, month) partition of the bars holds: bars stored, or absent with the
# reason (not listed yet, delisted, refused). A month partition is complete when every active
# symbol has a row here that reaches the month's end or the last completed session.
bar_coverage = sa.Table(
    "tt_bar_coverage",
    metadata,
    sa.Column("instrument", TEXT, nullable=False),
    sa.Column("interval", TEXT, nullable=False),
    sa.Column("adjusted", sa.Boolean, nullable=False),
    sa.Column("partition_key", TEXT, nullable=False),
    sa.Column("status", TEXT, nullable=False),
    sa.Column("reason", TEXT, nullable=True),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("first_ts", TS, nullable=True),
    sa.Column("last_ts", TS, nullable=True),
    # the last day the month was fetched through (the month in progress ends at the last session)
    sa.Column("fetched_through", TS, nullable=False),
    sa.Column("source", TEXT, nullable=False),
    sa.Column("updated_at", TS, nullable=False, server_default=_now(), onupdate=_now()),
    sa.PrimaryKeyConstraint("instrument", "interval", "adjusted", "partition_key"),
    sa.CheckConstraint("status IN ('stored', 'absent')", name="status"),
)

# One row per paper / live trading session: who holds the account (at most one running session
# per account_key, kept alive by heartbeats) and how the session ended. Its steps, marks and
# orders live in the tt_episode of the same id (kind = mode).
live_session = sa.Table(
    "tt_live_session",
    metadata,
    sa.Column("session_id", TEXT, primary_key=True),
    # the Dagster run that runs it now (a restarted session gets the new run's id)
    sa.Column("run_id", TEXT, nullable=True),
    # a hash or masked label of the broker account, never the account id itself
    sa.Column("account_key", TEXT, nullable=False),
    sa.Column("mode", TEXT, nullable=False),
    sa.Column("policy_id", TEXT, nullable=True),
    sa.Column("policy_version", TEXT, nullable=False),
    sa.Column("feature_set_hash", TEXT, nullable=False),
    sa.Column("status", TEXT, nullable=False),
    sa.Column("started_at", TS, nullable=False, server_default=_now()),
    sa.Column("heartbeat_at", TS, nullable=False, server_default=_now()),
    sa.Column("ended_at", TS, nullable=True),
    sa.Column("restarts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("last_bar_time", TS, nullable=True),
    sa.Column("equity", FLOAT, nullable=True),
    sa.Column("reason", TEXT, nullable=True),
    sa.Column("config", JSONB, nullable=False),
    sa.CheckConstraint(f"mode IN {LIVE_MODES!r}", name="mode"),
    sa.CheckConstraint(f"status IN {LIVE_SESSION_STATUSES!r}", name="status"),
    # a session has ended exactly when it is not running
    sa.CheckConstraint("(status = 'running') = (ended_at IS NULL)", name="ended"),
    sa.Index(None, "account_key", "status"),
)

# The decision audit of the live loop: one row per (session, step), the columns of
# ``tt_platform.live.decision.AuditRecord.as_row()``. Append-only: triggers created by migration
# 0006 (function ``LIVE_AUDIT_GUARD``) refuse UPDATE, DELETE and TRUNCATE. session_id is checked
# by the writer rather than by a foreign key, which would make deleting or truncating a session
# row reach into this table.
live_audit = sa.Table(
    "tt_live_audit",
    metadata,
    sa.Column("audit_id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("session_id", TEXT, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("recorded_at", TS, nullable=False, server_default=_now()),
    sa.Column("run_id", TEXT, nullable=False),
    sa.Column("bar_time", TS, nullable=False),
    sa.Column("policy_version", TEXT, nullable=False),
    sa.Column("feature_set_hash", TEXT, nullable=False),
    sa.Column("verdict", TEXT, nullable=False),
    sa.Column("breaches", TEXT, nullable=False),
    sa.Column("n_orders", sa.Integer, nullable=False),
    # the decision's order refs, a JSON array of strings
    sa.Column("order_refs", JSONB, nullable=False),
    sa.Column("latency_ms", FLOAT, nullable=False),
    sa.Column("guard_status", TEXT, nullable=False),
    # comma-separated ("" when none)
    sa.Column("guard_reasons", TEXT, nullable=False),
    sa.Column("guard_trading_day", TEXT, nullable=False),
    sa.Column("guard_equity", FLOAT, nullable=False),
    sa.Column("guard_session_drawdown", FLOAT, nullable=True),
    sa.Column("guard_session_drawdown_threshold", FLOAT, nullable=True),
    sa.Column("guard_breaker_tripped_now", sa.Boolean, nullable=False),
    sa.Column("guard_daily_halted", sa.Boolean, nullable=False),
    sa.Column("guard_daily_loss_limit", FLOAT, nullable=True),
    sa.Column("guard_flattening", sa.Boolean, nullable=False),
    sa.UniqueConstraint("session_id", "step"),
    sa.CheckConstraint("step >= 0", name="step"),
    sa.CheckConstraint(
        "CASE WHEN jsonb_typeof(order_refs) = 'array' THEN jsonb_array_length(order_refs) = n_orders ELSE false END",
        name="order_refs",
    ),
    comment=(
        "Decision audit of the paper / live loop, one row per (session_id, step); append-only: "
        "tt_live_audit_append_only refuses UPDATE, DELETE and TRUNCATE."
    ),
)

# the trigger function of migration 0006 that keeps tt_live_audit append-only
LIVE_AUDIT_GUARD = "tt_live_audit_append_only"

# The journal of the paper / live loop's orders: one row per INSERT, UPDATE or DELETE of a tt_order
# row with an order_ref, holding the order as it was after (before, for a DELETE) the change.
# Written only by the trigger function ``ORDER_JOURNAL`` of migration 0007, in the transaction of
# the change; append-only (``ORDER_EVENT_GUARD`` refuses UPDATE, DELETE and TRUNCATE). No foreign
# key: the journal outlives the orders it describes.
order_event = sa.Table(
    "tt_order_event",
    metadata,
    sa.Column("event_id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("recorded_at", TS, nullable=False, server_default=sa.text("clock_timestamp()")),
    sa.Column("operation", TEXT, nullable=False),
    sa.Column("order_id", TEXT, nullable=False, index=True),
    sa.Column("order_ref", TEXT, nullable=False),
    # the order's episode_id: the paper / live session
    sa.Column("session_id", TEXT, nullable=True, index=True),
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
    sa.CheckConstraint("operation IN ('INSERT', 'UPDATE', 'DELETE')", name="operation"),
    comment=(
        "Journal of the paper / live loop's orders, one row per change of a tt_order row with an "
        "order_ref, written by the trigger function tt_order_journal; append-only: "
        "tt_order_event_append_only refuses UPDATE, DELETE and TRUNCATE."
    ),
)

# the trigger functions of migration 0007: the journal's writer and its append-only guard
ORDER_JOURNAL = "tt_order_journal"
ORDER_EVENT_GUARD = "tt_order_event_append_only"

EPISODE_TABLES = (action, reward, equity_curve, target_weights, portfolio, holdings)


def table(name: str) -> sa.Table:
    """The tt_ table called ``name``; a clear KeyError for unknown names."""
    try:
        return metadata.tables[name]
    except KeyError:
        raise KeyError(f"no table {name!r} in the tt schema; known: {sorted(metadata.tables)}") from None
