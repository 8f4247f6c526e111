"""The daily session report: the day's slice, hand-computed summary numbers, every section in
the HTML with outside text escaped, and the file written atomically where stated."""

from datetime import UTC, date, datetime
from html.parser import HTMLParser

import pandas as pd
import pytest

from tt_platform.live.report import (
    SessionReportData,
    daily_slice,
    fill_divergence_bps,
    max_drawdown,
    render_session_report,
    session_summary,
    write_session_report,
)

DAY = date(2024, 3, 5)  # EST: New York = UTC - 5 h
HOSTILE = "<script>alert('x')</script>"


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def order(order_id, ts, status, ref, *, instrument="AAA", side="buy", quantity=10, message=""):
    filled = status == "filled"
    return {"order_id": order_id, "ts": utc(ts), "instrument": instrument, "side": side,
            "quantity": quantity, "order_type": "MARKET", "limit_price": None, "status": status,
            "broker_order_id": 1000 + order_id, "order_ref": ref, "filled_quantity": quantity if filled else 0,
            "avg_fill_price": 100.1 if filled else None, "message": message}


def fill(fill_id, ts, quantity, price, commission, shadow=None, bps=None, instrument="AAA"):
    return {"fill_id": fill_id, "order_id": 1, "ts": utc(ts), "instrument": instrument, "quantity": quantity,
            "price": price, "commission": commission, "slippage": 0.0, "shadow_price": shadow,
            "divergence_bps": bps}


def mark(step, ts, equity, cash, leverage=0.9):
    return {"step": step, "ts": utc(ts), "cash": cash, "equity": equity, "leverage": leverage}


def decision(step, ts, verdict, latency, breaches="", reasons=""):
    return {"step": step, "bar_time": utc(ts), "verdict": verdict, "breaches": breaches, "n_orders": 1,
            "latency_ms": latency, "guard_reasons": reasons, "guard_session_drawdown": 0.01}


def sample(**overrides) -> SessionReportData:
    orders = pd.DataFrame([
        order(1, "2024-03-05 15:00", "filled", "ref-filled"),
        order(2, "2024-03-05 15:05", "cancelled", "ref-cancelled"),
        order(3, "2024-03-05 15:10", "rejected", "ref-rejected", instrument=HOSTILE, message=HOSTILE),
        order(4, "2024-03-05 15:15", "not_sent", "ref-not-sent"),
        order(5, "2024-03-05 20:00", "submitted", "ref-open-today", side="sell"),
        order(6, "2024-03-04 16:00", "partially_filled", "ref-open-yesterday"),  # still open
        order(7, "2024-03-04 16:30", "filled", "ref-old-filled"),  # earlier day, done
        order(8, "2024-03-06 15:00", "submitted", "ref-tomorrow"),  # after the report's day
    ])
    fills = pd.DataFrame([
        fill(1, "2024-03-05 15:00", 10, 100.10, 1.0, shadow=100.0),  # +10 bps, computed
        fill(2, "2024-03-05 16:00", -5, 50.0, 0.5, shadow=49.98, bps=-4.0),  # given
        fill(3, "2024-03-05 17:00", 2, 20.0, 0.25),  # no shadow
        fill(4, "2024-03-04 17:00", 1, 10.0, 100.0, shadow=1.0, bps=999.0),  # earlier day
    ])
    marks = pd.DataFrame([
        mark(0, "2024-03-04 20:00", 40_000.0, 1.0),  # earlier day
        mark(1, "2024-03-05 03:00", 50_000.0, 2.0),  # 22:00 on 4 March in New York
        mark(2, "2024-03-05 14:30", 100_000.0, 9_000.0),
        mark(3, "2024-03-05 15:30", 102_000.0, 7_000.0, leverage=1.1),
        mark(4, "2024-03-05 16:30", 99_960.0, 6_000.0),
        mark(5, "2024-03-06 02:00", 101_000.0, 5_000.0, leverage=0.95),  # 21:00 on 5 March in New York
    ])
    holdings = pd.DataFrame([
        {"instrument": "AAA", "quantity": 10, "market_value": 1_001.0},
        {"instrument": HOSTILE, "quantity": 3, "market_value": 300.0},
        {"instrument": "GONE", "quantity": 0, "market_value": 0.0},
    ])
    audit = pd.DataFrame([
        decision(1, "2024-03-05 15:00", "pass", 10.0),
        decision(2, "2024-03-05 15:30", "clamped", 40.0, breaches="AAA per-symbol cap"),
        decision(3, "2024-03-05 16:00", "pass", 20.0),
        decision(4, "2024-03-05 16:30", "tripped", 30.0, reasons="session_drawdown"),
        decision(5, "2024-03-05 21:30", "market_closed", 50.0),
        decision(6, "2024-03-04 16:00", "blocked", 1_000.0),  # earlier day
    ])
    fields = {"session_id": "s-42", "mode": "paper", "policy_version": "ppo@7", "account_label": "DU…4567",
              "day": DAY, "status": "running", "orders": orders, "fills": fills, "marks": marks,
              "holdings": holdings, "audit": audit, "generated_at": datetime(2024, 3, 5, 22, 0, tzinfo=UTC)}
    return SessionReportData(**(fields | overrides))


def empty_sample() -> SessionReportData:
    return sample(orders=pd.DataFrame(), fills=pd.DataFrame(), marks=pd.DataFrame(), holdings=pd.DataFrame(),
                  audit=pd.DataFrame())


class TagBalance(HTMLParser):
    """Fails on a closing tag that does not match the open one; tracks what stays open."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link"})

    def __init__(self):
        super().__init__()
        self.stack = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


def assert_well_formed(page: str) -> None:
    parser = TagBalance()
    parser.feed(page)
    parser.close()
    assert parser.stack == []


# ---------------------------------------------------------------------------- the day's slice
def test_daily_slice_keeps_the_days_rows_and_orders_still_open_from_earlier_days():
    day = daily_slice(sample())
    assert list(day.orders["order_ref"]) == ["ref-open-yesterday", "ref-filled", "ref-cancelled", "ref-rejected",
                                             "ref-not-sent", "ref-open-today"]
    assert list(day.fills["fill_id"]) == [1, 2, 3]
    # New York's day, not UTC's: 02:00 UTC on the 6th is still the 5th, 03:00 UTC on the 5th is not
    assert list(day.marks["step"]) == [2, 3, 4, 5]
    assert list(day.audit["step"]) == [1, 2, 3, 4, 5]
    assert len(day.holdings) == 3
    again = daily_slice(day)
    pd.testing.assert_frame_equal(again.orders, day.orders)
    pd.testing.assert_frame_equal(again.marks, day.marks)


def test_a_table_without_a_needed_column_is_named_in_the_error():
    with pytest.raises(ValueError, match="fills table lacks column.*price"):
        daily_slice(sample(fills=pd.DataFrame([{"ts": utc("2024-03-05 15:00"), "instrument": "A", "quantity": 1}])))


def test_report_data_rejects_an_unknown_mode_and_a_naive_generation_time():
    with pytest.raises(ValueError, match="mode"):
        sample(mode="demo")
    with pytest.raises(ValueError, match="generated_at"):
        sample(generated_at=datetime(2024, 3, 5, 22, 0))


# ---------------------------------------------------------------------------- summary
def test_session_summary_numbers():
    summary = session_summary(sample())
    assert summary["start_equity"] == 100_000.0
    assert summary["end_equity"] == 101_000.0
    assert summary["pnl"] == 1_000.0
    assert summary["return"] == pytest.approx(0.01)
    assert summary["max_drawdown"] == pytest.approx(2_040.0 / 102_000.0)  # 102 000 -> 99 960
    assert summary["cash"] == 5_000.0
    assert summary["leverage"] == 0.95
    assert summary["orders_sent"] == 4  # today's five, less the one not sent
    assert summary["orders_not_sent"] == 1
    assert summary["orders_filled"] == 1
    assert summary["orders_cancelled_or_rejected"] == 2
    assert summary["orders_outstanding"] == 2  # today's and yesterday's
    assert summary["fills"] == 3
    assert summary["commission"] == pytest.approx(1.75)
    assert summary["fills_with_shadow"] == 2
    assert summary["divergence_mean_bps"] == pytest.approx(3.0)  # (10 - 4) / 2
    assert summary["divergence_mean_abs_bps"] == pytest.approx(7.0)
    assert summary["divergence_max_abs_bps"] == pytest.approx(10.0)
    assert summary["decisions"] == {"tripped": 1, "market_closed": 1, "blocked": 0, "clamped": 1, "pass": 2}
    assert summary["decisions_total"] == 5
    assert summary["latency_p50_ms"] == pytest.approx(30.0)
    assert summary["latency_p99_ms"] == pytest.approx(49.6)  # 40 + 0.96 * (50 - 40)


def test_summary_of_an_empty_day():
    summary = session_summary(empty_sample())
    for key in ("start_equity", "end_equity", "pnl", "return", "max_drawdown", "cash", "divergence_mean_abs_bps",
                "divergence_max_abs_bps", "latency_p50_ms", "latency_p99_ms"):
        assert summary[key] is None, key
    assert summary["orders_sent"] == summary["fills"] == summary["decisions_total"] == 0
    assert summary["commission"] == 0.0
    assert set(summary["decisions"].values()) == {0}


def test_divergence_is_positive_when_the_real_fill_is_worse_on_either_side():
    fills = pd.DataFrame([fill(1, "2024-03-05 15:00", 10, 101.0, 0.0, shadow=100.0),  # bought dearer
                          fill(2, "2024-03-05 15:00", -10, 99.0, 0.0, shadow=100.0),  # sold cheaper
                          fill(3, "2024-03-05 15:00", -10, 101.0, 0.0, shadow=100.0),  # sold dearer
                          fill(4, "2024-03-05 15:00", 10, 101.0, 0.0)])
    bps = fill_divergence_bps(fills)
    assert list(bps[:3]) == pytest.approx([100.0, 100.0, -100.0])
    assert pd.isna(bps[3])


def test_max_drawdown_from_the_running_peak():
    assert max_drawdown([100.0, 120.0, 90.0, 130.0, 117.0]) == pytest.approx(0.25)
    assert max_drawdown([100.0, 101.0]) == 0.0
    assert max_drawdown([]) is None


# ---------------------------------------------------------------------------- HTML
SECTIONS = ["Summary", "Equity and cash", "Orders", "Fills", "PnL", "Positions", "Cash", "Outstanding orders",
            "Divergence from the shadow simulation", "Guardrail verdicts"]


def test_the_report_has_every_section_the_refs_and_the_chart():
    page = render_session_report(sample())
    assert_well_formed(page)
    assert "<title>Paper trading session s-42 — 2024-03-05</title>" in page
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in page, title
    for ref in ("ref-filled", "ref-cancelled", "ref-rejected", "ref-not-sent", "ref-open-today"):
        assert ref in page
    assert "ref-old-filled" not in page and "ref-tomorrow" not in page
    assert "DU…4567" in page and "ppo@7" in page
    assert "Plotly.newPlot" in page and '<script src="plotly.min.js"></script>' in page
    assert len(page) < 200_000  # plotly.js itself is not inlined


def test_outstanding_orders_include_one_sent_on_an_earlier_day():
    page = render_session_report(sample())
    outstanding = page[page.index('<section id="outstanding">'):]
    outstanding = outstanding[:outstanding.index("</section>")]
    assert "ref-open-yesterday" in outstanding and "2024-03-04 11:00:00" in outstanding  # New York time
    assert "ref-open-today" in outstanding and "2024-03-05 15:00:00" in outstanding
    assert "ref-filled" not in outstanding


def test_guardrail_section_lists_the_decisions_that_did_not_pass():
    page = render_session_report(sample())
    guardrails = page[page.index('<section id="guardrails">'):]
    assert "AAA per-symbol cap" in guardrails and "session_drawdown" in guardrails
    assert "Decisions that did not pass" in guardrails
    assert "<td>tripped</td>" in guardrails and "<td>market_closed</td>" in guardrails


def test_outside_text_is_escaped():
    page = render_session_report(sample(session_id="<b>s</b>", status="<img src=x onerror=alert(1)>"))
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>s</b>" not in page
    assert html_escaped(HOSTILE) in page
    assert "&lt;b&gt;s&lt;/b&gt;" in page


def html_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#x27;")


def test_an_empty_day_gives_a_valid_report_that_says_so():
    page = render_session_report(empty_sample())
    assert_well_formed(page)
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in page, title
    for sentence in ("No orders today.", "No fills today.", "No positions.", "No outstanding orders.",
                     "No fills with a shadow price today.", "No decisions today.", "No portfolio marks today."):
        assert sentence in page, sentence
    assert "Plotly.newPlot" not in page


def test_a_day_where_every_decision_passed_says_so():
    audit = pd.DataFrame([decision(1, "2024-03-05 15:00", "pass", 5.0)])
    assert "Every decision passed." in render_session_report(sample(audit=audit))


# ---------------------------------------------------------------------------- the file
def test_the_report_is_written_per_session_and_day_and_a_rewrite_replaces_it(tmp_path):
    path = write_session_report(sample(), tmp_path)
    assert path == tmp_path / "s-42" / "2024-03-05.html"
    assert "status" not in path.name and "<td>running</td>" in path.read_text(encoding="utf-8")
    plotly_js = tmp_path / "s-42" / "plotly.min.js"
    assert plotly_js.stat().st_size > 1_000_000
    plotly_js.write_text("// kept", encoding="utf-8")  # written once, never again

    again = write_session_report(sample(status="stopped"), tmp_path)
    assert again == path
    text = path.read_text(encoding="utf-8")
    assert "<td>stopped</td>" in text and "<td>running</td>" not in text
    assert plotly_js.read_text(encoding="utf-8") == "// kept"
    assert sorted(p.name for p in (tmp_path / "s-42").iterdir()) == ["2024-03-05.html", "plotly.min.js"]


def test_a_session_id_that_is_not_a_folder_name_is_refused(tmp_path):
    for bad in ("../elsewhere", "a/b", ".."):
        with pytest.raises(ValueError, match="session_id"):
            write_session_report(sample(session_id=bad), tmp_path)
    assert list(tmp_path.iterdir()) == []
