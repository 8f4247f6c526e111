"""Initial tt schema: market data, reference data, policies and episode logs.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of the column types of store/schema.py at this revision.
TEXT = sa.Text(collation="C")
TS = sa.DateTime(timezone=True)
FLOAT = sa.Double()
JSONB = postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    op.create_table(
        "tt_corporate_actions",
        sa.Column("symbol", TEXT, nullable=False),
        sa.Column("ex_date", TS, nullable=False),
        sa.Column("action_type", TEXT, nullable=False),
        sa.Column("value", FLOAT, nullable=False),
        sa.Column("source", TEXT, nullable=False),
        sa.PrimaryKeyConstraint("symbol", "ex_date", "action_type", name=op.f("pk_tt_corporate_actions")),
    )
    op.create_table(
        "tt_features",
        sa.Column("instrument", TEXT, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("feature_set_hash", TEXT, nullable=False),
        sa.Column("feature", TEXT, nullable=False),
        sa.Column("value", FLOAT, nullable=True),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("feature_set_hash", "instrument", "ts", "feature", name=op.f("pk_tt_features")),
    )
    op.create_index(op.f("ix_tt_features_instrument_ts"), "tt_features", ["instrument", "ts"], unique=False)
    op.create_table(
        "tt_instruments",
        sa.Column("symbol", TEXT, nullable=False),
        sa.Column("con_id", sa.BigInteger(), nullable=True),
        sa.Column("exchange", TEXT, nullable=True),
        sa.Column("primary_exchange", TEXT, nullable=True),
        sa.Column("currency", TEXT, nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("listed_at", TS, nullable=True),
        sa.Column("delisted_at", TS, nullable=True),
        sa.Column("unresolved_reason", TEXT, nullable=True),
        sa.Column("updated_at", TS, server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint("symbol", name=op.f("pk_tt_instruments")),
    )
    op.create_table(
        "tt_policy",
        sa.Column("policy_id", TEXT, nullable=False),
        sa.Column("mlflow_run_id", TEXT, nullable=True),
        sa.Column("algo", TEXT, nullable=False),
        sa.Column("feature_set_hash", TEXT, nullable=False),
        sa.Column("data_snapshot_hash", TEXT, nullable=False),
        sa.Column("config_hash", TEXT, nullable=False),
        sa.Column("config", JSONB, nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("code_version", TEXT, nullable=False),
        sa.Column("created_at", TS, server_default=sa.text('now()'), nullable=False),
        sa.Column("model_uri", TEXT, nullable=True),
        sa.PrimaryKeyConstraint("policy_id", name=op.f("pk_tt_policy")),
    )
    op.create_table(
        "tt_prices",
        sa.Column("instrument", TEXT, nullable=False),
        sa.Column("interval", TEXT, nullable=False),
        sa.Column("adjusted", sa.Boolean(), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("open", FLOAT, nullable=False),
        sa.Column("high", FLOAT, nullable=False),
        sa.Column("low", FLOAT, nullable=False),
        sa.Column("close", FLOAT, nullable=False),
        sa.Column("volume", FLOAT, nullable=False),
        sa.Column("source", TEXT, nullable=False),
        sa.Column("ingested_at", TS, server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint("instrument", "interval", "adjusted", "ts", name=op.f("pk_tt_prices")),
    )
    op.create_table(
        "tt_quality_results",
        sa.Column("check_name", TEXT, nullable=False),
        sa.Column("instrument", TEXT, nullable=False),
        sa.Column("partition_key", TEXT, nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("severity", TEXT, nullable=False),
        sa.Column("value", FLOAT, nullable=True),
        sa.Column("details", JSONB, nullable=True),
        sa.Column("checked_at", TS, server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint("check_name", "instrument", "partition_key", name=op.f("pk_tt_quality_results")),
    )
    op.create_table(
        "tt_signal_scores",
        sa.Column("run_id", TEXT, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("instrument", TEXT, nullable=False),
        sa.Column("score", FLOAT, nullable=True),
        sa.PrimaryKeyConstraint("run_id", "ts", "instrument", name=op.f("pk_tt_signal_scores")),
    )
    op.create_table(
        "tt_watchlist_version",
        sa.Column("snapshot_hash", TEXT, nullable=False),
        sa.Column("symbols", JSONB, nullable=False),
        sa.Column("source", TEXT, nullable=False),
        sa.Column("created_at", TS, server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint("snapshot_hash", name=op.f("pk_tt_watchlist_version")),
    )
    op.create_table(
        "tt_episode",
        sa.Column("episode_id", TEXT, nullable=False),
        sa.Column("policy_id", TEXT, nullable=True),
        sa.Column("kind", TEXT, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("config", JSONB, nullable=True),
        sa.Column("metrics", JSONB, nullable=True),
        sa.CheckConstraint("kind IN ('train', 'eval', 'backtest', 'paper', 'live')", name=op.f("ck_tt_episode_kind")),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["tt_policy.policy_id"],
            name=op.f("fk_tt_episode_policy_id_tt_policy"),
        ),
        sa.PrimaryKeyConstraint("episode_id", name=op.f("pk_tt_episode")),
    )
    op.create_index(op.f("ix_tt_episode_policy_id"), "tt_episode", ["policy_id"], unique=False)
    op.create_table(
        "tt_action",
        sa.Column("episode_id", TEXT, nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("instrument", TEXT, nullable=False),
        sa.Column("action", FLOAT, nullable=False),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["tt_episode.episode_id"],
            name=op.f("fk_tt_action_episode_id_tt_episode"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("episode_id", "step", "instrument", name=op.f("pk_tt_action")),
    )
    op.create_index(op.f("ix_tt_action_episode_id_ts"), "tt_action", ["episode_id", "ts"], unique=False)
    op.create_table(
        "tt_equity_curve",
        sa.Column("episode_id", TEXT, nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("equity", FLOAT, nullable=False),
        sa.Column("cash", FLOAT, nullable=True),
        sa.Column("gross_exposure", FLOAT, nullable=True),
        sa.Column("drawdown", FLOAT, nullable=True),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["tt_episode.episode_id"],
            name=op.f("fk_tt_equity_curve_episode_id_tt_episode"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("episode_id", "step", name=op.f("pk_tt_equity_curve")),
    )
    op.create_index(op.f("ix_tt_equity_curve_episode_id_ts"), "tt_equity_curve", ["episode_id", "ts"], unique=False)
    op.create_table(
        "tt_holdings",
        sa.Column("episode_id", TEXT, nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("instrument", TEXT, nullable=False),
        sa.Column("quantity", FLOAT, nullable=False),
        sa.Column("market_value", FLOAT, nullable=True),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["tt_episode.episode_id"],
            name=op.f("fk_tt_holdings_episode_id_tt_episode"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("episode_id", "step", "instrument", name=op.f("pk_tt_holdings")),
    )
    op.create_index(op.f("ix_tt_holdings_episode_id_ts"), "tt_holdings", ["episode_id", "ts"], unique=False)
    op.create_table(
        "tt_order",
        sa.Column("order_id", TEXT, nullable=False),
        sa.Column("episode_id", TEXT, nullable=True),
        sa.Column("ts", TS, nullable=False),
        sa.Column("instrument", TEXT, nullable=False),
        sa.Column("side", TEXT, nullable=False),
        sa.Column("quantity", FLOAT, nullable=False),
        sa.Column("order_type", TEXT, nullable=False),
        sa.Column("limit_price", FLOAT, nullable=True),
        sa.Column("status", TEXT, nullable=False),
        sa.Column("broker_order_id", TEXT, nullable=True),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_tt_order_side")),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["tt_episode.episode_id"],
            name=op.f("fk_tt_order_episode_id_tt_episode"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_tt_order")),
    )
    op.create_index(op.f("ix_tt_order_episode_id_ts"), "tt_order", ["episode_id", "ts"], unique=False)
    op.create_table(
        "tt_portfolio",
        sa.Column("episode_id", TEXT, nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("cash", FLOAT, nullable=False),
        sa.Column("equity", FLOAT, nullable=False),
        sa.Column("leverage", FLOAT, nullable=True),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["tt_episode.episode_id"],
            name=op.f("fk_tt_portfolio_episode_id_tt_episode"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("episode_id", "step", name=op.f("pk_tt_portfolio")),
    )
    op.create_index(op.f("ix_tt_portfolio_episode_id_ts"), "tt_portfolio", ["episode_id", "ts"], unique=False)
    op.create_table(
        "tt_reward",
        sa.Column("episode_id", TEXT, nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("reward", FLOAT, nullable=False),
        sa.Column("components", JSONB, nullable=True),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["tt_episode.episode_id"],
            name=op.f("fk_tt_reward_episode_id_tt_episode"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("episode_id", "step", name=op.f("pk_tt_reward")),
    )
    op.create_index(op.f("ix_tt_reward_episode_id_ts"), "tt_reward", ["episode_id", "ts"], unique=False)
    op.create_table(
        "tt_target_weights",
        sa.Column("episode_id", TEXT, nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("instrument", TEXT, nullable=False),
        sa.Column("weight", FLOAT, nullable=False),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["tt_episode.episode_id"],
            name=op.f("fk_tt_target_weights_episode_id_tt_episode"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("episode_id", "step", "instrument", name=op.f("pk_tt_target_weights")),
    )
    op.create_index(op.f("ix_tt_target_weights_episode_id_ts"), "tt_target_weights", ["episode_id", "ts"], unique=False)
    op.create_table(
        "tt_fill",
        sa.Column("fill_id", TEXT, nullable=False),
        sa.Column("order_id", TEXT, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("instrument", TEXT, nullable=False),
        sa.Column("quantity", FLOAT, nullable=False),
        sa.Column("price", FLOAT, nullable=False),
        sa.Column("commission", FLOAT, server_default=sa.text("0"), nullable=False),
        sa.Column("slippage", FLOAT, nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["tt_order.order_id"],
            name=op.f("fk_tt_fill_order_id_tt_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("fill_id", name=op.f("pk_tt_fill")),
    )
    op.create_index(op.f("ix_tt_fill_order_id"), "tt_fill", ["order_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_tt_fill_order_id"), table_name="tt_fill")
    op.drop_table("tt_fill")
    op.drop_index(op.f("ix_tt_target_weights_episode_id_ts"), table_name="tt_target_weights")
    op.drop_table("tt_target_weights")
    op.drop_index(op.f("ix_tt_reward_episode_id_ts"), table_name="tt_reward")
    op.drop_table("tt_reward")
    op.drop_index(op.f("ix_tt_portfolio_episode_id_ts"), table_name="tt_portfolio")
    op.drop_table("tt_portfolio")
    op.drop_index(op.f("ix_tt_order_episode_id_ts"), table_name="tt_order")
    op.drop_table("tt_order")
    op.drop_index(op.f("ix_tt_holdings_episode_id_ts"), table_name="tt_holdings")
    op.drop_table("tt_holdings")
    op.drop_index(op.f("ix_tt_equity_curve_episode_id_ts"), table_name="tt_equity_curve")
    op.drop_table("tt_equity_curve")
    op.drop_index(op.f("ix_tt_action_episode_id_ts"), table_name="tt_action")
    op.drop_table("tt_action")
    op.drop_index(op.f("ix_tt_episode_policy_id"), table_name="tt_episode")
    op.drop_table("tt_episode")
    op.drop_table("tt_watchlist_version")
    op.drop_table("tt_signal_scores")
    op.drop_table("tt_quality_results")
    op.drop_table("tt_prices")
    op.drop_table("tt_policy")
    op.drop_table("tt_instruments")
    op.drop_index(op.f("ix_tt_features_instrument_ts"), table_name="tt_features")
    op.drop_table("tt_features")
    op.drop_table("tt_corporate_actions")
