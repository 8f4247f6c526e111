"""The bar source as a Dagster resource: one class per source behind ``BarSource``, chosen by the
run config's ``data.source`` and built from explicit config objects."""

from __future__ import annotations

from datetime import date

import dagster as dg

from tt_platform.config.run_config import DataConfig
from tt_platform.data.sessions import last_completed_session
from tt_platform.data.sources.base import BarSource
from tt_platform.data.sources.factory import source_for
from tt_platform.settings import PlatformSettings


class BarSourceResource(dg.ConfigurableResource):
    """IB connection settings default to the platform settings (IB_HOST, IB_PORT, IB_CLIENT_ID);
    the account id is never part of Dagster config."""

    ib_host: str = ""
    ib_port: int = 0
    ib_client_id: int = 0
    max_open_requests: int = 50

    def build(self, data: DataConfig, settings: PlatformSettings) -> BarSource:
        return source_for(data, self.ib_config(settings) if data.source in ("ib", "emulator") else None)

    def ib_config(self, settings: PlatformSettings):
        from tt_platform.data.sources.ib import IBSourceConfig

        return IBSourceConfig(
            host=self.ib_host or settings.ib_host,
            port=self.ib_port or settings.ib_port,
            client_id=self.ib_client_id or settings.ib_client_id,
            max_open_requests=self.max_open_requests,
            # runs on this machine never share a client id (IB drops the second connection)
            client_id_locks=str(settings.home / "locks"),
        )


class MarketClockResource(dg.ConfigurableResource):
    """The last completed exchange session: what bars and features are brought up to.

    ``as_of`` (YYYY-MM-DD) pins it for replays, tests and benchmarks; empty means the exchange
    clock (XNYS sessions that have closed). It can never lie in the future.
    """

    as_of: str = ""

    def last_session(self) -> date:
        now = last_completed_session()
        if not self.as_of:
            return now
        try:
            pinned = date.fromisoformat(self.as_of)
        except ValueError:
            raise ValueError(f"market_clock.as_of: {self.as_of!r} is not a date (YYYY-MM-DD)") from None
        return min(pinned, now)
