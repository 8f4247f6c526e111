"""The promotion gate: a policy may trade only if, out of sample, it beats every baseline and its
deflated Sharpe ratio says the result is unlikely to be luck among all the trials behind it.

Pure: it judges numbers and returns a verdict with its reasons; setting the MLflow alias is the
caller's (``pipeline.promotion``), and only after a passing verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class GateCheck:
    name: str  # e.g. "beats buy_and_hold", "deflated sharpe"
    passed: bool
    detail: str  # one sentence with the numbers compared


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    checks: tuple[GateCheck, ...]

    @property
    def reasons(self) -> list[str]:
        """What failed (empty when the gate passed)."""
        return [c.detail for c in self.checks if not c.passed]

    def summary(self) -> str:
        if self.passed:
            return "passed: " + "; ".join(c.detail for c in self.checks)
        return "failed: " + "; ".join(self.reasons)


def judge(
    policy: Mapping[str, float | None],
    baselines: Mapping[str, Mapping[str, float | None]],
    *,
    deflated_sharpe: float | None,
    min_sharpe_margin: float,
    min_deflated_sharpe: float,
) -> GateVerdict:
    """Out-of-sample metrics of the policy and of each baseline (annualised ``sharpe``) against
    the gate's margin and deflated-Sharpe threshold. An undefined number fails its check."""
    checks = [_beats(name, policy.get("sharpe"), metrics.get("sharpe"), min_sharpe_margin) for name, metrics in baselines.items()]
    if deflated_sharpe is None:
        checks.append(GateCheck("deflated sharpe", False, "deflated Sharpe ratio undefined (too few out-of-sample returns)"))
    else:
        ok = deflated_sharpe >= min_deflated_sharpe
        checks.append(GateCheck(
            "deflated sharpe", ok,
            f"deflated Sharpe ratio {deflated_sharpe:.3f} {'>=' if ok else '<'} {min_deflated_sharpe:.3f}",
        ))
    return GateVerdict(all(c.passed for c in checks) and bool(checks), tuple(checks))


def _beats(name: str, policy_sharpe: float | None, baseline_sharpe: float | None, margin: float) -> GateCheck:
    label = f"beats {name}"
    if policy_sharpe is None:
        return GateCheck(label, False, f"policy Sharpe undefined (flat out-of-sample curve), {name} {_num(baseline_sharpe)}")
    if baseline_sharpe is None:
        # a flat baseline (cash) has no Sharpe ratio: a policy must at least have a positive one
        ok = policy_sharpe > margin
        return GateCheck(label, ok, f"policy Sharpe {policy_sharpe:.3f} {'>' if ok else '<='} {margin:.3f} ({name} is flat)")
    ok = policy_sharpe >= baseline_sharpe + margin
    return GateCheck(
        label, ok,
        f"policy Sharpe {policy_sharpe:.3f} {'>=' if ok else '<'} {name} {baseline_sharpe:.3f} + margin {margin:.3f}",
    )


def _num(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"
