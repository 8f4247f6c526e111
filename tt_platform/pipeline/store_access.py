"""One store engine per database URL per process, migrated to the current schema on first use."""

from __future__ import annotations

import threading

from sqlalchemy.engine import Engine

from tt_platform.settings import PlatformSettings
from tt_platform.store.engine import create_store_engine, database_url, ensure_schema

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def open_store(settings: PlatformSettings) -> Engine:
    url = database_url(settings)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create_store_engine(url)
            ensure_schema(engine)
            _engines[url] = engine
        return engine
