"""The evaluation report: exactly the policy its upstream trained_policy materialization
produced, out of sample against buy-and-hold and cash."""

import dagster as dg

from tt_platform.defs.market_data.resources import MarketClockResource
from tt_platform.defs.platform.presentation import RESEARCH, RESEARCH_TEAM
from tt_platform.defs.platform.resources import PlatformResource, RunConfigResource
from tt_platform.defs.training.resources import MlflowResource
from tt_platform.pipeline.evaluation import attach_report, evaluate
from tt_platform.pipeline.handles import PolicyHandle
from tt_platform.pipeline.training import policy_record_by_id


@dg.asset(
    group_name=RESEARCH,
    kinds={"plotly", "mlflow", "postgres"},
    owners=[RESEARCH_TEAM],
    description="Out-of-sample metrics of the upstream policy vs baselines; an HTML report and tt_episode rows.",
)
def evaluation_report(
    context: dg.AssetExecutionContext,
    trained_policy: PolicyHandle,
    platform: PlatformResource,
    run_config: RunConfigResource,
    market_clock: MarketClockResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    config = run_config.load(last_session=market_clock.last_session())
    engine = platform.engine()
    policy = policy_record_by_id(engine, trained_policy.policy_id)
    outcome = evaluate(engine, config, policy, platform.settings)
    policy_metrics, baseline = outcome.metrics["policy"], outcome.metrics["buy_and_hold"]
    context.log.info(f"report written to {outcome.report_path}")
    metadata: dict[str, object] = {
        "report_path": dg.MetadataValue.path(str(outcome.report_path)),
        "policy_id": policy.policy_id,
        "episode_id": outcome.episode_id,
        "test_period": f"{outcome.test_start}..{outcome.test_end}",
        "drifted_features": ", ".join(outcome.drifted_features),
    }
    numbers = {
        "sharpe": policy_metrics["sharpe"],
        "buy_and_hold_sharpe": baseline["sharpe"],
        "excess_sharpe": outcome.excess_sharpe,
        "total_return": policy_metrics["total_return"],
        "buy_and_hold_total_return": baseline["total_return"],
        "max_drawdown": policy_metrics["max_drawdown"],
        "turnover_per_step": policy_metrics["turnover"],
        "max_feature_psi": float(outcome.drift["psi"].max()) if outcome.drift is not None else None,
    }
    report_url = attach_report(mlflow.tracker(), policy, outcome.report_path)
    if report_url:
        # links the UI opens: the report among the training run's artifacts, and the run itself
        metadata["report"] = dg.MetadataValue.url(report_url)
        metadata["mlflow_run"] = dg.MetadataValue.url(report_url.removesuffix("/artifacts"))
    # undefined values (a flat curve has no Sharpe ratio) are left out rather than shown as 0
    metadata |= {k: round(v, 6) for k, v in numbers.items() if v is not None and v == v}
    return dg.MaterializeResult(metadata=metadata)
