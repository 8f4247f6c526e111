"""The one place the MLflow alias ``champion`` is set: after a walk-forward whose gate passed,
for a policy whose out-of-sample Sharpe beats the current champion's.

The candidate is the last fold's policy of the seed the gate judged: trained on the most recent
data the walk-forward allows, and judged out of sample like every fold before it. The model
version keeps the numbers it was promoted on (tags), so the next candidate is compared with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.exceptions import MlflowException

from tt_platform.pipeline.walk_forward import WalkForwardSummary
from tt_platform.training.tracking import MlflowTracker

CHAMPION = "champion"
PROMOTED_SHARPE_TAG = "tt.oos_sharpe"
PROMOTED_DSR_TAG = "tt.deflated_sharpe"
PROMOTED_PLAN_TAG = "tt.walk_forward_plan"
PROMOTED_POLICY_TAG = "tt.policy_id"


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    message: str  # one sentence: what happened and why
    policy_id: str | None = None
    model_version: str | None = None


def candidate_policy(summary: WalkForwardSummary) -> tuple[str, str | None]:
    """(policy id, MLflow training run id) of the last fold's policy of the judged seed."""
    last = summary.folds[-1]
    seed = summary.primary_seed
    return last.policy_ids[seed], last.mlflow_run_ids.get(seed)


def promote(tracker: MlflowTracker | None, summary: WalkForwardSummary, *, enabled: bool = True) -> Promotion:
    """Give the candidate the alias when the gate passed and it beats the champion; otherwise
    say which condition kept the champion where it is."""
    policy_id, training_run_id = candidate_policy(summary)
    if not summary.verdict.passed:
        return Promotion(False, f"not promoted: the gate {summary.verdict.summary()}", policy_id)
    if not enabled:
        return Promotion(False, "not promoted: evaluation.gate.promote is false", policy_id)
    if tracker is None or not training_run_id:
        return Promotion(False, "not promoted: the candidate has no MLflow training run to register", policy_id)
    version = _registered_version(tracker, training_run_id)
    if version is None:
        return Promotion(False, f"not promoted: MLflow run {training_run_id} registered no model version", policy_id)
    sharpe = summary.metrics[f"policy (seed {summary.primary_seed})"].get("sharpe")
    champion = _champion(tracker)
    if champion is not None:
        held = _float(champion.tags.get(PROMOTED_SHARPE_TAG))
        if champion.version == version:
            return Promotion(False, f"already champion: version {version} ({policy_id})", policy_id, version)
        if held is not None and (sharpe is None or sharpe <= held):
            return Promotion(
                False,
                f"not promoted: champion version {champion.version} holds out-of-sample Sharpe {held:.3f}, "
                f"the candidate {_show(sharpe)}",
                policy_id, version,
            )
    name = tracker.registered_model_name
    client = tracker.client
    for key, value in {
        PROMOTED_SHARPE_TAG: _show(sharpe),
        PROMOTED_DSR_TAG: _show(summary.deflated.get("dsr")),
        PROMOTED_PLAN_TAG: summary.plan.plan_key,
        PROMOTED_POLICY_TAG: policy_id,
    }.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, CHAMPION, version)
    replaced = f", replacing version {champion.version}" if champion is not None else ""
    return Promotion(True, f"promoted: {policy_id} (model version {version}) is champion{replaced}", policy_id, version)


def _registered_version(tracker: MlflowTracker, run_id: str) -> str | None:
    versions = tracker.client.search_model_versions(f"run_id = '{run_id}'")
    named = [v for v in versions if v.name == tracker.registered_model_name]
    return str(max(int(v.version) for v in named)) if named else None


def _champion(tracker: MlflowTracker):
    try:
        return tracker.client.get_model_version_by_alias(tracker.registered_model_name, CHAMPION)
    except MlflowException:
        return None


def _float(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _show(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.6f}"
