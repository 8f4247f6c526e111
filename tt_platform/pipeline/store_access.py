"""One store engine per database URL per process, migrated to the current schema on first use."""

from __future__ import annotations

import threading

from sqlalchemy.engine import Engine

from tt_platform.settings import PlatformSettings
from tt_platform.store.engine import connect_store, database_url

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def open_store(settings: PlatformSettings) -> Engine:
    url = database_url(settings)
    with _lock:
        if url not in _engines:
            _engines[url] = connect_store(settings)
        return _engines[url]
