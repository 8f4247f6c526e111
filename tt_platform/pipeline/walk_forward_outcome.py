"""The end of a walk-forward: summarize the folds, write the summary JSON and the HTML report,
tell MLflow the out-of-sample story on the walk-forward's run, and let the gate decide on
promotion."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from tt_platform.config.run_config import RunConfig
from tt_platform.evaluation.walk_forward_report import markdown_summary, report_figures, write_walk_forward_report
from tt_platform.pipeline.evaluation import feature_drift
from tt_platform.pipeline.promotion import Promotion, promote
from tt_platform.pipeline.training import load_market
from tt_platform.pipeline.tuning import tuning_trials_for
from tt_platform.pipeline.walk_forward import (
    GATE_BASELINES,
    OOS_METRICS,
    FoldEvaluation,
    WalkForwardPlan,
    WalkForwardSummary,
    summarize,
    write_summary,
)
from tt_platform.settings import PlatformSettings
from tt_platform.training.tracking import MlflowTracker, TrackedRun

REPORT_ARTIFACT_DIR = "report"


@dataclass(frozen=True)
class WalkForwardOutcome:
    summary: WalkForwardSummary
    summary_path: Path
    report_path: Path
    markdown: str
    promotion: Promotion
    report_url: str | None = None


def report_walk_forward(
    engine: Engine,
    config: RunConfig,
    settings: PlatformSettings,
    plan: WalkForwardPlan,
    folds: Sequence[FoldEvaluation],
    *,
    tracker: MlflowTracker | None,
) -> WalkForwardOutcome:
    # the trials `tt tune` scored to choose this config's training values count for the deflated Sharpe
    summary = summarize(plan, folds, config, extra_trials=tuning_trials_for(engine, config))
    summary_path = write_summary(summary, settings.reports_dir)
    promotion = promote(tracker, summary, enabled=config.evaluation.gate.promote)
    drift = _last_fold_drift(engine, config, settings, plan, summary)
    report_path = write_walk_forward_report(
        summary, settings.reports_dir / f"walk-forward-{plan.plan_key}.html",
        drift=drift, promotion=promotion.message, mlflow_url=plan.mlflow_run_url,
    )
    markdown = markdown_summary(summary) + f"\n\n**Promotion:** {promotion.message}\n"
    report_url = None
    if tracker is not None and plan.mlflow_run_id:
        report_url = _log_to_parent_run(tracker, plan, summary, promotion, report_path, summary_path)
    return WalkForwardOutcome(summary, summary_path, report_path, markdown, promotion, report_url)


def _last_fold_drift(engine, config, settings, plan: WalkForwardPlan, summary: WalkForwardSummary):
    """Feature drift of the candidate (the last fold's judged policy) over its test slice."""
    last_fold = plan.folds[-1]
    policy_id = summary.folds[-1].policy_ids[summary.primary_seed]
    loaded = load_market(engine, config, symbols=list(plan.symbols), watchlist_hash=plan.watchlist_hash)
    return feature_drift(settings, policy_id, loaded.matrix.slice_time(None, last_fold.test.end), last_fold.test.start)


def oos_metrics(summary: WalkForwardSummary) -> dict[str, float]:
    """The walk-forward's out-of-sample numbers under the names MLflow shows."""
    policy = summary.metrics[f"policy (seed {summary.primary_seed})"]
    values: dict[str, float | None] = {f"oos_{k}": policy.get(k) for k in OOS_METRICS}
    for name in GATE_BASELINES + ("momentum",):
        values[f"oos_{name}_sharpe"] = summary.metrics[name].get("sharpe")
        values[f"oos_{name}_total_return"] = summary.metrics[name].get("total_return")
    values["oos_deflated_sharpe"] = summary.deflated.get("dsr")
    values["oos_probabilistic_sharpe"] = summary.deflated.get("psr")
    values["oos_expected_max_sharpe"] = summary.deflated.get("sr0_annualised")
    spread = summary.seed_spread.get("sharpe", {})
    values["oos_sharpe_seed_std"] = spread.get("std")
    values["n_trials"] = float(summary.n_trials)
    values["gate_passed"] = 1.0 if summary.verdict.passed else 0.0
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)}


def _log_to_parent_run(tracker, plan, summary, promotion, report_path: Path, summary_path: Path) -> str:
    run = TrackedRun(tracker, plan.mlflow_run_id, tracker.experiment_id)
    run.log_metrics(oos_metrics(summary))
    run.set_tags({
        "tt.gate": "passed" if summary.verdict.passed else "failed",
        "tt.gate_reasons": "; ".join(summary.verdict.reasons)[:4900] or "none",
        "tt.promotion": promotion.message[:4900],
        "mlflow.note.content": _note(summary, promotion),
    })
    run.log_artifact(report_path, REPORT_ARTIFACT_DIR)
    run.log_artifact(summary_path, REPORT_ARTIFACT_DIR)
    with tempfile.TemporaryDirectory() as tmp:
        for name, figure in report_figures(summary).items():
            path = Path(tmp) / f"{name}.json"
            path.write_text(figure.to_json())
            run.log_artifact(path, "figures")
    return f"{run.ui_url}/artifacts"


def _note(summary: WalkForwardSummary, promotion: Promotion) -> str:
    """The description MLflow shows on the run page."""
    return f"Walk-forward out of sample, {len(summary.folds)} folds x {len(summary.plan.seeds)} seeds. " \
           f"Gate {summary.verdict.summary()}. {promotion.message}."
