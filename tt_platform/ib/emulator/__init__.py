"""IB Gateway emulator: a loopback TWS-protocol server for the unmodified ib_insync client.

``python -m tt_platform.ib.emulator --port 4002 --data DIR`` (or ``tt gateway-sim``) serves a
folder of daily CSVs (``--synthetic '*'``: synthetic bars for any symbol); in code, build a
``GatewayEmulator`` over any ``BarSource`` and run it with ``await emulator.start()`` or
``serve_in_thread(emulator)``. It enforces IB's historical rules as IB states them: the small-bar
pacing rules for bars of 30 s or less (error 162), and at most 50 simultaneous open historical
requests for every bar size (error 322); ``window_reading`` picks how a request's window edges
are read.

What it models:

* The market clock: with ``--replay-start`` a cursor over the data that moves one bar per
  ``--step-seconds`` of the emulator's clock; without it, the wall clock at start-up moved on by
  the emulator's clock (``--scale`` runs it faster). History holds closed bars only on that
  clock (a daily bar once its session has closed, an intraday bar once ``ts + step`` has
  passed); "N D" of intraday bars counts trading days (XNYS), so "1 D" of minutes before
  Monday's open is Friday's session (for daily bars "N D" stays calendar days).
* Real-time bars: true 5-second bars, sent when each closes on the emulator's clock, derived
  from the source's minute bars along a path that keeps each minute's open, high, low, close and
  volume (with replay, the bars of each replayed span are paced over its step).
* Quotes and fills: bid and ask ``--spread-bps`` around the last trade (at least a tick);
  market orders take them (buys the ask, sells the bid), limit orders fill at once when the
  quote is at or through the limit, else when a later bar trades through it (at the limit or
  the better open); ``--volume-share`` makes fills partial, at most that share of a bar's
  volume. Commissions follow IB's fixed US schedule per order, split over its executions.
* What-if orders: one openOrder with the margin (25 % of gross position value) and commission
  impact; nothing is kept, filled or reported as open.
* Contract details with ``timeZoneId`` (US/Eastern) and IB-style ``tradingHours`` (04:00-20:00,
  17:00 on early closes) and ``liquidHours`` (the XNYS session) for 7 days from today's date.
* Errors as IB sends them: 321 for a malformed contract description (unknown security type,
  neither symbol nor conId, no exchange on a data request or an order), 200 for a well-formed
  one that matches nothing, 162 for pacing and empty answers, 322 beyond 50 open requests,
  1100/1102 and dropped sockets from a ``FaultPlan``.

What it does not model:

* Quotes and trades beyond bars: no tick-by-tick data, no market depth, no NBBO; the spread is
  a constant share of the price, and every symbol is a US stock on the NYSE calendar in USD.
* Extended hours: bars and fills follow the source's data whatever ``useRTH`` or
  ``outsideRth`` say; real-time bars need minute bars (a daily-only source sends none), and
  nothing fills between bars without replay (resting orders wait for replayed bars).
* Order types other than MKT and LMT (stop, trailing, brackets, algos, OCA groups are refused
  or ignored), time in force beyond a working order (no DAY expiry at the close, no GTC
  carry-over), market impact, queue position, short-sale locates and borrow fees.
* Margin beyond a flat 25 % of gross position value: no Reg T/portfolio margin rules, no
  margin calls or liquidations, no interest, dividends, corporate actions or settlement.
* IB's tiered commissions, exchange and regulatory fees; what-if min/max commission equal the
  estimate.
* Account structure: one account, no FA groups or models; completed orders are not kept
  (``reqCompletedOrders`` answers empty); order ids and fills are lost when the process stops.
* Market-data permissions, delayed or frozen data types, scanners, news, fundamentals,
  histogram and tick history requests, and the soft limit on very large historical volumes.
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
