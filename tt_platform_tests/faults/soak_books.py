"""Every order accounted for after a long session: the tables against each other, against a
replay of the fills, and (live mode) against the broker's own orders and executions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tt_platform.store import live as live_store
from tt_platform_tests.faults.soak_gateway import BrokerSnapshot


@dataclass(frozen=True)
class SessionTables:
    audit: pd.DataFrame
    orders: pd.DataFrame
    fills: pd.DataFrame
    marks: pd.DataFrame
    holdings: pd.Series  # instrument -> quantity at the last mark

    @classmethod
    def read(cls, engine, session_id: str) -> SessionTables:
        marks = live_store.read_marks(engine, session_id).sort_values("step")
        last_step = int(marks["step"].iloc[-1])
        holdings = live_store.read_holdings(engine, session_id, step=last_step)
        return cls(audit=live_store.read_audit(engine, session_id), orders=live_store.session_orders(engine, session_id),
                   fills=live_store.session_fills(engine, session_id), marks=marks,
                   holdings=holdings.set_index("instrument")["quantity"].astype(float))


def check_steps(tables: SessionTables, at_least: int) -> None:
    """One decision per step, numbered on across restarts, none twice, none missing."""
    steps = tables.audit["step"].tolist()
    assert steps == list(range(len(steps))), "decision steps are not 0..n-1 without gaps or repeats"
    assert len(steps) >= at_least, f"{len(steps)} decisions recorded, expected at least {at_least}"
    assert tables.marks["step"].tolist() == steps, "a mark per decision step"


def check_orders_terminal(tables: SessionTables) -> None:
    """Every order ended (filled, cancelled, rejected or not sent), each ref once, at most one
    order per bar, symbol and side."""
    orders = tables.orders
    assert len(orders), "the session sent no order: nothing to account for"
    assert orders["order_ref"].is_unique and orders["order_id"].is_unique
    still_open = orders[~orders["status"].isin(live_store.ORDER_TERMINAL_STATUSES)]
    assert still_open.empty, f"{len(still_open)} order(s) without a terminal status: " \
        f"{still_open[['order_ref', 'status']].head(10).to_dict('records')}"
    per_bar = Counter(zip(orders["ts"], orders["instrument"], orders["side"]))
    assert max(per_bar.values()) == 1, [key for key, n in per_bar.items() if n > 1][:5]


def check_fills_match_orders(tables: SessionTables) -> None:
    """Each fill belongs to a recorded order, once; an order's filled quantity is its fills' sum
    and a filled order is filled in full."""
    orders, fills = tables.orders.set_index("order_id"), tables.fills
    assert fills["fill_id"].is_unique
    assert set(fills["order_id"]) <= set(orders.index)
    filled = fills.groupby("order_id")["quantity"].apply(lambda q: float(np.abs(q).sum()))
    recorded = orders["filled_quantity"].fillna(0.0).astype(float)
    wrong = {ref: (recorded[ref], filled.get(ref, 0.0)) for ref in orders.index
             if not np.isclose(recorded[ref], filled.get(ref, 0.0), rtol=1e-9, atol=1e-9)}
    assert not wrong, f"orders whose filled quantity is not their fills' sum: {list(wrong.items())[:5]}"
    full = orders[orders["status"] == "filled"]
    short = full[~np.isclose(full["filled_quantity"].astype(float), full["quantity"].astype(float))]
    assert short.empty, f"'filled' orders filled in part: {short.index[:5].tolist()}"
    unfilled = orders[orders["status"].isin(["not_sent", "rejected"])]
    assert not set(unfilled.index) & set(fills["order_id"]), "a fill for an order that was never sent"


def check_book_replays(tables: SessionTables, capital: float) -> None:
    """The last mark's cash and holdings are what the fills add up to."""
    fills, last = tables.fills, tables.marks.iloc[-1]
    cash = capital - float((fills["quantity"] * fills["price"]).sum()) - float(fills["commission"].sum())
    assert np.isclose(float(last["cash"]), cash, rtol=1e-9, atol=1e-6), \
        f"last mark's cash {float(last['cash']):.6f} but the fills replay to {cash:.6f}"
    held = fills.groupby("instrument")["quantity"].sum()
    symbols = set(held.index) | set(tables.holdings.index)
    wrong = {s: (float(tables.holdings.get(s, 0.0)), float(held.get(s, 0.0))) for s in symbols
             if not np.isclose(tables.holdings.get(s, 0.0), held.get(s, 0.0), atol=1e-9)}
    assert not wrong, f"holdings (mark, fills) that disagree: {wrong}"
    assert np.isfinite(tables.marks["equity"]).all() and (tables.marks["equity"] > 0).all()


def check_broker_agrees(tables: SessionTables, broker: BrokerSnapshot) -> None:
    """Live mode: never an order twice at the broker, nothing there the records do not know,
    nothing left working, every execution a recorded fill, and the same positions."""
    refs = Counter(broker.order_refs)
    assert refs, "no order reached the broker"
    assert max(refs.values()) == 1, f"orders sent twice: {[ref for ref, n in refs.items() if n > 1][:5]}"
    unknown = set(refs) - set(tables.orders["order_ref"])
    assert not unknown, f"orders at the broker the records do not know: {sorted(unknown)[:5]}"
    assert not broker.working, f"orders still working at the broker: {broker.working[:5]}"
    executions, fills = set(broker.exec_ids), set(tables.fills["fill_id"])
    assert executions == fills, (f"broker executions not recorded: {sorted(executions - fills)[:5]}; "
                                 f"recorded fills the broker does not know: {sorted(fills - executions)[:5]}")
    booked = tables.fills.groupby("instrument")["quantity"].sum()
    symbols = set(broker.holdings) | set(booked.index)
    wrong = {s: (broker.holdings.get(s, 0.0), float(booked.get(s, 0.0))) for s in symbols
             if not np.isclose(broker.holdings.get(s, 0.0), booked.get(s, 0.0), atol=1e-9)}
    assert not wrong, f"positions (broker, fills) that disagree: {wrong}"
