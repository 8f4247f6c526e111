"""Command line of the gateway emulator (``python -m tt_platform.ib.emulator``, ``tt gateway-sim``)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Sequence

import pandas as pd

from tt_platform.ib.clock import ScaledClock
from tt_platform.ib.emulator.faults import FaultPlan
from tt_platform.ib.emulator.quotes import DEFAULT_SPREAD_BPS
from tt_platform.ib.emulator.replay import ReplayConfig
from tt_platform.ib.emulator.server import GatewayEmulator
from tt_platform.ib.emulator.sources import (
    BarSource,
    BarSourceError,
    CsvDirectoryBarSource,
    SyntheticBarSource,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tt gateway-sim",
        description="IB Gateway emulator speaking the TWS API socket protocol on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=4002, help="port (0 picks a free one; default 4002, IB Gateway paper)"
    )
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--data", help="folder of date,open,high,low,close,volume CSVs named <SYMBOL>.csv")
    data.add_argument(
        "--synthetic", help="comma-separated symbols served from the synthetic generator ('*': any symbol asked for)"
    )
    data.add_argument("--store", action="store_true", help="serve the bars already in the platform's store (TT_DB_URL or embedded)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic generator")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="emulator clock speed-up (pacing windows, streams, faults)"
    )
    parser.add_argument(
        "--replay-start", help="data time where live streams begin (e.g. 2021-06-01); default: no replay"
    )
    parser.add_argument(
        "--replay-interval", default="1d", choices=["1d", "1h", "1min"], help="bars the live streams replay"
    )
    parser.add_argument("--step-seconds", type=float, default=5.0, help="emulator seconds per replayed bar")
    parser.add_argument("--faults", help="JSON file with a FaultPlan (keys as in tt_platform.ib.emulator.FaultPlan)")
    parser.add_argument("--no-pacing", action="store_true", help="do not enforce IB's small-bar pacing rules")
    parser.add_argument(
        "--max-open-requests",
        type=int,
        default=None,
        help="historical requests open at once before error 322 (default: IB's 50; 0 lifts the cap)",
    )
    parser.add_argument(
        "--window-reading",
        default="inclusive_start",
        choices=["inclusive_start", "exclusive_start"],
        help="serve a request's window as [end-duration, end) or as (end-duration, end]",
    )
    parser.add_argument(
        "--spread-bps",
        type=float,
        default=DEFAULT_SPREAD_BPS,
        help=f"quoted bid-ask spread around the last price, in bps (at least a tick; default {DEFAULT_SPREAD_BPS:g})",
    )
    parser.add_argument(
        "--volume-share",
        type=float,
        default=None,
        help="partial fills: an order fills at most this share (0..1] of a bar's volume per bar (default: all at once)",
    )
    parser.add_argument(
        "--restart-down-seconds", type=float, default=30.0,
        help="how long a restart (SIGHUP) keeps the port closed, in emulator seconds (default 30)",
    )
    parser.add_argument("--account", default="DU1234567", help="account id reported to clients")
    parser.add_argument("--cash", type=float, default=1_000_000.0, help="initial cash of the paper account")
    parser.add_argument("--log-level", default="INFO", help="logging level (DEBUG, INFO, WARNING)")
    return parser


def build_emulator(args: argparse.Namespace) -> GatewayEmulator:
    source: BarSource
    if args.data:
        source = CsvDirectoryBarSource(args.data)
    elif args.store:
        from tt_platform.ib.emulator.sources import StoreBarSource
        from tt_platform.store.engine import connect_store

        source = StoreBarSource(connect_store())
    else:
        if args.synthetic.strip() == "*":
            source = SyntheticBarSource(None, seed=args.seed)
        else:
            symbols = [s.strip() for s in args.synthetic.split(",") if s.strip()]
            source = SyntheticBarSource(symbols, seed=args.seed)
    faults = FaultPlan.from_json_file(args.faults) if args.faults else FaultPlan()
    if args.no_pacing:
        faults = dataclasses.replace(faults, enforce_pacing=False)
    if args.max_open_requests is not None:
        faults = dataclasses.replace(faults, max_open_historical=args.max_open_requests or None)
    replay = ReplayConfig(
        start=pd.Timestamp(args.replay_start) if args.replay_start else None,
        interval=args.replay_interval,
        step_seconds=args.step_seconds,
    )
    return GatewayEmulator(
        source,
        host=args.host,
        port=args.port,
        clock=ScaledClock(args.scale),
        faults=faults,
        replay=replay,
        account=args.account,
        initial_cash=args.cash,
        window_reading=args.window_reading,
        spread_bps=args.spread_bps,
        volume_share=args.volume_share,
    )


class _FaultSignals:
    """Faults a person can inject into a running emulator, to watch a client recover:
    SIGUSR1 pulls the network cable (every client's socket is cut; they may reconnect),
    SIGUSR2 toggles IB's own connectivity (1100, then 1102 on the next one),
    SIGHUP restarts the gateway (the port closes for --restart-down-seconds)."""

    def __init__(self, emulator: GatewayEmulator, restart_down_seconds: float) -> None:
        self.emulator = emulator
        self.restart_down_seconds = restart_down_seconds
        self.connectivity_lost = False
        self.tasks: set[asyncio.Task] = set()

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig, action in ((signal.SIGUSR1, self.pull_cable), (signal.SIGUSR2, self.toggle_connectivity),
                            (signal.SIGHUP, self.restart)):
            loop.add_signal_handler(sig, lambda action=action: self._spawn(action()))

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def pull_cable(self) -> None:
        print(f"fault: network cable pulled ({len(self.emulator.sessions)} client(s) cut)", flush=True)
        for client in list(self.emulator.sessions.values()):
            client.close()

    async def toggle_connectivity(self) -> None:
        self.connectivity_lost = not self.connectivity_lost
        if self.connectivity_lost:
            print("fault: IB connectivity lost (1100); SIGUSR2 again restores it", flush=True)
            await self.emulator.connectivity_lost()
        else:
            print("fault: IB connectivity restored (1102)", flush=True)
            await self.emulator.connectivity_restored()

    async def restart(self) -> None:
        print(f"fault: gateway restart, port closed for {self.restart_down_seconds:g} s", flush=True)
        await self.emulator.restart(down_seconds=self.restart_down_seconds)
        print("fault: gateway back after its restart", flush=True)


async def _serve(emulator: GatewayEmulator, restart_down_seconds: float = 30.0) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    faults = _FaultSignals(emulator, restart_down_seconds)
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        faults.install(loop)
        signals = True
    except (NotImplementedError, RuntimeError):  # not in the main thread, or no signals here
        signals = False
    port = await emulator.start()
    print(f"IB Gateway emulator listening on {emulator.host}:{port}", flush=True)
    if signals:
        print(f"faults: kill -USR1 {os.getpid()} pulls the cable, -USR2 toggles IB connectivity, -HUP restarts",
              flush=True)
    try:
        await stop.wait()
    finally:
        await emulator.stop()
        print("IB Gateway emulator stopped", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        emulator = build_emulator(args)
    except (BarSourceError, ValueError, OSError) as exc:
        print(f"tt gateway-sim: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(emulator, args.restart_down_seconds))
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # e.g. the port is taken
        print(f"tt gateway-sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
