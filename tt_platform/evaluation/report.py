"""The evaluation report: one self-contained HTML file per evaluated policy.

Plotly charts (equity vs baselines, drawdown, target weights) and a metrics table, with the
lineage (policy, feature-set hash, data snapshot, config hash, seed) printed at the top so a
report can always be traced back to what made it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from tt_platform.evaluation.metrics import drawdown_series


@dataclass
class EvaluationResult:
    policy_id: str
    equity: dict[str, pd.Series]  # curve name -> equity series (policy first, then baselines)
    metrics: dict[str, dict[str, float]]  # curve name -> metric -> value
    weights: pd.DataFrame | None = None  # policy target weights over time (columns = symbols)
    lineage: dict[str, str] = field(default_factory=dict)
    period: tuple[str, str] = ("", "")


def _metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    frame = pd.DataFrame(metrics)
    percent_rows = {"total_return", "annual_return", "annual_volatility", "max_drawdown", "win_ratio"}
    formatted = frame.apply(
        lambda row: row.map(lambda v: "—" if pd.isna(v) else f"{v:.2%}" if row.name in percent_rows else f"{v:.3f}"), axis=1
    )
    return formatted.to_html(classes="metrics", border=0, escape=True)


def build_figure(result: EvaluationResult) -> go.Figure:
    rows = 3 if result.weights is not None and not result.weights.empty else 2
    titles = ["Equity (out of sample)", "Drawdown", "Policy target weights"][:rows]
    figure = make_subplots(rows=rows, cols=1, shared_xaxes=True, subplot_titles=titles, vertical_spacing=0.07)
    for name, equity in result.equity.items():
        figure.add_trace(go.Scatter(x=equity.index, y=equity.values, name=name, mode="lines"), row=1, col=1)
        dd = drawdown_series(equity)
        figure.add_trace(go.Scatter(x=dd.index, y=dd.values, name=f"{name} drawdown", mode="lines", showlegend=False), row=2, col=1)
    if rows == 3:
        for symbol in result.weights.columns:
            figure.add_trace(
                go.Scatter(x=result.weights.index, y=result.weights[symbol], name=symbol, stackgroup="weights", mode="lines"),
                row=3,
                col=1,
            )
    figure.update_layout(height=300 * rows, template="plotly_white", legend={"orientation": "h"})
    return figure


def write_report(result: EvaluationResult, path: Path) -> Path:
    """Write the HTML report atomically (a crash never leaves a half-written report)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # plotly.js sits next to the reports once, so reports open offline and stay small
    plotly_js = path.parent / "plotly.min.js"
    if not plotly_js.exists():
        plotly_js.write_text(get_plotlyjs(), encoding="utf-8")
    figure_html = build_figure(result).to_html(full_html=False, include_plotlyjs=False)
    lineage = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in result.lineage.items()
    )
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tt-platform evaluation: {html.escape(result.policy_id)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
th,td{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}} th{{text-align:left}}</style>
<script src="plotly.min.js"></script></head>
<body><h1>Evaluation of policy {html.escape(result.policy_id)}</h1>
<p>Out-of-sample period {html.escape(result.period[0])} to {html.escape(result.period[1])}.</p>
<h2>Metrics</h2>{_metrics_table(result.metrics)}
<h2>Lineage</h2><table>{lineage}</table>
{figure_html}
</body></html>"""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(path)
    return path
