"""The IB path without IB: the bundled gateway emulator serving synthetic bars, read by IBBarSource.

``EmulatedIBBarSource`` starts the TWS-protocol emulator (``tt_platform.ib.emulator``) on a free
loopback port, serving deterministic synthetic bars for any symbol asked for (the generator of
``tt_platform.data.synthetic`` with the configured seed, so the same seed gives the same bars as
the synthetic source, prices rounded to 6 decimals in transit), and fetches through
``IBBarSource``: real ib_insync, real pacing, real reconnects, no gateway installed. ``close()``
disconnects and stops the emulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from tt_platform.data.sources.ib import IBBarSource, IBSourceConfig


def _default_faults():
    from tt_platform.ib.emulator.faults import FaultPlan

    return FaultPlan()


@dataclass(frozen=True)
class EmulatorSourceConfig:
    """How the emulator behaves; the IB client side is an ``IBSourceConfig``.

    * ``seed``: of the synthetic bars; ``last_session``: the last day with bars (default today).
    * ``unknown_symbols``: answered "no security definition" (error 200), i.e. refused.
    * ``faults``: a ``FaultPlan`` (pacing enforcement, the cap on open requests, slow answers,
      socket drops, restarts); IB's rules by default.
    * ``window_reading``: "inclusive_start" serves [end - duration, end), "exclusive_start"
      serves (end - duration, end] (drops a bar stamped at the window start).
    * ``scale``: the emulator's clock runs this much faster than real time (pacing windows,
      delays, restarts); the client's pacing clock is set to match.
    * ``account``: the paper account the emulator reports (never logged).
    """

    seed: int = 0
    last_session: date | None = None
    unknown_symbols: frozenset[str] = frozenset()
    faults: object = field(default_factory=_default_faults)
    window_reading: str = "inclusive_start"
    scale: float = 1.0
    account: str = "DU1234567"


class EmulatedIBBarSource(IBBarSource):
    """``IBBarSource`` against a private, in-process IB Gateway emulator."""

    name = "ib_emulator"

    def __init__(
        self,
        config: EmulatorSourceConfig | None = None,
        *,
        seed: int | None = None,
        client: IBSourceConfig | None = None,
    ) -> None:
        import dataclasses

        from tt_platform.ib.clock import ScaledClock, SystemClock
        from tt_platform.ib.emulator.server import GatewayEmulator, serve_in_thread
        from tt_platform.ib.emulator.sources import SyntheticBarSource

        config = config or EmulatorSourceConfig()
        if seed is not None:
            config = dataclasses.replace(config, seed=seed)
        self.emulator_config = config
        faults = config.faults
        if config.unknown_symbols:
            faults = dataclasses.replace(faults, unknown_symbols=faults.unknown_symbols | set(config.unknown_symbols))
        clock = SystemClock() if config.scale == 1.0 else ScaledClock(config.scale)
        self.emulator = GatewayEmulator(
            SyntheticBarSource(None, seed=config.seed, last_session=config.last_session),
            host="127.0.0.1",
            port=0,
            clock=clock,
            faults=faults,
            window_reading=config.window_reading,
            account=config.account,
        )
        self._gateway = serve_in_thread(self.emulator)
        from tt_platform.ib.client import ACCOUNT_REDACTOR

        ACCOUNT_REDACTOR.add(config.account)
        base = client or IBSourceConfig()
        here = {"host": "127.0.0.1", "port": self._gateway.port, "time_scale": config.scale}
        super().__init__(base.model_copy(update=here))

    @property
    def port(self) -> int:
        return self._gateway.port

    @property
    def gateway(self):
        """The emulator's background thread (``call``/``submit`` run coroutines on its loop)."""
        return self._gateway

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._gateway.stop()
