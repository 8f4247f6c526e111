"""The walk-forward report: one self-contained HTML file per walk-forward evaluation.

It reads a ``WalkForwardSummary`` (``tt_platform.pipeline.walk_forward.summarize``) and shows,
in this order: the lineage, the gate's verdict with every check, the deflated Sharpe ratio,
the stitched metrics against the baselines, equity and drawdown, rolling Sharpe and volatility,
the per-fold results, the allocation heatmap, the distributions of exposure and turnover, the
costs, the seed spread, feature drift and the promotion decision.

The file embeds plotly.js once, inline, and uses no external script, stylesheet or font, so it
opens correctly when copied alone (mailed, attached to an MLflow run). Each curve name has one
colour in every panel (``curve_colours``). Every string from data is HTML-escaped.

The pieces are public so the same figures and tables can go elsewhere: ``report_figures`` to
MLflow as artifacts, ``markdown_summary`` to Dagster metadata, ``fold_table`` and
``metrics_table`` as data.

"policy" without a seed means the primary seed: the one whose stitched Sharpe ratio is the
median over seeds, the one the gate judges (``WalkForwardSummary.primary_seed``).
"""

from __future__ import annotations

import html
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from tt_platform.evaluation.metrics import drawdown_series

if TYPE_CHECKING:
    from tt_platform.pipeline.walk_forward import WalkForwardSummary

ROLLING_BARS = 63  # about a quarter of daily bars
MIN_ROLLING_BARS = 10
CURRENCY = "USD"
# the baselines drawn in the rolling panels (cash has no volatility and no Sharpe ratio)
ROLLING_BASELINES = ("buy_and_hold", "equal_weight", "risk_matched")
# colours fixed per curve name, used in every panel
PRIMARY_COLOUR = "#1f4eb4"
SEED_COLOURS = ("#8da9dc", "#a7c4e8", "#7fb3c9", "#b3b8e6", "#9cc6de", "#c0cbe8")
BASELINE_COLOURS = {
    "buy_and_hold": "#e07b00",
    "equal_weight": "#2a9d3f",
    "risk_matched": "#8e44ad",
    "momentum": "#c0392b",
    "cash": "#7f7f7f",
}
OTHER_COLOURS = ("#d62728", "#17becf", "#bcbd22", "#e377c2", "#2f4f4f")
BASELINE_MARKERS = {"buy_and_hold": "diamond", "equal_weight": "square", "risk_matched": "triangle-up",
                    "momentum": "star", "cash": "x"}

# section headings, in the order they appear in the report
SECTIONS = (
    "Lineage",
    "Gate verdict",
    "Deflated Sharpe ratio",
    "Walk-forward metrics",
    "Equity and drawdown",
    "Rolling Sharpe and volatility",
    "Per-fold results",
    "Allocation",
    "Exposure and turnover",
    "Costs",
    "Seed spread",
    "Feature drift",
    "Promotion",
)

# metric -> (label, unit kind); the metrics table's rows, in this order
METRIC_ROWS: dict[str, tuple[str, str]] = {
    "sharpe": ("Sharpe ratio (annualised)", "ratio"),
    "sortino": ("Sortino ratio (annualised)", "ratio"),
    "cagr": ("CAGR (%/year)", "pct"),
    "total_return": ("total return (%)", "pct"),
    "annual_volatility": ("volatility (%/year)", "pct"),
    "max_drawdown": ("max drawdown (%)", "pct"),
    "calmar": ("Calmar ratio", "ratio"),
    "win_ratio": ("win ratio (% of moving bars)", "pct"),
    "hit_rate": ("hit rate (% of invested bars)", "pct"),
    "profit_factor": ("profit factor (gains / losses)", "ratio"),
    "exposure": ("mean gross exposure (% of equity)", "pct"),
    "time_invested": ("time invested (% of bars)", "pct"),
    "turnover": ("turnover (% of equity per bar)", "pct"),
    "annual_turnover": ("turnover (× equity per year)", "ratio"),
    "periods": ("returns (bars)", "int"),
}
SPREAD_METRICS = ("sharpe", "cagr", "total_return", "annual_volatility", "max_drawdown", "exposure")


# ----------------------------------------------------------------------------- helpers


def policy_name(seed: int) -> str:
    """The key of a seed's stitched curve and metrics in a ``WalkForwardSummary``."""
    return f"policy (seed {seed})"


def _primary(summary: WalkForwardSummary) -> str:
    return policy_name(summary.primary_seed)


def _baselines(summary: WalkForwardSummary) -> list[str]:
    seeds = {policy_name(s) for s in summary.plan.seeds}
    return [name for name in summary.stitched if name not in seeds]


def _seed_order(summary: WalkForwardSummary) -> list[int]:
    """The primary seed first, then the others in plan order."""
    return [summary.primary_seed] + [s for s in summary.plan.seeds if s != summary.primary_seed]


def curve_colours(summary: WalkForwardSummary) -> dict[str, str]:
    """One colour per curve name (each seed's policy and each baseline), the same in every panel:
    the primary seed strong blue, the other seeds light blues, each baseline its own colour."""
    colours: dict[str, str] = {_primary(summary): PRIMARY_COLOUR}
    others = [s for s in summary.plan.seeds if s != summary.primary_seed]
    for i, seed in enumerate(others):
        colours[policy_name(seed)] = SEED_COLOURS[i % len(SEED_COLOURS)]
    extra = 0
    for name in _baselines(summary):
        if name in BASELINE_COLOURS:
            colours[name] = BASELINE_COLOURS[name]
        else:
            colours[name] = OTHER_COLOURS[extra % len(OTHER_COLOURS)]
            extra += 1
    return colours


def _naive(index: pd.Index) -> pd.Index:
    """Timestamps as naive UTC for plotting (plotly draws wall-clock stamps)."""
    if isinstance(index, pd.DatetimeIndex) and index.tz is not None:
        return index.tz_convert("UTC").tz_localize(None)
    return index


def _number(value: object) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def periods_per_year(summary: WalkForwardSummary) -> float:
    """Bars per year behind the summary's annualised metrics: recovered from a stitched curve's
    annual volatility over its per-bar volatility (as ``summarize`` annualised them), else
    inferred from the timestamps."""
    for name in [_primary(summary), *_baselines(summary)]:
        curve = summary.stitched.get(name)
        annual = _number(summary.metrics.get(name, {}).get("annual_volatility"))
        if curve is None or annual is None or annual <= 0 or len(curve) < 3:
            continue
        per_bar = float(np.std(curve.pct_change().dropna().to_numpy(), ddof=1))
        if per_bar > 0:
            return (annual / per_bar) ** 2
    curve = summary.stitched[_primary(summary)]
    days = (curve.index[-1] - curve.index[0]).total_seconds() / 86400.0
    return 252.0 if days <= 0 else (len(curve) - 1) / days * 365.25


def _primary_weights(summary: WalkForwardSummary) -> pd.DataFrame:
    """The primary seed's target weights (decision bar × symbol), folds concatenated."""
    frames = [f.weights[summary.primary_seed] for f in summary.folds if summary.primary_seed in f.weights]
    frames = [w for w in frames if not w.empty]
    return pd.concat(frames).fillna(0.0) if frames else pd.DataFrame()


def _exposure_turnover(summary: WalkForwardSummary) -> tuple[pd.Series, pd.Series]:
    """Per decision bar of the primary seed: gross exposure (Σ|w|) and turnover, estimated as
    Σ|Δ target weight| (each fold starts from cash; drift between bars is not counted)."""
    exposures, turnovers = [], []
    for fold in summary.folds:
        weights = fold.weights.get(summary.primary_seed)
        if weights is None or weights.empty:
            continue
        weights = weights.fillna(0.0)
        exposures.append(weights.abs().sum(axis=1))
        previous = weights.shift(1).fillna(0.0)
        turnovers.append((weights - previous).abs().sum(axis=1))
    if not exposures:
        return pd.Series(dtype=float), pd.Series(dtype=float)
    return pd.concat(exposures), pd.concat(turnovers)


# ----------------------------------------------------------------------------- tables


def _sharpe_columns_per_seed(summary: WalkForwardSummary) -> bool:
    return len(summary.plan.seeds) <= 4


def fold_table(summary: WalkForwardSummary, *, currency: str = CURRENCY) -> pd.DataFrame:
    """One row per fold: its test period, the out-of-sample Sharpe ratio of each seed (or their
    mean, std, min and max with more than four seeds), each baseline's Sharpe ratio, and the
    primary seed's total return, max drawdown (fractions), commission and slippage (currency).

    Values are raw numbers (fractions, not percentages); None where undefined."""
    seeds = _seed_order(summary)
    primary = summary.primary_seed
    rows = []
    for fold in summary.folds:
        curve = fold.policy_curves.get(primary)
        row: dict[str, object] = {
            "fold": fold.fold_key,
            "test start": fold.test_period[0],
            "test end": fold.test_period[1],
            "test bars": len(curve) if curve is not None else None,
        }
        sharpes = {s: _number(fold.policy_metrics.get(s, {}).get("sharpe")) for s in seeds}
        if _sharpe_columns_per_seed(summary):
            for seed in seeds:
                row[f"sharpe seed {seed}"] = sharpes[seed]
        defined = np.array([v for v in sharpes.values() if v is not None], dtype=np.float64)
        if len(seeds) > 1:
            row["sharpe seed mean"] = float(defined.mean()) if len(defined) else None
            row["sharpe seed std"] = float(defined.std(ddof=1)) if len(defined) > 1 else None
        if not _sharpe_columns_per_seed(summary):
            row["sharpe seed min"] = float(defined.min()) if len(defined) else None
            row["sharpe seed max"] = float(defined.max()) if len(defined) else None
        for name in fold.baseline_metrics:
            row[f"sharpe {name}"] = _number(fold.baseline_metrics[name].get("sharpe"))
        metrics = fold.policy_metrics.get(primary, {})
        row["total return"] = _number(metrics.get("total_return"))
        row["max drawdown"] = _number(metrics.get("max_drawdown"))
        costs = fold.costs.get(primary, {})
        row[f"commission ({currency})"] = _number(costs.get("commission"))
        row[f"slippage ({currency})"] = _number(costs.get("slippage"))
        row["policy id"] = fold.policy_ids.get(primary)
        rows.append(row)
    return pd.DataFrame(rows)


def metrics_table(summary: WalkForwardSummary) -> pd.DataFrame:
    """The walk-forward (stitched) metrics: rows metrics, columns the primary seed's policy then
    each baseline. Raw numbers (fractions, not percentages); rows no curve defines are left out.

    The stitched curves carry no trading series, so the policy's turnover is the folds' mean
    (weighted by their bars) and its time invested comes from its target weights."""
    primary = _primary(summary)
    columns = [primary, *_baselines(summary)]
    data = {name: dict(summary.metrics.get(name, {})) for name in columns}
    policy = data[primary]
    if _number(policy.get("turnover")) is None:
        pairs = [(_number(f.policy_metrics.get(summary.primary_seed, {}).get("turnover")),
                  _number(f.policy_metrics.get(summary.primary_seed, {}).get("periods"))) for f in summary.folds]
        pairs = [(t, n) for t, n in pairs if t is not None and n]
        if pairs:
            mean = sum(t * n for t, n in pairs) / sum(n for _, n in pairs)
            policy["turnover"] = mean
            policy["annual_turnover"] = mean * periods_per_year(summary)
    if _number(policy.get("time_invested")) is None:
        exposure, _ = _exposure_turnover(summary)
        if len(exposure):
            policy["time_invested"] = float((exposure > 0).mean())
    rows = {}
    for metric in METRIC_ROWS:
        values = [_number(data[name].get(metric)) for name in columns]
        if any(v is not None for v in values):
            rows[metric] = values
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)


def _cost_rows(summary: WalkForwardSummary, currency: str) -> pd.DataFrame:
    """Per fold, the primary seed's commission, slippage and their total (currency), the traded
    value (estimated: mean turnover × bars × mean equity) and the cost in bps of it."""
    primary = summary.primary_seed
    rows = []
    for fold in summary.folds:
        costs = fold.costs.get(primary, {})
        metrics = fold.policy_metrics.get(primary, {})
        curve = fold.policy_curves.get(primary)
        commission, slippage = _number(costs.get("commission")), _number(costs.get("slippage"))
        total = _number(costs.get("total"))
        if total is None and commission is not None and slippage is not None:
            total = commission + slippage
        turnover, periods = _number(metrics.get("turnover")), _number(metrics.get("periods"))
        traded = None
        if turnover is not None and periods and curve is not None and len(curve) > 1:
            traded = turnover * periods * float(curve.iloc[:-1].mean())
        rows.append({
            "fold": fold.fold_key,
            f"commission ({currency})": commission,
            f"slippage ({currency})": slippage,
            f"total cost ({currency})": total,
            f"traded value, estimated ({currency})": traded,
            "cost (bps of traded value)": total / traded * 1e4 if total is not None and traded else None,
        })
    frame = pd.DataFrame(rows)
    if len(frame):
        sums = {c: frame[c].sum(min_count=1) for c in frame.columns[1:5]}
        traded_total = sums[f"traded value, estimated ({currency})"]
        cost_total = sums[f"total cost ({currency})"]
        total_row = {"fold": "all folds", **sums,
                     "cost (bps of traded value)": cost_total / traded_total * 1e4
                     if pd.notna(cost_total) and pd.notna(traded_total) and traded_total else None}
        frame = pd.concat([frame, pd.DataFrame([total_row])], ignore_index=True)
    return frame


# ----------------------------------------------------------------------------- figures


def _fold_starts(summary: WalkForwardSummary) -> list[tuple[str, pd.Timestamp]]:
    starts = []
    for fold in summary.folds:
        curve = fold.policy_curves.get(summary.primary_seed)
        if curve is not None and len(curve):
            starts.append((fold.fold_key.split("_")[0], _naive(curve.index[:1])[0]))
    return starts


def _mark_folds(figure: go.Figure, summary: WalkForwardSummary, rows: int) -> None:
    """A dotted line at each fold's first test bar across every panel, the fold named on top."""
    for i, (label, start) in enumerate(_fold_starts(summary)):
        if i:
            for row in range(1, rows + 1):
                axis = "" if row == 1 else str(row)
                figure.add_shape(type="line", x0=start, x1=start, y0=0, y1=1, xref=f"x{axis}", yref=f"y{axis} domain",
                                 line={"color": "#aaaaaa", "width": 1, "dash": "dot"})
        figure.add_annotation(x=start, y=1, xref="x", yref="y domain", text=label, showarrow=False,
                              xanchor="left", yanchor="top", font={"size": 10, "color": "#777777"})


def _line_style(summary: WalkForwardSummary, name: str, colours: Mapping[str, str]) -> dict:
    if name == _primary(summary):
        return {"color": colours[name], "width": 2.4}
    if name.startswith("policy (seed"):
        return {"color": colours[name], "width": 1.2}
    return {"color": colours[name], "width": 1.5, "dash": "dot" if name == "cash" else "solid"}


def _curve_order(summary: WalkForwardSummary) -> list[str]:
    """Other seeds first (drawn underneath), then the baselines, the primary seed on top."""
    others = [policy_name(s) for s in summary.plan.seeds if s != summary.primary_seed]
    return others + _baselines(summary) + [_primary(summary)]


def _legend_order(summary: WalkForwardSummary) -> dict[str, int]:
    names = [_primary(summary)] + [policy_name(s) for s in summary.plan.seeds if s != summary.primary_seed]
    return {name: i for i, name in enumerate(names + _baselines(summary))}


def equity_drawdown_figure(summary: WalkForwardSummary, *, currency: str = CURRENCY) -> go.Figure:
    colours, rank = curve_colours(summary), _legend_order(summary)
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1, row_heights=[0.62, 0.38],
                           subplot_titles=(f"Equity, stitched out of sample ({currency})", "Drawdown from peak (%)"))
    for name in _curve_order(summary):
        curve = summary.stitched[name]
        x = _naive(curve.index)
        line = _line_style(summary, name, colours)
        common = {"name": name, "legendgroup": name, "legendrank": rank[name] + 1, "mode": "lines", "line": line}
        hover = f"%{{x|%Y-%m-%d}}<br>%{{y:,.0f}} {html.escape(currency)}<extra>%{{fullData.name}}</extra>"
        figure.add_trace(go.Scatter(x=x, y=curve.to_numpy(dtype=float), showlegend=True, hovertemplate=hover, **common),
                         row=1, col=1)
        drawdown = drawdown_series(curve)
        figure.add_trace(go.Scatter(x=x, y=drawdown.to_numpy(dtype=float), showlegend=False,
                                    hovertemplate="%{x|%Y-%m-%d}<br>%{y:.1%}<extra>%{fullData.name}</extra>",
                                    **common), row=2, col=1)
    _mark_folds(figure, summary, rows=2)
    figure.update_yaxes(title_text=currency, tickformat=",.0f", row=1, col=1)
    figure.update_yaxes(title_text="drawdown (%)", tickformat=".0%", rangemode="tozero", row=2, col=1)
    figure.update_xaxes(title_text="date (test bars; dotted lines: fold starts)", row=2, col=1)
    figure.update_layout(height=620, template="plotly_white", hovermode="x unified",
                         legend={"orientation": "h", "y": -0.12, "traceorder": "normal"},
                         margin={"t": 50, "l": 70, "r": 20, "b": 40})
    return figure


def rolling_window(summary: WalkForwardSummary) -> int:
    """Bars per rolling window: ``ROLLING_BARS`` when the curve holds at least two windows,
    else a third of its returns (at least ``MIN_ROLLING_BARS``)."""
    returns = len(summary.stitched[_primary(summary)]) - 1
    if returns >= 2 * ROLLING_BARS:
        return ROLLING_BARS
    return max(MIN_ROLLING_BARS, returns // 3)


def rolling_figure(summary: WalkForwardSummary) -> go.Figure:
    colours, rank = curve_colours(summary), _legend_order(summary)
    window = rolling_window(summary)
    periods = periods_per_year(summary)
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
        subplot_titles=(f"Rolling Sharpe ratio, annualised ({window}-bar window)",
                        f"Rolling volatility, annualised (%/year, {window}-bar window)"),
    )
    names = [n for n in ROLLING_BASELINES if n in summary.stitched] + [_primary(summary)]
    for name in names:
        returns = summary.stitched[name].pct_change()
        mean = returns.rolling(window, min_periods=window).mean()
        std = returns.rolling(window, min_periods=window).std(ddof=1)
        std = std.where(std > 1e-12)
        sharpe = mean / std * math.sqrt(periods)
        volatility = std.fillna(0.0).where(mean.notna()) * math.sqrt(periods)
        x = _naive(returns.index)
        common = {"name": name, "legendgroup": name, "legendrank": rank[name] + 1, "mode": "lines",
                  "line": _line_style(summary, name, colours)}
        figure.add_trace(go.Scatter(x=x, y=sharpe.to_numpy(dtype=float), showlegend=True,
                                    hovertemplate="%{x|%Y-%m-%d}<br>%{y:.2f}<extra>%{fullData.name}</extra>", **common),
                         row=1, col=1)
        figure.add_trace(go.Scatter(x=x, y=volatility.to_numpy(dtype=float), showlegend=False,
                                    hovertemplate="%{x|%Y-%m-%d}<br>%{y:.1%}<extra>%{fullData.name}</extra>", **common),
                         row=2, col=1)
    _mark_folds(figure, summary, rows=2)
    figure.add_hline(y=0, line={"color": "#999999", "width": 1}, row=1, col=1)
    figure.update_yaxes(title_text="Sharpe (annualised)", row=1, col=1)
    figure.update_yaxes(title_text="volatility (%/year)", tickformat=".0%", rangemode="tozero", row=2, col=1)
    figure.update_xaxes(title_text=f"date (each point: the {window} bars up to it)", row=2, col=1)
    figure.update_layout(height=520, template="plotly_white", hovermode="x unified",
                         legend={"orientation": "h", "y": -0.15}, margin={"t": 50, "l": 70, "r": 20, "b": 40})
    return figure


def allocation_figure(summary: WalkForwardSummary) -> go.Figure:
    weights = _primary_weights(summary)
    figure = go.Figure()
    if weights.empty:
        figure.add_annotation(text="no target weights recorded", showarrow=False, x=0.5, y=0.5,
                              xref="paper", yref="paper")
        figure.update_layout(height=200, template="plotly_white")
        return figure
    short = bool((weights.to_numpy() < 0).any())
    z = weights.to_numpy(dtype=float).T  # symbol x time
    bound = float(np.nanmax(np.abs(z))) or 1.0
    colours = {"colorscale": "RdBu", "zmid": 0.0, "zmin": -bound, "zmax": bound} if short else {
        "colorscale": "Blues", "zmin": 0.0, "zmax": bound}
    symbols = [str(c) for c in weights.columns]
    figure.add_trace(go.Heatmap(
        z=z, x=_naive(weights.index), y=symbols, colorbar={"title": {"text": "weight<br>(% of equity)"}, "tickformat": ".0%"},
        hovertemplate="%{y} at %{x|%Y-%m-%d}: %{z:.1%}<extra></extra>", **colours,
    ))
    for i, (_, start) in enumerate(_fold_starts(summary)):
        if i:
            figure.add_shape(type="line", x0=start, x1=start, y0=0, y1=1, xref="x", yref="paper",
                             line={"color": "#444444", "width": 1, "dash": "dot"})
    figure.update_layout(
        title={"text": f"Target weights of {policy_name(summary.primary_seed)} per decision bar"
                       f"{' (red short, blue long)' if short else ''}", "font": {"size": 14}},
        height=max(260, 34 * len(symbols) + 140), template="plotly_white",
        margin={"t": 50, "l": 80, "r": 20, "b": 50},
    )
    figure.update_xaxes(title_text="decision bar (dotted lines: fold starts)")
    figure.update_yaxes(title_text="symbol", autorange="reversed", type="category")
    return figure


def exposure_turnover_figure(summary: WalkForwardSummary) -> go.Figure:
    exposure, turnover = _exposure_turnover(summary)
    mean_exposure = f"mean {exposure.mean():.0%}" if len(exposure) else "none recorded"
    mean_turnover = f"mean {turnover.mean():.1%}" if len(turnover) else "none recorded"
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        f"Gross exposure Σ|w| per bar ({mean_exposure})",
        f"Turnover ≈ Σ|Δw| per bar ({mean_turnover})",
    ))
    colour = PRIMARY_COLOUR
    figure.add_trace(go.Histogram(x=exposure.to_numpy(dtype=float), name="gross exposure", marker_color=colour,
                                  nbinsx=30, hovertemplate="%{x} of equity: %{y} bars<extra></extra>"), row=1, col=1)
    figure.add_trace(go.Histogram(x=turnover.to_numpy(dtype=float), name="turnover", marker_color=colour,
                                  nbinsx=30, hovertemplate="%{x} of equity: %{y} bars<extra></extra>"), row=1, col=2)
    figure.update_xaxes(title_text="gross exposure (% of equity)", tickformat=".0%", row=1, col=1)
    figure.update_xaxes(title_text="traded (% of equity, change of target weights)", tickformat=".0%", row=1, col=2)
    figure.update_yaxes(title_text="bars (count)", row=1, col=1)
    figure.update_yaxes(title_text="bars (count)", row=1, col=2)
    figure.update_layout(height=360, template="plotly_white", showlegend=False, bargap=0.05,
                         title={"text": f"{policy_name(summary.primary_seed)}, every test bar of every fold",
                                "font": {"size": 14}},
                         margin={"t": 80, "l": 70, "r": 20, "b": 50})
    return figure


def folds_figure(summary: WalkForwardSummary) -> go.Figure:
    colours = curve_colours(summary)
    keys = [f.fold_key for f in summary.folds]
    labels = [f"{k.split('_')[0]}<br>{f.test_period[0]}" for k, f in zip(keys, summary.folds, strict=True)]
    figure = go.Figure()
    for seed in _seed_order(summary):
        name = policy_name(seed)
        y = [_number(f.policy_metrics.get(seed, {}).get("sharpe")) for f in summary.folds]
        primary = seed == summary.primary_seed
        figure.add_trace(go.Scatter(
            x=labels, y=[np.nan if v is None else v for v in y], name=name, mode="markers",
            marker={"color": colours[name], "size": 13 if primary else 10, "symbol": "circle",
                    "line": {"color": "#ffffff", "width": 1}},
            hovertemplate="%{x}<br>Sharpe %{y:.2f}<extra>%{fullData.name}</extra>",
        ))
    undefined = []
    for name in _baselines(summary):
        y = [_number(f.baseline_metrics.get(name, {}).get("sharpe")) for f in summary.folds]
        if all(v is None for v in y):
            undefined.append(name)
            continue
        figure.add_trace(go.Scatter(
            x=labels, y=[np.nan if v is None else v for v in y], name=name, mode="markers",
            marker={"color": colours[name], "size": 10, "symbol": BASELINE_MARKERS.get(name, "circle-open")},
            hovertemplate="%{x}<br>Sharpe %{y:.2f}<extra>%{fullData.name}</extra>",
        ))
    figure.add_hline(y=0, line={"color": "#999999", "width": 1})
    note = f" ({', '.join(undefined)}: flat, no Sharpe ratio)" if undefined else ""
    figure.update_layout(
        title={"text": f"Out-of-sample Sharpe ratio per fold{note}", "font": {"size": 14}},
        height=400, template="plotly_white", scattermode="group", legend={"orientation": "h", "y": -0.25},
        margin={"t": 50, "l": 70, "r": 20, "b": 50},
    )
    figure.update_xaxes(title_text="fold (test start)", type="category")
    figure.update_yaxes(title_text="Sharpe ratio (annualised)")
    return figure


def report_figures(summary: WalkForwardSummary, *, currency: str = CURRENCY) -> dict[str, go.Figure]:
    """The report's figures by name: "equity_drawdown", "rolling", "allocation",
    "exposure_turnover" and "folds" (e.g. for MLflow: ``run.log_figure(fig, f"{name}.html")``)."""
    return {
        "equity_drawdown": equity_drawdown_figure(summary, currency=currency),
        "rolling": rolling_figure(summary),
        "allocation": allocation_figure(summary),
        "exposure_turnover": exposure_turnover_figure(summary),
        "folds": folds_figure(summary),
    }


# ----------------------------------------------------------------------------- markdown


def _md(text: object) -> str:
    """Text safe in a markdown table cell: pipes escaped, one line, nothing read as an HTML tag."""
    text = str(text).replace("|", "\\|").replace("\n", " ")
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text)


def _pct(value: object, digits: int = 1) -> str:
    number = _number(value)
    return "—" if number is None else f"{_unsigned_zero(number, 2 + digits):.{digits}%}"


def _fixed(value: object, digits: int = 2) -> str:
    number = _number(value)
    return "—" if number is None else f"{_unsigned_zero(number, digits):.{digits}f}"


def _unsigned_zero(number: float, digits: int) -> float:
    """0.0 for what rounds to zero at ``digits`` decimals, so nothing prints as "-0.00"."""
    return 0.0 if abs(number) < 0.5 * 10.0 ** -digits else number


def markdown_summary(summary: WalkForwardSummary) -> str:
    """A short markdown summary for Dagster metadata: policy vs baselines (Sharpe, CAGR, max
    drawdown, exposure), then the deflated Sharpe ratio, the number of trials and the verdict."""
    plan = summary.plan
    lines = [
        f"**Walk-forward {_md(plan.name)}** (plan `{_md(plan.plan_key)}`, {len(summary.folds)} folds × "
        f"{len(plan.seeds)} seeds; policy = median seed {summary.primary_seed})",
        "",
        "| curve | Sharpe | CAGR | max drawdown | exposure |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in [_primary(summary), *_baselines(summary)]:
        m = summary.metrics.get(name, {})
        lines.append(f"| {_md(name)} | {_fixed(m.get('sharpe'))} | {_pct(m.get('cagr'))} | "
                     f"{_pct(m.get('max_drawdown'))} | {_pct(m.get('exposure'), 0)} |")
    failed = len(summary.verdict.reasons)
    verdict = "**PASSED**" if summary.verdict.passed else f"**FAILED** ({failed} of {len(summary.verdict.checks)} checks)"
    lines += [
        "",
        "| deflated Sharpe (DSR) | trials | gate |",
        "|---:|---:|---|",
        f"| {_fixed(summary.deflated.get('dsr'), 3)} | {summary.n_trials} | {verdict} |",
    ]
    if summary.verdict.reasons:
        lines += ["", *(f"- {_md(reason)}" for reason in summary.verdict.reasons)]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- HTML


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _format(value: object, kind: str) -> str:
    if isinstance(value, str):
        return _e(value)
    number = _number(value)
    if number is None:
        return "—"
    if kind == "pct":
        return f"{_unsigned_zero(number, 4):.2%}"
    if kind in ("ccy", "bps"):
        return f"{_unsigned_zero(number, 2):,.2f}"
    if kind == "int":
        return f"{number:,.0f}"
    return f"{_unsigned_zero(number, 3):.3f}"


def _table(frame: pd.DataFrame, kinds: Callable[[str], str], *, index: bool = False,
           row_kind: Callable[[str], str] | None = None, row_label: Callable[[str], str] | None = None,
           highlight: Iterable[bool] | None = None, css: str = "") -> str:
    """An HTML table of ``frame``, every header and cell escaped; ``kinds`` gives a column's unit
    kind ("pct", "ccy", "int", "bps", "ratio", "text"), ``row_kind`` a row's (for metric rows)."""
    flags = list(highlight) if highlight is not None else [False] * len(frame)
    head = "".join(f"<th>{_e(c)}</th>" for c in ([""] if index else []) + [str(c) for c in frame.columns])
    body = []
    for flag, (key, row) in zip(flags, frame.iterrows(), strict=True):
        cells = []
        if index:
            cells.append(f'<th scope="row">{_e(row_label(key) if row_label else key)}</th>')
        for column in frame.columns:
            kind = row_kind(key) if row_kind else kinds(str(column))
            value = row[column]
            cls = ' class="text"' if isinstance(value, str) else ""
            cells.append(f"<td{cls}>{_format(value, kind)}</td>")
        body.append(f"<tr{' class=flag' if flag else ''}>{''.join(cells)}</tr>")
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _fold_html(summary: WalkForwardSummary, currency: str) -> str:
    """The per-fold table with grouped headers: the policy seeds' and the baselines' Sharpe
    ratios, then the primary seed's return, drawdown and costs."""
    frame = fold_table(summary, currency=currency)
    seeds = [c for c in frame.columns if c.startswith("sharpe seed ")]
    baselines = [c for c in frame.columns if c.startswith("sharpe ") and c not in seeds]
    policy = ["total return", "max drawdown", f"commission ({currency})", f"slippage ({currency})"]
    kinds = {"total return": "pct", "max drawdown": "pct", f"commission ({currency})": "ccy",
             f"slippage ({currency})": "ccy"}

    def seed_label(column: str) -> str:
        rest = column[len("sharpe seed "):]
        return f"seed {rest} (primary)" if rest == str(summary.primary_seed) else f"seed {rest}"

    labels = {c: seed_label(c) for c in seeds} | {c: c[len("sharpe "):] for c in baselines} | {
        "total return": "total return (%)", "max drawdown": "max drawdown (%)"}
    top = ('<tr><th rowspan="2">fold</th><th rowspan="2" class="text">test period</th><th rowspan="2">test bars</th>'
           f'<th colspan="{len(seeds)}" class="group">policy Sharpe ratio (annualised)</th>'
           f'<th colspan="{len(baselines)}" class="group">baseline Sharpe ratio (annualised)</th>'
           f'<th colspan="{len(policy)}" class="group">{_e(_primary(summary))}</th></tr>')
    # long names may break after an underscore
    second = "<tr>" + "".join(f"<th>{_e(labels.get(c, c)).replace('_', '_<wbr>')}</th>"
                              for c in seeds + baselines + policy) + "</tr>"
    body = []
    for _, row in frame.iterrows():
        short = str(row["fold"]).split("_")[0]
        cells = [f'<td class="text" title="{_e(row["fold"])}">{_e(short)}</td>',
                 f'<td class="text">{_e(row["test start"])} – {_e(row["test end"])}</td>',
                 f'<td>{_format(row["test bars"], "int")}</td>']
        cells += [f"<td>{_format(row[c], kinds.get(c, 'ratio'))}</td>" for c in seeds + baselines + policy]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table class="folds"><thead>{top}{second}</thead><tbody>{"".join(body)}</tbody></table>'


def _figure_html(figure: go.Figure, name: str) -> str:
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"figure-{name}",
                          config={"displaylogo": False, "responsive": True})


def _lineage(summary: WalkForwardSummary, mlflow_url: str | None, code: str) -> str:
    plan = summary.plan
    seeds = ", ".join(f"{s} (primary)" if s == summary.primary_seed else str(s) for s in plan.seeds)
    first, last = summary.folds[0].test_period[0], summary.folds[-1].test_period[1]
    rows = [
        ("walk-forward", plan.name),
        ("plan key", plan.plan_key),
        ("config hash", plan.config_hash),
        ("feature-set hash", plan.feature_set_hash),
        ("data snapshot hash", plan.data_snapshot_hash),
        ("watchlist hash", plan.watchlist_hash),
        ("code version", code),
        ("symbols", ", ".join(plan.symbols)),
        ("seeds", seeds),
        ("folds", f"{len(summary.folds)}, tested {first} to {last}"),
    ]
    for fold in summary.folds:
        ids = ", ".join(f"seed {s}: {fold.policy_ids[s]}" for s in _seed_order(summary) if s in fold.policy_ids)
        if ids:
            rows.append((f"policies {fold.fold_key}", ids))
    cells = "".join(f'<tr><th scope="row">{_e(k)}</th><td class="text"><code>{_e(v)}</code></td></tr>' for k, v in rows)
    url = mlflow_url or plan.mlflow_run_url
    if url:
        link = f'<a href="{_e(url)}">{_e(url)}</a>' if url.startswith(("http://", "https://")) else _e(url)
        cells += f'<tr><th scope="row">MLflow run</th><td class="text">{link}</td></tr>'
    return f'<table class="lineage">{cells}</table>'


def _verdict(summary: WalkForwardSummary) -> str:
    verdict = summary.verdict
    status = "passed" if verdict.passed else "failed"
    items = "".join(
        f'<li class="{"ok" if c.passed else "fail"}"><span class="mark">{"✓ pass" if c.passed else "✗ fail"}</span> '
        f"<b>{_e(c.name)}</b>: {_e(c.detail)}</li>"
        for c in verdict.checks
    )
    headline = ("The policy passed every check of the promotion gate." if verdict.passed else
                f"The policy failed {len(verdict.reasons)} of {len(verdict.checks)} checks of the promotion gate.")
    return (f'<div class="verdict {status}"><p class="headline">Gate {status.upper()}. {_e(headline)}</p>'
            f"<ul>{items}</ul></div>")


def _deflated(summary: WalkForwardSummary) -> str:
    d = summary.deflated
    periods = periods_per_year(summary)
    if _number(d.get("dsr")) is None:
        reason = d.get("reason") or "too few out-of-sample returns"
        return f'<p class="note">Deflated Sharpe ratio undefined: {_e(reason)}.</p>'
    per_period = _number(d.get("sharpe_per_period"))
    rows = [
        ("deflated Sharpe ratio (DSR, probability)", _pct(d.get("dsr"))),
        ("probabilistic Sharpe ratio (PSR vs 0, probability)", _pct(d.get("psr"))),
        ("policy Sharpe ratio (annualised)", _fixed(per_period * math.sqrt(periods) if per_period is not None else None)),
        ("SR0: best Sharpe expected from luck alone (annualised)", _fixed(d.get("sr0_annualised"))),
        ("trials (seeds + tuning trials)", str(summary.n_trials)),
        ("observations (out-of-sample returns, bars)", _fixed(d.get("observations"), 0)),
    ]
    cells = "".join(f'<tr><th scope="row">{_e(k)}</th><td>{_e(v)}</td></tr>' for k, v in rows)
    explain = (f"The DSR is the probability that the policy's true Sharpe ratio beats SR0, the Sharpe ratio the best "
               f"of {summary.n_trials} trials of pure luck would be expected to show, given how many returns there are "
               f"and how skewed and fat-tailed they are; near 100% means the result is unlikely to be luck.")
    return f'<table class="kv">{cells}</table><p class="note">{_e(explain)}</p>'


def _metrics_section(summary: WalkForwardSummary) -> str:
    table = metrics_table(summary)
    return _table(table, lambda c: "ratio", index=True, row_kind=lambda m: METRIC_ROWS[m][1],
                  row_label=lambda m: METRIC_ROWS[m][0], css="metrics") + (
        f'<p class="note">Over the stitched out-of-sample curve (every fold\'s test bars, compounded). '
        f"Policy = {_e(_primary(summary))}, the seed with the median Sharpe ratio; other seeds are in the seed spread "
        "below. Turnover of the policy: the folds' mean, weighted by bars.</p>")


def _seed_spread(summary: WalkForwardSummary) -> str:
    rows = {}
    for metric in SPREAD_METRICS:
        spread = summary.seed_spread.get(metric)
        if spread and spread.get("n"):
            rows[metric] = {stat: spread.get(stat) for stat in ("n", "mean", "std", "min", "median", "max")}
    if not rows:
        return '<p class="note">No seed spread (no metric defined for any seed).</p>'
    frame = pd.DataFrame.from_dict(rows, orient="index")
    kind = {m: METRIC_ROWS.get(m, (m, "ratio"))[1] for m in rows}
    body = []
    for metric, row in frame.iterrows():
        cells = "".join(f"<td>{_format(row[s], 'int' if s == 'n' else kind[metric])}</td>" for s in frame.columns)
        body.append(f'<tr><th scope="row">{_e(METRIC_ROWS.get(metric, (metric,))[0])}</th>{cells}</tr>')
    head = "".join(f"<th>{_e(c)}</th>" for c in ["", "seeds", *frame.columns[1:]])
    values = [v for v in (summary.metrics.get(policy_name(s), {}).get("sharpe") for s in summary.plan.seeds)]
    per_seed = ", ".join(f"seed {s}: {_fixed(v)}" for s, v in zip(summary.plan.seeds, values, strict=True))
    return (f'<table class="metrics"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            f'<p class="note">Stitched Sharpe ratio per seed: {_e(per_seed)}. Std is over seeds (sample).</p>')


def _drift(drift: pd.DataFrame | None) -> str:
    if drift is None:
        return '<p class="note">No drift baseline: feature drift was not measured for this evaluation.</p>'
    if drift.empty:
        return '<p class="note">The drift report has no features.</p>'
    columns = [c for c in ("feature", "psi", "ks", "drift", "baseline_count", "new_count", "baseline_mean", "new_mean")
               if c in drift.columns]
    frame = drift[columns].copy()
    if "psi" in frame:
        frame = frame.sort_values("psi", ascending=False, na_position="last")
    flags = frame["drift"].fillna(False).astype(bool).tolist() if "drift" in frame else [False] * len(frame)
    if "drift" in frame:
        frame["drift"] = ["drift" if f else "no" for f in flags]
    headers = {"feature": "feature", "psi": "PSI", "ks": "KS (max CDF gap)", "drift": "drift flag",
               "baseline_count": "training values (count)", "new_count": "test values (count)",
               "baseline_mean": "training mean", "new_mean": "test mean"}
    frame = frame.rename(columns=headers)
    kinds = {"training values (count)": "int", "test values (count)": "int"}
    drifted = sum(flags)
    note = (f"{drifted} of {len(flags)} features drifted (PSI above 0.2 or KS above 0.1 by default). "
            "PSI and KS compare the test bars' feature values with the policy's training baseline; both are unitless.")
    return _table(frame, lambda c: kinds.get(c, "ratio"), highlight=flags, css="drift") + f'<p class="note">{_e(note)}</p>'


STYLE = """
:root{--ink:#1d2330;--muted:#5b6475;--rule:#e3e6ec;--ok:#1b7a3a;--okbg:#eaf6ee;--bad:#b3261e;--badbg:#fdeceb}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);
margin:0 auto;padding:1.5em 2em 4em;max-width:1360px;line-height:1.45;font-size:15px}
h1{font-size:1.6em;margin:.2em 0 .3em}h2{font-size:1.25em;margin:2em 0 .6em;padding-top:.4em;border-top:2px solid var(--rule)}
nav{font-size:.85em;color:var(--muted);margin:.4em 0 1em}nav a{color:var(--muted);margin-right:.9em;white-space:nowrap}
table{border-collapse:collapse;margin:.4em 0;font-variant-numeric:tabular-nums;font-size:.92em}
th,td{padding:4px 10px;border-bottom:1px solid var(--rule);text-align:right;vertical-align:top}
th{text-align:left;font-weight:600}thead th{text-align:right;background:#f6f7f9;border-bottom:2px solid #cfd4dc}
thead th:first-child,th.text{text-align:left}td.text{text-align:left}
.tablewrap{overflow-x:auto}
table.lineage td,table.lineage th{text-align:left}table.lineage code{font-size:.95em;word-break:break-all}
tr.flag td{background:var(--badbg)}
.verdict{border:2px solid;border-radius:6px;padding:.6em 1.1em;margin:.5em 0}
.verdict.passed{border-color:var(--ok);background:var(--okbg)}.verdict.failed{border-color:var(--bad);background:var(--badbg)}
.verdict .headline{font-weight:700;font-size:1.1em;margin:.2em 0 .4em}
.verdict.passed .headline{color:var(--ok)}.verdict.failed .headline{color:var(--bad)}
.verdict ul{margin:.2em 0;padding-left:0;list-style:none}.verdict li{margin:.25em 0}
.mark{display:inline-block;min-width:4.2em;font-weight:700;font-size:.85em}
li.ok .mark{color:var(--ok)}li.fail .mark{color:var(--bad)}
.note{color:var(--muted);font-size:.9em;max-width:70em}
.promotion{font-weight:600;font-size:1.05em}
.badge{font-size:.6em;vertical-align:middle;padding:.15em .6em;border-radius:1em;color:#fff;font-weight:600}
.badge.passed{background:var(--ok)}.badge.failed{background:var(--bad)}
table.folds{font-size:.84em}table.folds th,table.folds td{padding:3px 6px}
table.folds th.group{text-align:center;border-bottom:1px solid #cfd4dc}table.folds td{white-space:nowrap}
"""


def _section(title: str, body: str) -> str:
    anchor = title.lower().replace(" ", "-")
    return f'<section id="{_e(anchor)}"><h2>{_e(title)}</h2>{body}</section>'


def render_walk_forward_report(
    summary: WalkForwardSummary,
    *,
    drift: pd.DataFrame | None = None,
    promotion: str | None = None,
    mlflow_url: str | None = None,
    currency: str = CURRENCY,
    code: str | None = None,
) -> str:
    """The report's HTML text (``write_walk_forward_report`` writes it)."""
    if code is None:
        from tt_platform.training.checkpoint import code_version

        code = code_version()
    figures = report_figures(summary, currency=currency)
    plan = summary.plan
    window = rolling_window(summary)
    titles = [t for t in SECTIONS if t != "Promotion" or promotion is not None]
    nav = " ".join(f'<a href="#{_e(t.lower().replace(" ", "-"))}">{_e(t)}</a>' for t in titles[1:])
    status = "passed" if summary.verdict.passed else "failed"
    sections = [
        _section("Lineage", _lineage(summary, mlflow_url, code)),
        _section("Gate verdict", _verdict(summary)),
        _section("Deflated Sharpe ratio", _deflated(summary)),
        _section("Walk-forward metrics", f'<div class="tablewrap">{_metrics_section(summary)}</div>'),
        _section("Equity and drawdown", _figure_html(figures["equity_drawdown"], "equity_drawdown") +
                 f'<p class="note">Each fold starts afresh in cash; its curve is rescaled to start where the previous '
                 f"fold ended. Bold: {_e(_primary(summary))}; light blue: the other seeds. Click a legend entry to "
                 "hide a curve in both panels.</p>"),
        _section("Rolling Sharpe and volatility", _figure_html(figures["rolling"], "rolling") +
                 f'<p class="note">Window: {window} bars, across fold boundaries; annualised with '
                 f"{periods_per_year(summary):.0f} bars per year.</p>"),
        _section("Per-fold results",
                 f'<div class="tablewrap">{_fold_html(summary, currency)}</div>'
                 f'<p class="note">Out of sample, on each fold\'s test bars only. Folds by index; their partition keys '
                 "and policies are listed under Lineage.</p>"
                 + _figure_html(figures["folds"], "folds")),
        _section("Allocation", _figure_html(figures["allocation"], "allocation")),
        _section("Exposure and turnover", _figure_html(figures["exposure_turnover"], "exposure_turnover") +
                 '<p class="note">Turnover here is the change of target weights between decision bars (each fold starts '
                 "from cash); the backtester's booked turnover also trades the drift between bars.</p>"),
        _section("Costs", f'<div class="tablewrap">{_table(_cost_rows(summary, currency), _cost_kind, css="costs")}</div>'
                 f'<p class="note">{_e(_primary(summary))}, in {_e(currency)}. Commission and slippage are split from '
                 "the booked cost by the configured bps rates. Traded value is estimated as mean turnover × bars × "
                 "mean equity, so bps of traded value are approximate.</p>"),
        _section("Seed spread", f'<div class="tablewrap">{_seed_spread(summary)}</div>'),
        _section("Feature drift", f'<div class="tablewrap">{_drift(drift)}</div>'),
    ]
    if promotion is not None:
        sections.append(_section("Promotion", f'<p class="promotion">{_e(promotion)}</p>'))
    title = f"Walk-forward {plan.name} ({plan.plan_key})"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{STYLE}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<h1>Walk-forward evaluation: {_e(plan.name)} <span class="badge {status}">gate {status}</span></h1>
<p class="note">{len(summary.folds)} folds × {len(plan.seeds)} seeds on {_e(", ".join(plan.symbols))}; out of sample
from {_e(summary.folds[0].test_period[0])} to {_e(summary.folds[-1].test_period[1])}.</p>
<nav>{nav}</nav>
{"".join(sections)}
</body></html>
"""


def _cost_kind(column: str) -> str:
    if column.startswith("cost (bps"):
        return "bps"
    return "ccy"


def write_walk_forward_report(
    summary: WalkForwardSummary,
    path: Path,
    *,
    drift: pd.DataFrame | None = None,
    promotion: str | None = None,
    mlflow_url: str | None = None,
    currency: str = CURRENCY,
) -> Path:
    """Write the walk-forward report to ``path`` atomically (a temporary file in the same folder,
    then a rename: a reader never sees half a report, and a crash leaves no file behind)."""
    path = Path(path)
    text = render_walk_forward_report(summary, drift=drift, promotion=promotion, mlflow_url=mlflow_url,
                                      currency=currency)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a private temporary name per process, so two writers never share one half-written file
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
