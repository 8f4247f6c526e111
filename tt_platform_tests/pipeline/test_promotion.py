"""The champion alias: set only after a passing gate, only for a policy better than the holder,
and only by the promotion module."""

import re
from pathlib import Path

import pandas as pd
import pytest

from tt_platform.evaluation.folds import BarRange, Fold
from tt_platform.evaluation.gate import judge
from tt_platform.pipeline.promotion import CHAMPION, PROMOTED_SHARPE_TAG, promote
from tt_platform.pipeline.walk_forward import FoldEvaluation, WalkForwardPlan, WalkForwardSummary
from tt_platform.training.tracking import MlflowTracker

PACKAGE = Path(__file__).resolve().parents[2] / "tt_platform"
DAYS = pd.date_range("2021-01-04", periods=10, freq="B", tz="UTC")


def _trained_run(tracker: MlflowTracker, tmp_path: Path, name: str) -> str:
    model = tmp_path / name / "model.zip"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"model")
    with tracker.start_run(run_name=name) as run:
        run.log_artifact(model.parent, "model")
        run.register_model("model")
    return run.run_id


def _summary(run_id: str, policy_id: str, sharpe: float, dsr: float) -> WalkForwardSummary:
    fold = Fold(0, BarRange(0, 4, DAYS[0], DAYS[4]), None, BarRange(5, 9, DAYS[5], DAYS[9]))
    plan = WalkForwardPlan("plan1", "t", "cfg", "fs", "data", ("AAA",), "wl", (fold,), (0,))
    curve = pd.Series(100.0, index=DAYS[5:])
    evaluation = FoldEvaluation(
        "plan1", fold.partition_key, ("2021-01-11", "2021-01-15"), {0: curve}, {"cash": curve},
        {0: {"sharpe": sharpe}}, {"cash": {"sharpe": None}}, {0: pd.DataFrame()}, {0: {}},
        policy_ids={0: policy_id}, mlflow_run_ids={0: run_id},
    )
    metrics = {"policy (seed 0)": {"sharpe": sharpe}, "buy_and_hold": {"sharpe": 0.5}}
    verdict = judge(metrics["policy (seed 0)"], {"buy_and_hold": metrics["buy_and_hold"]},
                    deflated_sharpe=dsr, min_sharpe_margin=0.0, min_deflated_sharpe=0.9)
    return WalkForwardSummary(plan, (evaluation,), {}, metrics, {}, {"dsr": dsr}, 1, verdict, 0)


@pytest.fixture
def tracker(tmp_path) -> MlflowTracker:
    return MlflowTracker((tmp_path / "mlruns").as_uri(), "promotion")


def _champion_policy(tracker: MlflowTracker) -> str:
    version = tracker.client.get_model_version_by_alias(tracker.registered_model_name, CHAMPION)
    return version.tags["tt.policy_id"]


def test_a_failed_gate_never_sets_the_alias_and_says_which_check_failed(tracker, tmp_path):
    run = _trained_run(tracker, tmp_path, "weak")
    outcome = promote(tracker, _summary(run, "ppo-weak", sharpe=0.2, dsr=0.99))
    assert not outcome.promoted
    assert "not promoted: the gate failed: policy Sharpe 0.200 < buy_and_hold 0.500" in outcome.message
    with pytest.raises(Exception):  # noqa: B017 - MLflow raises its own error for an unknown alias
        tracker.client.get_model_version_by_alias(tracker.registered_model_name, CHAMPION)


def test_a_passing_policy_becomes_champion_and_a_weaker_one_later_does_not_replace_it(tracker, tmp_path):
    first = promote(tracker, _summary(_trained_run(tracker, tmp_path, "good"), "ppo-good", sharpe=1.5, dsr=0.97))
    assert first.promoted and _champion_policy(tracker) == "ppo-good"
    weaker = promote(tracker, _summary(_trained_run(tracker, tmp_path, "ok"), "ppo-ok", sharpe=1.2, dsr=0.96))
    assert not weaker.promoted and "holds out-of-sample Sharpe 1.500" in weaker.message
    assert _champion_policy(tracker) == "ppo-good"
    better = promote(tracker, _summary(_trained_run(tracker, tmp_path, "best"), "ppo-best", sharpe=2.0, dsr=0.99))
    assert better.promoted and "replacing version" in better.message
    assert _champion_policy(tracker) == "ppo-best"
    version = tracker.client.get_model_version_by_alias(tracker.registered_model_name, CHAMPION)
    assert float(version.tags[PROMOTED_SHARPE_TAG]) == pytest.approx(2.0)


def test_only_the_promotion_module_sets_the_champion_alias():
    setters = [
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if re.search(r"set_registered_model_alias", path.read_text())
    ]
    assert setters == ["pipeline/promotion.py"]
