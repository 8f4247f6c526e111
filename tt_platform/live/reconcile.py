"""What the broker says against what the session recorded: which fills are new, which recorded
orders are still working, done, or never reached the broker, and whether positions agree.

Pure: it takes the broker's complete answers (open orders, executions, positions) and the
session's records, and returns what to write. A request that failed never gets here (the
caller gets ``BrokerRequestFailed`` instead), so an empty list really means "nothing open".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tt_platform.live.order_refs import parse_order_ref

OPEN_STATUSES = ("pending_submit", "submitted", "partially_filled", "cancel_pending")
# IB order statuses that are still working
IB_WORKING = {"PendingSubmit", "ApiPending", "PreSubmitted", "Submitted", "PendingCancel"}


@dataclass(frozen=True)
class OrderUpdate:
    order_id: str
    status: str
    message: str
    broker_order_id: str | None = None
    filled_quantity: float | None = None


@dataclass(frozen=True)
class Reconciliation:
    new_executions: tuple[Any, ...]  # BrokerExecution of this session not recorded yet
    order_updates: tuple[OrderUpdate, ...]
    known_refs: frozenset[str]  # every ref the broker or the store knows: never send these again
    position_breaks: dict[str, tuple[float, float]] = field(default_factory=dict)  # symbol: (ours, broker's)

    def describe(self) -> str:
        parts = [f"{len(self.new_executions)} new fill(s)", f"{len(self.order_updates)} order update(s)"]
        if self.position_breaks:
            parts.append("position differences: " + ", ".join(
                f"{s} ours {ours:g} broker {theirs:g}" for s, (ours, theirs) in sorted(self.position_breaks.items())))
        return "; ".join(parts)


def session_of_ref(ref: str) -> str | None:
    try:
        return parse_order_ref(ref).session
    except ValueError:
        return None


def reconcile(*, session: str, recorded_orders: Sequence[Mapping[str, Any]], recorded_fill_ids: Iterable[str],
              open_orders: Sequence[Any], executions: Sequence[Any], broker_positions: Mapping[str, float],
              our_positions: Mapping[str, float], tolerance: float = 1e-6) -> Reconciliation:
    """Compare one complete broker snapshot with the session's records.

    ``session``: the session key in the order refs; only refs of this session are ours.
    ``recorded_orders``: the session's tt_order rows (order_id == order_ref).
    ``our_positions``: shares per symbol after booking every recorded fill; compared with
    ``broker_positions`` once the new executions are booked.
    """
    fill_ids = set(recorded_fill_ids)
    # one execution per exec id: a snapshot that repeats one must not book or count it twice
    unique = {e.exec_id: e for e in executions}
    ours = [e for e in unique.values() if session_of_ref(e.order_ref) == session]
    new = tuple(e for e in ours if e.exec_id not in fill_ids)
    open_by_ref = {o.order_ref: o for o in open_orders if o.order_ref}
    filled_by_ref: dict[str, float] = {}
    for execution in ours:
        filled_by_ref[execution.order_ref] = filled_by_ref.get(execution.order_ref, 0.0) + execution.shares

    updates = []
    for row in recorded_orders:
        ref = row["order_id"]
        status = row["status"]
        if status not in OPEN_STATUSES:
            continue
        filled = filled_by_ref.get(ref, 0.0)
        working = open_by_ref.get(ref)
        if working is not None and working.status in IB_WORKING:
            if status == "cancel_pending" or working.status == "PendingCancel":
                new_status = "cancel_pending"  # asked to cancel, not done yet: a fill may still come
            else:
                new_status = "partially_filled" if working.filled > 0 else "submitted"
            if new_status != status:
                updates.append(OrderUpdate(ref, new_status, f"broker: {working.status}",
                                           str(working.broker_order_id), working.filled))
        elif filled >= float(row["quantity"]) - tolerance:
            updates.append(OrderUpdate(ref, "filled", "filled (found in the broker's executions)", None, filled))
        elif filled > 0:
            updates.append(OrderUpdate(ref, "cancelled", f"no longer working; {filled:g} of "
                                       f"{float(row['quantity']):g} filled", None, filled))
        elif status == "pending_submit" and working is None:
            updates.append(OrderUpdate(ref, "not_sent", "the broker never received it (no open order, no fill)"))
        else:
            state = working.status if working is not None else "not open"
            updates.append(OrderUpdate(ref, "cancelled", f"no longer working at the broker ({state})", None, 0.0))

    booked = dict(our_positions)
    for execution in new:
        sign = 1.0 if execution.side.upper() in ("BUY", "BOT") else -1.0
        booked[execution.symbol] = booked.get(execution.symbol, 0.0) + sign * execution.shares
    breaks = {}
    for symbol in sorted(set(booked) | set(broker_positions)):
        mine, theirs = float(booked.get(symbol, 0.0)), float(broker_positions.get(symbol, 0.0))
        if symbol in booked and not math.isclose(mine, theirs, abs_tol=tolerance):
            breaks[symbol] = (mine, theirs)
    known = {o.order_ref for o in open_orders if o.order_ref} | {e.order_ref for e in executions if e.order_ref}
    known |= {row["order_id"] for row in recorded_orders}
    return Reconciliation(new, tuple(updates), frozenset(known), breaks)
