"""The promotion gate judges out-of-sample numbers against every baseline and the deflated Sharpe."""

import pytest

from tt_platform.evaluation.gate import judge

BASELINES = {"buy_and_hold": {"sharpe": 0.8}, "equal_weight": {"sharpe": 0.6}, "cash": {"sharpe": None}}


def test_a_policy_above_every_baseline_with_a_high_deflated_sharpe_passes():
    verdict = judge({"sharpe": 1.2}, BASELINES, deflated_sharpe=0.97, min_sharpe_margin=0.1, min_deflated_sharpe=0.95)
    assert verdict.passed and verdict.reasons == []
    assert verdict.summary().startswith("passed: ")


@pytest.mark.parametrize(
    ("policy_sharpe", "dsr", "margin", "reason"),
    [
        (0.85, 0.99, 0.1, "policy Sharpe 0.850 < buy_and_hold 0.800 + margin 0.100"),
        (1.2, 0.80, 0.0, "deflated Sharpe ratio 0.800 < 0.950"),
        (None, 0.99, 0.0, "policy Sharpe undefined (flat out-of-sample curve), buy_and_hold 0.800"),
        (-0.1, 0.99, 0.0, "policy Sharpe -0.100 <= 0.000 (cash is flat)"),
        (1.2, None, 0.0, "deflated Sharpe ratio undefined"),
    ],
)
def test_each_failing_condition_is_named_with_its_numbers(policy_sharpe, dsr, margin, reason):
    verdict = judge({"sharpe": policy_sharpe}, BASELINES, deflated_sharpe=dsr, min_sharpe_margin=margin,
                    min_deflated_sharpe=0.95)
    assert not verdict.passed
    assert any(reason in r for r in verdict.reasons), verdict.reasons
