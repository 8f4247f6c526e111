"""The evaluation report: the latest policy out of sample against buy-and-hold and cash."""


import dagster as dg

from tt_platform.defs.platform.resources import PlatformResource, RunConfigResource
from tt_platform.pipeline.evaluation import evaluate
from tt_platform.pipeline.training import latest_policy_record


@dg.asset(
    group_name="evaluation",
    deps=["trained_policy"],
    description="Out-of-sample metrics of the latest policy vs baselines; an HTML report and tt_episode rows.",
)
def evaluation_report(context: dg.AssetExecutionContext, platform: PlatformResource, run_config: RunConfigResource) -> dg.MaterializeResult:
    config = run_config.load()
    engine = platform.engine()
    policy = latest_policy_record(engine, config)
    outcome = evaluate(engine, config, policy, platform.settings)
    policy_metrics, baseline = outcome.metrics["policy"], outcome.metrics["buy_and_hold"]
    context.log.info(f"report written to {outcome.report_path}")
    return dg.MaterializeResult(
        metadata={
            "report_path": dg.MetadataValue.path(str(outcome.report_path)),
            "policy_id": policy.policy_id,
            "episode_id": outcome.episode_id,
            "test_period": f"{outcome.test_start}..{outcome.test_end}",
            "sharpe": round(policy_metrics["sharpe"], 4),
            "buy_and_hold_sharpe": round(baseline["sharpe"], 4),
            "excess_sharpe": round(outcome.excess_sharpe, 4),
            "total_return": round(policy_metrics["total_return"], 6),
            "buy_and_hold_total_return": round(baseline["total_return"], 6),
            "max_drawdown": round(policy_metrics["max_drawdown"], 6),
            "turnover": round(policy_metrics["turnover"], 4),
            "drifted_features": ", ".join(outcome.drifted_features),
            "max_feature_psi": round(float(outcome.drift["psi"].max()), 4) if outcome.drift is not None else -1.0,
        }
    )
