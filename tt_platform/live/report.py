"""The daily report of a paper or live trading session: one self-contained HTML file per
session and trading day.

It is built from the session's records as tables (orders, fills, portfolio marks, latest
holdings, decision audit), which the caller reads from the store; nothing here does I/O apart
from ``write_session_report``. A day is a trading day in America/New_York: the report keeps the
rows stamped on that day, plus every order still outstanding, whatever day it was sent.

Symbols, order messages and breach texts come from outside (the broker, the data vendor), so
every piece of text is HTML-escaped before it reaches the page.
"""

from __future__ import annotations

import html
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

NEW_YORK = ZoneInfo("America/New_York")
MODES = ("paper", "live")

OUTSTANDING_STATUSES = frozenset({"pending_submit", "submitted", "partially_filled", "cancel_pending"})
DONE_STATUSES = frozenset({"filled", "cancelled", "rejected", "not_sent"})
# Most severe first, the order the guardrail section lists them in.
VERDICTS = ("tripped", "market_closed", "blocked", "clamped", "pass")

# Per table: the columns a non-empty table must have, then the ones filled with NA when absent.
_REQUIRED = {
    "orders": ("order_id", "ts", "instrument", "side", "quantity", "status"),
    "fills": ("ts", "instrument", "quantity", "price"),
    "marks": ("ts", "equity", "cash"),
    "holdings": ("instrument", "quantity"),
    "audit": ("bar_time", "verdict"),
}
_OPTIONAL = {
    "orders": ("order_type", "limit_price", "broker_order_id", "order_ref", "filled_quantity",
               "avg_fill_price", "message"),
    "fills": ("fill_id", "order_id", "commission", "slippage", "shadow_price", "divergence_bps"),
    "marks": ("step", "leverage"),
    "holdings": ("market_value",),
    "audit": ("step", "breaches", "n_orders", "latency_ms", "guard_reasons", "guard_session_drawdown"),
}
_TIME_COLUMN = {"orders": "ts", "fills": "ts", "marks": "ts", "audit": "bar_time"}


@dataclass(frozen=True, eq=False)
class SessionReportData:
    """Everything one daily report shows. ``account_label`` must already be masked; ``day`` is
    the trading day in America/New_York; any table may be empty."""

    session_id: str
    mode: str
    policy_version: str
    account_label: str
    day: date
    status: str
    orders: pd.DataFrame
    fills: pd.DataFrame
    marks: pd.DataFrame
    holdings: pd.DataFrame
    audit: pd.DataFrame
    generated_at: datetime

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"SessionReportData.mode must be one of {MODES}, got {self.mode!r}")
        if isinstance(self.day, datetime) or not isinstance(self.day, date):
            raise TypeError(f"SessionReportData.day must be a datetime.date, got {self.day!r}")
        if not isinstance(self.generated_at, datetime) or self.generated_at.tzinfo is None:
            raise ValueError(f"SessionReportData.generated_at must be a timezone-aware datetime, "
                             f"got {self.generated_at!r}")
        if not str(self.session_id).strip():
            raise ValueError("SessionReportData.session_id must not be empty")


# ------------------------------------------------------------------------------- tables
def _normalized(name: str, frame: pd.DataFrame | None) -> pd.DataFrame:
    """``frame`` with every expected column (NA when absent) and its time column in UTC."""
    frame = pd.DataFrame() if frame is None else frame.copy()
    missing = [c for c in _REQUIRED[name] if c not in frame.columns]
    if missing and not frame.empty:
        raise ValueError(f"the {name} table lacks column(s) {', '.join(missing)}")
    for column in _REQUIRED[name] + _OPTIONAL[name]:
        if column not in frame.columns:
            frame[column] = pd.Series(pd.NA, index=frame.index, dtype="object")
    time_column = _TIME_COLUMN.get(name)
    if time_column is not None:
        try:
            # Naive times are read as UTC, the store's convention.
            frame[time_column] = pd.to_datetime(frame[time_column], utc=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the {name} table's {time_column} column holds values that are not times") from exc
        frame = frame.sort_values(time_column, kind="stable").reset_index(drop=True)
    return frame


def _local_dates(times: pd.Series) -> pd.Series:
    return times.dt.tz_convert(NEW_YORK).dt.date


def daily_slice(data: SessionReportData) -> SessionReportData:
    """``data`` reduced to its day: orders, fills, marks and decisions stamped on ``data.day``
    in New York, plus the orders still outstanding that were sent on or before that day.
    Holdings (the latest positions) are kept whole. Idempotent."""
    tables = {name: _normalized(name, getattr(data, name)) for name in _REQUIRED}
    for name, column in _TIME_COLUMN.items():
        frame = tables[name]
        local = _local_dates(frame[column])
        keep = local == data.day
        if name == "orders":
            # An order still open is outstanding whatever day it was sent.
            keep = keep | (frame["status"].isin(OUTSTANDING_STATUSES) & (local <= data.day))
        tables[name] = frame[keep.to_numpy(dtype=bool)].reset_index(drop=True)
    return replace(data, **tables)


def _sent_today(orders: pd.DataFrame, day: date) -> pd.DataFrame:
    return orders[(_local_dates(orders["ts"]) == day).to_numpy(dtype=bool)]


def _outstanding(orders: pd.DataFrame) -> pd.DataFrame:
    return orders[orders["status"].isin(OUTSTANDING_STATUSES).to_numpy(dtype=bool)]


def _numeric(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").astype("float64")


def fill_divergence_bps(fills: pd.DataFrame) -> pd.Series:
    """Signed divergence of each fill from its shadow price, in basis points (+ = the real fill
    was worse: bought dearer or sold cheaper). Taken from ``divergence_bps`` where given, else
    computed from ``price`` and ``shadow_price``; NaN where the fill has no shadow price."""
    fills = _normalized("fills", fills)
    shadow = _numeric(fills["shadow_price"])
    price = _numeric(fills["price"])
    side = np.sign(_numeric(fills["quantity"]))
    computed = side * (price - shadow) / shadow * 1e4
    given = _numeric(fills["divergence_bps"])
    divergence = given.where(given.notna(), computed)
    return divergence.where(shadow.notna() & (shadow > 0))


# ------------------------------------------------------------------------------- summary
def _opt(value: Any) -> float | None:
    """A plain float, or None for missing and non-finite values."""
    if value is None or value is pd.NA:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def max_drawdown(equity: Sequence[float] | pd.Series) -> float | None:
    """Largest fall from a running peak, as a fraction of the peak (0.05 = 5 %); None when
    there is no equity."""
    values = pd.Series(equity, dtype="float64").dropna()
    values = values[np.isfinite(values)]
    if values.empty:
        return None
    peaks = values.cummax()
    falls = (1.0 - values / peaks).where(peaks > 0, 0.0)
    return float(max(falls.max(), 0.0))


def session_summary(data: SessionReportData) -> dict[str, Any]:
    """The day's numbers (``data`` is reduced to its day first, see ``daily_slice``).

    Equity and cash: ``start_equity`` (the day's first mark), ``end_equity``, ``pnl``,
    ``return`` (pnl / start equity), ``max_drawdown`` (intraday, from the day's marks, as a
    fraction), ``cash`` and ``leverage`` (last mark); None without marks.
    Orders sent that day: ``orders_sent`` (all but ``not_sent``), ``orders_not_sent``,
    ``orders_filled``, ``orders_cancelled_or_rejected``; ``orders_outstanding`` counts every
    order still open, including earlier days'.
    Fills: ``fills``, ``commission`` (total), ``fills_with_shadow`` and, over those,
    ``divergence_mean_bps`` (signed), ``divergence_mean_abs_bps``, ``divergence_max_abs_bps``.
    Decisions: ``decisions`` (verdict -> count, every known verdict present),
    ``decisions_total``, ``latency_p50_ms`` and ``latency_p99_ms`` (linear interpolation).
    """
    day = daily_slice(data)
    marks = day.marks
    equity = _numeric(marks["equity"]).dropna()
    start_equity = _opt(equity.iloc[0]) if not equity.empty else None
    end_equity = _opt(equity.iloc[-1]) if not equity.empty else None
    pnl = end_equity - start_equity if start_equity is not None and end_equity is not None else None
    day_return = pnl / start_equity if pnl is not None and start_equity else None
    cash = _numeric(marks["cash"]).dropna()
    leverage = _numeric(marks["leverage"]).dropna()

    sent = _sent_today(day.orders, day.day)
    status = sent["status"]

    fills = day.fills
    divergence = fill_divergence_bps(fills).dropna()

    verdicts = day.audit["verdict"].astype("string").fillna("unknown")
    decisions = {verdict: int((verdicts == verdict).sum()) for verdict in VERDICTS}
    for verdict in sorted(set(verdicts) - set(VERDICTS)):
        decisions[verdict] = int((verdicts == verdict).sum())
    latency = _numeric(day.audit["latency_ms"]).dropna()
    p50, p99 = np.percentile(latency, [50, 99]) if not latency.empty else (None, None)

    return {
        "start_equity": start_equity,
        "end_equity": end_equity,
        "pnl": pnl,
        "return": day_return,
        "max_drawdown": max_drawdown(equity),
        "cash": _opt(cash.iloc[-1]) if not cash.empty else None,
        "leverage": _opt(leverage.iloc[-1]) if not leverage.empty else None,
        "orders_sent": int((status != "not_sent").sum()),
        "orders_not_sent": int((status == "not_sent").sum()),
        "orders_filled": int((status == "filled").sum()),
        "orders_cancelled_or_rejected": int(status.isin(["cancelled", "rejected"]).sum()),
        "orders_outstanding": len(_outstanding(day.orders)),
        "fills": len(fills),
        "commission": float(_numeric(fills["commission"]).fillna(0.0).sum()),
        "fills_with_shadow": len(divergence),
        "divergence_mean_bps": float(divergence.mean()) if not divergence.empty else None,
        "divergence_mean_abs_bps": float(divergence.abs().mean()) if not divergence.empty else None,
        "divergence_max_abs_bps": float(divergence.abs().max()) if not divergence.empty else None,
        "decisions": decisions,
        "decisions_total": len(day.audit),
        "latency_p50_ms": _opt(p50),
        "latency_p99_ms": _opt(p99),
    }


# ------------------------------------------------------------------------------- HTML pieces
def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _text(value: Any) -> str:
    return "—" if _missing(value) else str(value)


def _number(value: Any, digits: int = 2) -> str:
    if _missing(value):
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:,.{digits}f}" if math.isfinite(number) else str(number)


def _quantity(value: Any) -> str:
    if _missing(value):
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:,.0f}" if number.is_integer() else f"{number:,.4f}"


def _percent(value: Any) -> str:
    if _missing(value):
        return "—"
    try:
        return f"{float(value):.2%}"
    except (TypeError, ValueError):
        return str(value)


def _clock(ts: Any) -> str:
    return "—" if _missing(ts) else pd.Timestamp(ts).tz_convert(NEW_YORK).strftime("%H:%M:%S")


def _stamp(ts: Any) -> str:
    return "—" if _missing(ts) else pd.Timestamp(ts).tz_convert(NEW_YORK).strftime("%Y-%m-%d %H:%M:%S")


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], css: str = "") -> str:
    """An HTML table; every header and cell is escaped here, so callers pass plain text."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    klass = f' class="{_esc(css)}"' if css else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pairs(rows: Iterable[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="pairs">{body}</table>'


def _empty(sentence: str) -> str:
    return f'<p class="empty">{_esc(sentence)}</p>'


def _section(anchor: str, title: str, content: str) -> str:
    return f'<section id="{anchor}"><h2>{_esc(title)}</h2>{content}</section>'


def _summary_table(summary: dict[str, Any]) -> str:
    decided = ", ".join(f"{v} {k}" for k, v in summary["decisions"].items() if v) or "none"
    return _pairs([
        ("Start equity", _number(summary["start_equity"])),
        ("End equity", _number(summary["end_equity"])),
        ("PnL", _number(summary["pnl"])),
        ("Return", _percent(summary["return"])),
        ("Max intraday drawdown", _percent(summary["max_drawdown"])),
        ("Cash", _number(summary["cash"])),
        ("Orders sent", summary["orders_sent"]),
        ("Orders filled", summary["orders_filled"]),
        ("Orders cancelled or rejected", summary["orders_cancelled_or_rejected"]),
        ("Orders not sent", summary["orders_not_sent"]),
        ("Outstanding orders", summary["orders_outstanding"]),
        ("Fills", summary["fills"]),
        ("Commission", _number(summary["commission"])),
        ("Mean |divergence| from shadow (bps)", _number(summary["divergence_mean_abs_bps"])),
        ("Max |divergence| from shadow (bps)", _number(summary["divergence_max_abs_bps"])),
        ("Decisions", f"{summary['decisions_total']} ({decided})"),
        ("Decision latency p50 / p99 (ms)",
         f"{_number(summary['latency_p50_ms'], 1)} / {_number(summary['latency_p99_ms'], 1)}"),
    ])


def equity_figure(marks: pd.DataFrame) -> go.Figure:
    """Equity and cash over the day, on New York wall-clock time."""
    marks = _normalized("marks", marks)
    # plotly.js ignores UTC offsets, so hand it New York wall-clock times.
    when = marks["ts"].dt.tz_convert(NEW_YORK).dt.tz_localize(None)
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=when, y=_numeric(marks["equity"]), name="equity", mode="lines+markers"))
    figure.add_trace(go.Scatter(x=when, y=_numeric(marks["cash"]), name="cash", mode="lines"))
    figure.update_layout(height=380, template="plotly_white", xaxis_title="New York time", margin={"t": 40},
                         legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0})
    return figure


def _orders_section(day: SessionReportData) -> str:
    orders = _sent_today(day.orders, day.day)
    if orders.empty:
        return _section("orders", "Orders", _empty("No orders today."))
    rows = [(_clock(o.ts), _text(o.order_ref), _text(o.instrument), _text(o.side), _quantity(o.quantity),
             _text(o.order_type), _number(o.limit_price), _text(o.status), _quantity(o.filled_quantity),
             _number(o.avg_fill_price, 4), _text(o.broker_order_id), _text(o.message))
            for o in orders.itertuples(index=False)]
    headers = ("Time", "Order ref", "Instrument", "Side", "Quantity", "Type", "Limit", "Status", "Filled",
               "Avg fill price", "Broker id", "Message")
    return _section("orders", "Orders", _table(headers, rows))


def _fills_section(day: SessionReportData) -> str:
    fills = day.fills
    if fills.empty:
        return _section("fills", "Fills", _empty("No fills today."))
    divergence = fill_divergence_bps(fills)
    rows = [(_clock(f.ts), _text(f.order_id), _text(f.instrument), _quantity(f.quantity), _number(f.price, 4),
             _number(f.commission), _number(f.slippage, 4), _number(f.shadow_price, 4), _number(bps))
            for f, bps in zip(fills.itertuples(index=False), divergence, strict=True)]
    headers = ("Time", "Order", "Instrument", "Quantity", "Price", "Commission", "Slippage", "Shadow price",
               "Divergence (bps)")
    return _section("fills", "Fills", _table(headers, rows))


def _trading_by_instrument(fills: pd.DataFrame) -> pd.DataFrame:
    quantity = _numeric(fills["quantity"])
    frame = pd.DataFrame({
        "instrument": fills["instrument"].astype("string").fillna("—"),
        "bought": quantity.clip(lower=0.0),
        "sold": (-quantity).clip(lower=0.0),
        "cash_flow": -quantity * _numeric(fills["price"]),
        "commission": _numeric(fills["commission"]).fillna(0.0),
    })
    return frame.groupby("instrument", sort=True).sum()


def _pnl_section(day: SessionReportData, summary: dict[str, Any]) -> str:
    if summary["start_equity"] is None:
        parts = [_empty("No portfolio marks today, so no PnL.")]
    else:
        parts = [_pairs([
            ("Start equity", _number(summary["start_equity"])),
            ("End equity", _number(summary["end_equity"])),
            ("PnL", _number(summary["pnl"])),
            ("Return", _percent(summary["return"])),
            ("Max intraday drawdown", _percent(summary["max_drawdown"])),
            ("Commission paid", _number(summary["commission"])),
        ])]
    if not day.fills.empty:
        by_instrument = _trading_by_instrument(day.fills)
        rows = [(name, _quantity(r.bought), _quantity(r.sold), _quantity(r.bought - r.sold),
                 _number(r.cash_flow), _number(r.commission)) for name, r in by_instrument.iterrows()]
        parts.append("<h3>Trading by instrument</h3>" + _table(
            ("Instrument", "Bought", "Sold", "Net", "Cash flow", "Commission"), rows))
    return _section("pnl", "PnL", "".join(parts))


def _positions_section(day: SessionReportData, summary: dict[str, Any]) -> str:
    holdings = day.holdings
    held = holdings[_numeric(holdings["quantity"]).fillna(0.0).to_numpy() != 0.0] if not holdings.empty else holdings
    if held.empty:
        return _section("positions", "Positions", _empty("No positions."))
    equity = summary["end_equity"]
    rows = [(_text(h.instrument), _quantity(h.quantity), _number(h.market_value),
             _percent(float(h.market_value) / equity) if equity and not _missing(h.market_value) else "—")
            for h in held.sort_values("instrument").itertuples(index=False)]
    return _section("positions", "Positions",
                    _table(("Instrument", "Quantity", "Market value", "Weight of equity"), rows))


def _cash_section(day: SessionReportData) -> str:
    cash = _numeric(day.marks["cash"]).dropna()
    if cash.empty:
        return _section("cash", "Cash", _empty("No portfolio marks today, so no cash figures."))
    leverage = _numeric(day.marks["leverage"]).dropna()
    return _section("cash", "Cash", _pairs([
        ("Cash at the first mark", _number(cash.iloc[0])),
        ("Cash at the last mark", _number(cash.iloc[-1])),
        ("Lowest cash", _number(cash.min())),
        ("Leverage at the last mark", _number(leverage.iloc[-1], 3) if not leverage.empty else "—"),
        ("Highest leverage", _number(leverage.max(), 3) if not leverage.empty else "—"),
    ]))


def _outstanding_section(day: SessionReportData) -> str:
    orders = _outstanding(day.orders)
    if orders.empty:
        return _section("outstanding", "Outstanding orders", _empty("No outstanding orders."))
    rows = [(_stamp(o.ts), _text(o.order_ref), _text(o.instrument), _text(o.side), _quantity(o.quantity),
             _quantity(o.filled_quantity), _text(o.order_type), _number(o.limit_price), _text(o.status),
             _text(o.broker_order_id))
            for o in orders.itertuples(index=False)]
    headers = ("Sent (New York)", "Order ref", "Instrument", "Side", "Quantity", "Filled", "Type", "Limit",
               "Status", "Broker id")
    return _section("outstanding", "Outstanding orders", _table(headers, rows))


def _divergence_section(day: SessionReportData, summary: dict[str, Any]) -> str:
    title = "Divergence from the shadow simulation"
    divergence = fill_divergence_bps(day.fills)
    with_shadow = divergence.notna().to_numpy()
    if not with_shadow.any():
        return _section("divergence", title, _empty("No fills with a shadow price today."))
    overall = _pairs([
        ("Fills with a shadow price", f"{summary['fills_with_shadow']} of {summary['fills']}"),
        ("Mean divergence (bps, + = real fill worse)", _number(summary["divergence_mean_bps"])),
        ("Mean |divergence| (bps)", _number(summary["divergence_mean_abs_bps"])),
        ("Max |divergence| (bps)", _number(summary["divergence_max_abs_bps"])),
    ])
    frame = pd.DataFrame({"instrument": day.fills["instrument"].astype("string").fillna("—"),
                          "bps": divergence})[with_shadow]
    grouped = frame.groupby("instrument", sort=True)["bps"]
    rows = [(name, int(values.size), _number(values.mean()), _number(values.abs().max()))
            for name, values in grouped]
    return _section("divergence", title, overall + _table(
        ("Instrument", "Fills", "Mean divergence (bps)", "Max |divergence| (bps)"), rows))


def _guardrail_section(day: SessionReportData, summary: dict[str, Any]) -> str:
    title = "Guardrail verdicts"
    if day.audit.empty:
        return _section("guardrails", title, _empty("No decisions today."))
    counts = _table(("Verdict", "Decisions"), list(summary["decisions"].items()))
    flagged = day.audit[(day.audit["verdict"].astype("string").fillna("unknown") != "pass").to_numpy(dtype=bool)]
    if flagged.empty:
        return _section("guardrails", title, counts + _empty("Every decision passed."))
    rows = [(_clock(a.bar_time), _text(a.verdict), _text(a.breaches), _text(a.guard_reasons),
             _percent(a.guard_session_drawdown), _text(a.n_orders))
            for a in flagged.itertuples(index=False)]
    listed = "<h3>Decisions that did not pass</h3>" + _table(
        ("Bar", "Verdict", "Breaches", "Guardrail reasons", "Session drawdown", "Orders"), rows)
    return _section("guardrails", title, counts + listed)


_STYLE = """body{font-family:sans-serif;margin:2em;color:#222} table{border-collapse:collapse;margin:0.5em 0 1em}
th,td{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right} th{text-align:left}
table.pairs td,td:first-child{text-align:left} p.empty{color:#666;font-style:italic} section{margin-top:1.5em}"""


def render_session_report(data: SessionReportData) -> str:
    """The day's report as a full HTML page (``data`` is reduced to its day first). The page
    loads ``plotly.min.js`` from its own folder (``write_session_report`` puts it there)."""
    day = daily_slice(data)
    summary = session_summary(day)
    heading = f"{data.mode.capitalize()} trading session {data.session_id} — {data.day.isoformat()}"
    meta = _pairs([
        ("Session", data.session_id),
        ("Mode", data.mode),
        ("Policy version", data.policy_version),
        ("Account", data.account_label),
        ("Status", data.status),
        ("Trading day", data.day.isoformat()),
        ("Generated", pd.Timestamp(data.generated_at).tz_convert(NEW_YORK).strftime("%Y-%m-%d %H:%M:%S %Z")),
    ])
    if day.marks.empty:
        chart = _empty("No portfolio marks today.")
    else:
        chart = equity_figure(day.marks).to_html(full_html=False, include_plotlyjs=False)
    sections = [
        _section("summary", "Summary", _summary_table(summary)),
        _section("equity", "Equity and cash", chart),
        _orders_section(day),
        _fills_section(day),
        _pnl_section(day, summary),
        _positions_section(day, summary),
        _cash_section(day),
        _outstanding_section(day),
        _divergence_section(day, summary),
        _guardrail_section(day, summary),
    ]
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{_esc(heading)}</title>
<style>{_STYLE}</style>
<script src="plotly.min.js"></script></head>
<body><h1>{_esc(heading)}</h1>
{meta}
<p>Times are New York time.</p>
{"".join(sections)}
</body></html>"""


# ------------------------------------------------------------------------------- files
def _write_atomically(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder, so a reader never sees half a file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o644)  # mkstemp's 0600 would hide the report from a web server
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _path_component(session_id: str) -> str:
    name = str(session_id)
    if name in {"", ".", ".."} or "/" in name or "\\" in name or "\x00" in name:
        raise ValueError(f"session_id {name!r} cannot name a report folder")
    return name


def write_session_report(data: SessionReportData, folder: Path) -> Path:
    """Write ``<folder>/<session_id>/<day>.html`` atomically (re-writing a day replaces it),
    with ``plotly.min.js`` once beside it; returns the report's path."""
    target = Path(folder) / _path_component(data.session_id)
    target.mkdir(parents=True, exist_ok=True)
    # plotly.js sits next to the reports once, so reports open offline and stay small
    plotly_js = target / "plotly.min.js"
    if not plotly_js.exists():
        _write_atomically(plotly_js, get_plotlyjs())
    path = target / f"{data.day.isoformat()}.html"
    _write_atomically(path, render_session_report(data))
    return path
