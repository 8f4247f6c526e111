"""The universe a run trades: the run config's watchlist file or its inline symbols."""

from __future__ import annotations

from tt_platform.config.run_config import RunConfig
from tt_platform.data.watchlist import Watchlist, load_watchlist, watchlist_from_symbols


def resolve_watchlist(config: RunConfig) -> Watchlist:
    if config.universe.watchlist is not None:
        return load_watchlist(config.universe.watchlist)
    return watchlist_from_symbols(config.universe.symbols, source="run config")
