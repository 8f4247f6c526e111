"""PostgreSQL storage: schema and migrations, engines, fast upserts and the table repositories.

Typical use::

    from tt_platform.store import connect_store, write_bars, read_bars
    engine = connect_store()            # TT_DB_URL or the embedded server, migrated to head
    write_bars(engine, bars, source="ib", interval="1d", adjusted=False)
"""

from tt_platform.store.corporate_actions import read_corporate_actions, write_corporate_actions
from tt_platform.store.embedded import EmbeddedPostgres, EmbeddedPostgresError
from tt_platform.store.engine import (
    StoreConfigError,
    connect_store,
    create_store_engine,
    database_url,
    ensure_schema,
    normalize_url,
    safe_url,
)
from tt_platform.store.episodes import (
    EpisodeLog,
    append_episode_steps,
    delete_episode,
    finish_episode,
    list_episodes,
    read_episode,
    write_episode,
)
from tt_platform.store.features import (
    delete_features,
    read_features_long,
    read_features_wide,
    write_features_long,
    write_features_wide,
)
from tt_platform.store.orders import read_fills, read_orders, record_fills, record_orders
from tt_platform.store.policies import get_policy, list_policies, register_policy
from tt_platform.store.prices import bar_counts, delete_bars, read_bars, replace_partition, write_bars
from tt_platform.store.quality import read_quality_results, record_quality_results
from tt_platform.store.query import read_frame
from tt_platform.store.registry import (
    WatchlistConflictError,
    latest_watchlist,
    read_instruments,
    read_watchlist,
    record_watchlist,
    upsert_instruments,
)
from tt_platform.store.schema import metadata
from tt_platform.store.signals import read_signal_scores, write_signal_scores
from tt_platform.store.upsert import UpsertError, upsert_frame

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "EpisodeLog",
    "StoreConfigError",
    "UpsertError",
    "WatchlistConflictError",
    "append_episode_steps",
    "bar_counts",
    "connect_store",
    "create_store_engine",
    "database_url",
    "delete_bars",
    "delete_episode",
    "delete_features",
    "ensure_schema",
    "finish_episode",
    "get_policy",
    "latest_watchlist",
    "list_episodes",
    "list_policies",
    "metadata",
    "normalize_url",
    "read_bars",
    "read_corporate_actions",
    "read_episode",
    "read_features_long",
    "read_features_wide",
    "read_fills",
    "read_frame",
    "read_instruments",
    "read_orders",
    "read_quality_results",
    "read_signal_scores",
    "read_watchlist",
    "record_fills",
    "record_orders",
    "record_quality_results",
    "record_watchlist",
    "register_policy",
    "replace_partition",
    "safe_url",
    "upsert_frame",
    "upsert_instruments",
    "write_bars",
    "write_corporate_actions",
    "write_episode",
    "write_features_long",
    "write_features_wide",
    "write_signal_scores",
]
