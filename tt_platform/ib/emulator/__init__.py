"""IB Gateway emulator: a loopback TWS-protocol server for the unmodified ib_insync client.

``python -m tt_platform.ib.emulator --port 4002 --data DIR`` (or ``tt gateway-sim``) serves a
folder of daily CSVs (``--synthetic '*'``: synthetic bars for any symbol); in code, build a
``GatewayEmulator`` over any ``BarSource`` and run it with ``await emulator.start()`` or
``serve_in_thread(emulator)``. It enforces IB's historical rules as IB states them: the small-bar
pacing rules for bars of 30 s or less (error 162), and at most 50 simultaneous open historical
requests for every bar size (error 322); ``window_reading`` picks how a request's window edges
are read.
"""

from tt_platform.ib.emulator.broker import CommissionModel
from tt_platform.ib.emulator.cli import main
from tt_platform.ib.emulator.contracts import ContractSpec
from tt_platform.ib.emulator.faults import FaultPlan
from tt_platform.ib.emulator.handlers import HistoricalRecord
from tt_platform.ib.emulator.replay import ReplayConfig
from tt_platform.ib.emulator.server import (
    GatewayEmulator,
    GatewayThread,
    serve_in_thread,
)
from tt_platform.ib.emulator.sources import (
    BarSource,
    BarSourceError,
    CsvDirectoryBarSource,
    FrameBarSource,
    SyntheticBarSource,
)

__all__ = [
    "BarSource",
    "BarSourceError",
    "CommissionModel",
    "ContractSpec",
    "CsvDirectoryBarSource",
    "FaultPlan",
    "FrameBarSource",
    "GatewayEmulator",
    "GatewayThread",
    "HistoricalRecord",
    "ReplayConfig",
    "SyntheticBarSource",
    "main",
    "serve_in_thread",
]
