"""The walk-forward report: self-contained HTML with every section, consistent colours, tables
that match the summary, a markdown summary for Dagster, written atomically."""

from __future__ import annotations

import dataclasses
import html
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from tt_platform.config.run_config import RunConfig
from tt_platform.evaluation.folds import plan_folds
from tt_platform.evaluation.gate import GateCheck, GateVerdict
from tt_platform.evaluation.metrics import trading_metrics
from tt_platform.evaluation.walk_forward_report import (
    SECTIONS,
    curve_colours,
    fold_table,
    markdown_summary,
    metrics_table,
    policy_name,
    report_figures,
    write_walk_forward_report,
)
from tt_platform.pipeline.walk_forward import (
    BASELINES,
    FoldEvaluation,
    WalkForwardPlan,
    summarize,
)
from tt_platform_tests.pipeline.test_walk_forward import _config as wf_config
from tt_platform_tests.pipeline.test_walk_forward import _run as run_walk_forward
from tt_platform_tests.pipeline.test_walk_forward import stored  # noqa: F401 - fixture

SYMBOLS = ("AAA", "B<script>x</script>")
SEEDS = (0, 1, 2)


def _config() -> RunConfig:
    return RunConfig().with_overrides(**{
        "name": "wf <b>unit</b>",
        "env.periods_per_year": 252,
        "evaluation.walk_forward.scheme": "expanding",
        "evaluation.walk_forward.train_bars": 100,
        "evaluation.walk_forward.min_train_bars": 50,
        "evaluation.walk_forward.test_bars": 60,
        "evaluation.walk_forward.purge_bars": 5,
        "evaluation.walk_forward.max_folds": 3,
        "evaluation.walk_forward.seeds": list(SEEDS),
    })


def _curve(index: pd.DatetimeIndex, drift: float, vol: float, rng: np.random.Generator) -> pd.Series:
    returns = rng.normal(drift, vol, len(index) - 1)
    return pd.Series(100_000.0 * np.cumprod(np.concatenate(([1.0], 1.0 + returns))), index=index)


def _fold(plan: WalkForwardPlan, fold, rng: np.random.Generator) -> FoldEvaluation:
    stamps = pd.bdate_range("2020-01-01", periods=fold.test.last + 1, tz="UTC")[fold.test.first:]
    curves, metrics, weights, costs = {}, {}, {}, {}
    for seed in plan.seeds:
        # long-short weights so the heatmap is centred at 0; a poor policy so the gate fails
        w = pd.DataFrame(rng.uniform(-0.4, 0.6, (len(stamps) - 1, len(SYMBOLS))), index=stamps[:-1], columns=SYMBOLS)
        curves[seed] = _curve(stamps, -0.0005 + 0.0002 * seed, 0.01, rng)
        turnover = w.diff().abs().sum(axis=1).fillna(w.abs().sum(axis=1))
        metrics[seed] = trading_metrics(curves[seed], w.abs().sum(axis=1), turnover, periods_per_year=252)
        weights[seed] = w
        commission = 12.5 + seed + fold.index
        costs[seed] = {"commission": commission, "slippage": 2 * commission, "total": 3 * commission}
    baselines = {name: _curve(stamps, 0.0008, 0.012, rng) for name in BASELINES if name != "cash"}
    baselines["cash"] = pd.Series(100_000.0, index=stamps)
    return FoldEvaluation(
        plan_key=plan.plan_key,
        fold_key=fold.partition_key,
        test_period=(str(stamps[0].date()), str(stamps[-1].date())),
        policy_curves=curves,
        baseline_curves=baselines,
        policy_metrics=metrics,
        baseline_metrics={n: trading_metrics(c, periods_per_year=252) for n, c in baselines.items()},
        weights=weights,
        costs=costs,
        policy_ids={seed: f"ppo-{fold.index}-{seed}" for seed in plan.seeds},
    )


@pytest.fixture(scope="module")
def summary():
    config = _config()
    stamps = pd.bdate_range("2020-01-01", periods=330, tz="UTC")
    plan = WalkForwardPlan(
        plan_key="abc123def456", name=config.name, config_hash="cfg1", feature_set_hash="feat1",
        data_snapshot_hash="data1", symbols=SYMBOLS, watchlist_hash="wl1",
        folds=tuple(plan_folds(stamps, config.evaluation.walk_forward)), seeds=SEEDS,
        mlflow_run_url="http://mlflow.local/#/runs/1?a=1&b=2",
    )
    rng = np.random.default_rng(7)
    return summarize(plan, [_fold(plan, f, rng) for f in plan.folds], config)


def _body(text: str) -> str:
    return text.split("</head>", 1)[1]


def test_the_report_is_self_contained_has_every_section_in_order_and_escapes_data(summary, tmp_path):
    drift = pd.DataFrame({"feature": ["ret_1<i>", "vol_20"], "psi": [0.35, 0.01], "ks": [0.2, 0.03],
                          "drift": [True, False]})
    path = write_walk_forward_report(summary, tmp_path / "out" / "wf.html", drift=drift,
                                     promotion="not promoted: <gate failed>")
    text = path.read_text(encoding="utf-8")
    assert 'src="http' not in text and "<link" not in text and "@import" not in text
    assert text.count(get_plotlyjs()[:2000]) == 1 and text.count("plotly.js v") == 1
    body = _body(text)
    positions = [body.index(f"<h2>{title}</h2>") for title in SECTIONS]
    assert positions == sorted(positions)
    # strings from data are escaped
    assert "<b>unit</b>" not in body and "&lt;b&gt;unit&lt;/b&gt;" in body
    assert "<script>x</script>" not in body and "B&lt;script&gt;x&lt;/script&gt;" in body
    assert "ret_1<i>" not in body and "ret_1&lt;i&gt;" in body
    assert "&lt;gate failed&gt;" in body
    assert 'href="http://mlflow.local/#/runs/1?a=1&amp;b=2"' in body
    for value in ("abc123def456", "cfg1", "feat1", "data1"):
        assert value in body
    assert ">nan<" not in body and "None" not in body
    assert not list(path.parent.glob("*.tmp")) and not list(path.parent.glob(".*"))


def test_a_failed_gate_shows_each_check_and_its_reasons(summary, tmp_path):
    assert not summary.verdict.passed and summary.verdict.reasons
    body = _body(write_walk_forward_report(summary, tmp_path / "wf.html").read_text())
    assert 'class="verdict failed"' in body and "Gate FAILED" in body
    for check in summary.verdict.checks:
        assert html.escape(check.detail) in body
    assert "No drift baseline" in body and "<h2>Promotion</h2>" not in body

    passed = dataclasses.replace(summary, verdict=GateVerdict(True, (GateCheck("deflated sharpe", True, "ok"),)))
    body = _body(write_walk_forward_report(passed, tmp_path / "wf.html").read_text())
    assert 'class="verdict passed"' in body and "Gate PASSED" in body
    assert not list(tmp_path.glob("*.tmp"))


def test_one_colour_per_curve_name_in_every_panel(summary):
    figures = report_figures(summary)
    assert set(figures) == {"equity_drawdown", "rolling", "allocation", "exposure_turnover", "folds"}
    colours = curve_colours(summary)
    for key in ("equity_drawdown", "rolling"):
        panels: dict[str, set[str]] = defaultdict(set)
        for trace in figures[key].data:
            assert trace.line.color == colours[trace.name]
            panels[trace.name].add(trace.yaxis)
        # every curve is drawn in both panels, and named in the legend once
        assert all(axes == {"y", "y2"} for axes in panels.values())
        assert sum(bool(t.showlegend) for t in figures[key].data) == len(panels)
    assert set(t.name for t in figures["equity_drawdown"].data) == set(summary.stitched)
    for trace in figures["folds"].data:
        assert trace.marker.color == colours[trace.name]
    assert len(set(colours.values())) == len(colours)
    heatmap = figures["allocation"].data[0]
    assert heatmap.zmid == 0 and list(heatmap.y) == list(SYMBOLS)  # shorts: centred at 0


def test_the_fold_table_and_metrics_table_hold_the_summary_numbers(summary, tmp_path):
    table = fold_table(summary)
    primary = summary.primary_seed
    assert list(table["fold"]) == [f.fold_key for f in summary.folds]
    for (_, row), fold in zip(table.iterrows(), summary.folds, strict=True):
        assert (row["test start"], row["test end"]) == fold.test_period
        for seed in SEEDS:
            assert row[f"sharpe seed {seed}"] == pytest.approx(fold.policy_metrics[seed]["sharpe"])
        for name in BASELINES:
            expected = fold.baseline_metrics[name]["sharpe"]
            assert row[f"sharpe {name}"] == (pytest.approx(expected) if expected is not None else None)
        assert row["total return"] == pytest.approx(fold.policy_metrics[primary]["total_return"])
        assert row["max drawdown"] == pytest.approx(fold.policy_metrics[primary]["max_drawdown"])
        assert row["commission (USD)"] == fold.costs[primary]["commission"]
        assert row["slippage (USD)"] == fold.costs[primary]["slippage"]
    metrics = metrics_table(summary)
    assert list(metrics.columns) == [policy_name(primary), *BASELINES]
    assert metrics.loc["sharpe", "buy_and_hold"] == pytest.approx(summary.metrics["buy_and_hold"]["sharpe"])
    assert metrics.loc["max_drawdown", policy_name(primary)] == pytest.approx(
        summary.metrics[policy_name(primary)]["max_drawdown"])
    # the HTML shows them formatted: percentages with a % sign, currency with two decimals
    body = _body(write_walk_forward_report(summary, tmp_path / "wf.html").read_text())
    assert f"{summary.folds[0].costs[primary]['commission']:,.2f}" in body
    assert f"{summary.metrics[policy_name(primary)]['max_drawdown']:.2%}" in body
    assert "commission (USD)" in body and "max drawdown (%)" in body


def test_the_markdown_summary_has_a_row_per_baseline_and_the_verdict(summary):
    text = markdown_summary(summary)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    for name in [policy_name(summary.primary_seed), *BASELINES]:
        assert sum(row.startswith(f"| {name} |") for row in rows) == 1
    assert "FAILED" in text and str(summary.n_trials) in text
    assert summary.verdict.reasons[0] in text
    assert "nan" not in text and "None" not in text
    assert "| deflated Sharpe (DSR) | trials | gate |" in text


# ----------------------------------------------------------------------------- integration

def test_a_report_of_a_real_walk_forward(stored, tmp_path):
    from tt_platform.pipeline.evaluation import feature_drift
    from tt_platform.pipeline.training import load_market
    from tt_platform.settings import get_settings

    config = wf_config()
    plan, _, result = run_walk_forward(stored, config)
    last = result.folds[-1]
    drift = feature_drift(get_settings(), last.policy_ids[result.primary_seed],
                          load_market(stored, config).matrix, pd.Timestamp(plan.folds[-1].test.start))
    path = write_walk_forward_report(result, tmp_path / "reports" / f"wf-{plan.plan_key}.html", drift=drift,
                                     promotion="not promoted (integration test)")

    text = path.read_text(encoding="utf-8")
    body = _body(text)
    assert 'src="http' not in text and "<link" not in text
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in body
    for value in (plan.plan_key, plan.config_hash, plan.feature_set_hash, plan.data_snapshot_hash, *plan.symbols):
        assert value in body
    if not result.verdict.passed:
        assert all(html.escape(reason) in body for reason in result.verdict.reasons)
    assert ("No drift baseline" in body) == (drift is None)
    table = fold_table(result)
    assert len(table) == len(plan.folds) == 3
    for (_, row), fold in zip(table.iterrows(), result.folds, strict=True):
        costs = fold.costs[result.primary_seed]
        assert row["commission (USD)"] == pytest.approx(costs["commission"])
        assert f"{costs['commission']:,.2f}" in body
    markdown = markdown_summary(result)
    assert all(f"| {name} |" in markdown for name in BASELINES)
    assert not list(path.parent.glob("*.tmp"))
