"""Walk-forward evaluation as assets: the plan, then per fold (a dynamic partition) the policies
and their out-of-sample evaluation, then one report that stitches, deflates and gates.

The fold keys (``f03_2019-06-04``: index and first test day) are registered by the plan; keys of
an earlier plan that this one no longer has are removed, so the partitions shown are the plan's.
"""


import dagster as dg

from tt_platform.defs.platform.presentation import RESEARCH, RESEARCH_TEAM

from tt_platform.defs.market_data.resources import MarketClockResource
from tt_platform.defs.platform.resources import PlatformResource, RunConfigResource
from tt_platform.defs.training.resources import MlflowResource
from tt_platform.pipeline.handles import WatchlistSnapshot
from tt_platform.pipeline.training import policy_record_by_id
from tt_platform.pipeline.walk_forward import (
    FoldEvaluation,
    FoldPolicies,
    WalkForwardPlan,
    evaluate_fold,
    fold_table,
    plan_walk_forward,
    train_fold,
)
from tt_platform.pipeline.walk_forward_outcome import report_walk_forward

FOLDS = dg.DynamicPartitionsDefinition(name="walk_forward_folds")


@dg.asset(
    group_name=RESEARCH,
    kinds={"mlflow", "postgres"},
    owners=[RESEARCH_TEAM],
    deps=["features"],
    description="The walk-forward's folds over the stored features (train, purge, test windows) and its MLflow run.",
)
def walk_forward_plan(
    context: dg.AssetExecutionContext,
    watchlist: WatchlistSnapshot,
    platform: PlatformResource,
    run_config: RunConfigResource,
    mlflow: MlflowResource,
    market_clock: MarketClockResource,
) -> dg.Output[WalkForwardPlan]:
    config = run_config.load(last_session=market_clock.last_session())
    plan = plan_walk_forward(
        platform.engine(), config, symbols=list(watchlist.symbols), watchlist_hash=watchlist.snapshot_hash,
        tracker=mlflow.tracker(),
    )
    _register_fold_partitions(context.instance, [f.partition_key for f in plan.folds])
    metadata: dict[str, object] = {
        "plan_key": plan.plan_key,
        "folds": len(plan.folds),
        "seeds": ", ".join(str(s) for s in plan.seeds),
        "fold_table": dg.MetadataValue.md(fold_table(plan).to_markdown(index=False)),
        "feature_set_hash": plan.feature_set_hash,
        "data_snapshot_hash": plan.data_snapshot_hash,
    }
    if plan.mlflow_run_url:
        metadata["mlflow_run"] = dg.MetadataValue.url(plan.mlflow_run_url)
    context.log.info(f"walk-forward {plan.plan_key}: {len(plan.folds)} folds x {len(plan.seeds)} seeds")
    return dg.Output(plan, metadata=metadata)


def _register_fold_partitions(instance: dg.DagsterInstance, keys: list[str]) -> None:
    current = set(instance.get_dynamic_partitions(FOLDS.name))
    stale = sorted(current - set(keys))
    for key in stale:
        instance.delete_dynamic_partition(FOLDS.name, key)
    missing = [k for k in keys if k not in current]
    if missing:
        instance.add_dynamic_partitions(FOLDS.name, missing)


@dg.asset(
    group_name=RESEARCH,
    kinds={"sb3", "mlflow", "postgres"},
    owners=[RESEARCH_TEAM],
    partitions_def=FOLDS,
    description="One policy per seed trained on the fold's training window (reused when already trained on it).",
)
def fold_policies(
    context: dg.AssetExecutionContext,
    walk_forward_plan: WalkForwardPlan,
    platform: PlatformResource,
    run_config: RunConfigResource,
    mlflow: MlflowResource,
    market_clock: MarketClockResource,
) -> dg.Output[FoldPolicies]:
    config = run_config.load(last_session=market_clock.last_session())
    policies = train_fold(
        platform.engine(), config, platform.settings, walk_forward_plan, context.partition_key,
        tracker=mlflow.tracker(), progress=run_config.progress,
    )
    fold = walk_forward_plan.fold(context.partition_key)
    metadata: dict[str, object] = {
        "train_window": f"{fold.train.start.date()}..{fold.train.end.date()} ({fold.train.n_bars} bars)",
        "test_window": f"{fold.test.start.date()}..{fold.test.end.date()} ({fold.test.n_bars} bars)",
        "policies": ", ".join(f"seed {s}: {p}" for s, p in sorted(policies.policy_ids.items())),
        "reused_seeds": ", ".join(str(s) for s in policies.reused) or "none",
    }
    return dg.Output(policies, metadata=metadata)


@dg.asset(
    group_name=RESEARCH,
    kinds={"mlflow", "postgres"},
    owners=[RESEARCH_TEAM],
    partitions_def=FOLDS,
    description="Each seed's policy and every baseline over the fold's out-of-sample slice only.",
)
def fold_evaluation(
    context: dg.AssetExecutionContext,
    walk_forward_plan: WalkForwardPlan,
    fold_policies: FoldPolicies,
    platform: PlatformResource,
    run_config: RunConfigResource,
    mlflow: MlflowResource,
    market_clock: MarketClockResource,
) -> dg.Output[FoldEvaluation]:
    config = run_config.load(last_session=market_clock.last_session())
    engine = platform.engine()
    records = {seed: policy_record_by_id(engine, pid) for seed, pid in fold_policies.policy_ids.items()}
    evaluation = evaluate_fold(engine, config, walk_forward_plan, fold_policies, records, tracker=mlflow.tracker())
    metadata: dict[str, object] = {"test_period": "..".join(evaluation.test_period)}
    for seed, metrics in sorted(evaluation.policy_metrics.items()):
        if metrics.get("sharpe") is not None:
            metadata[f"oos_sharpe_seed_{seed}"] = round(metrics["sharpe"], 6)
    for name, metrics in evaluation.baseline_metrics.items():
        if metrics.get("sharpe") is not None:
            metadata[f"oos_{name}_sharpe"] = round(metrics["sharpe"], 6)
    return dg.Output(evaluation, metadata=metadata)


@dg.asset(
    group_name=RESEARCH,
    kinds={"plotly", "mlflow"},
    owners=[RESEARCH_TEAM],
    description="The walk-forward stitched out of sample: metrics vs baselines, deflated Sharpe, the gate's verdict, "
    "the HTML report, and the champion alias when the policy passes and beats the holder.",
)
def walk_forward_report(
    context: dg.AssetExecutionContext,
    walk_forward_plan: WalkForwardPlan,
    # every fold's evaluation by key; Dagster's file IO manager hands over the bare value when the
    # plan has one fold only, so both shapes arrive here
    fold_evaluation: object,
    platform: PlatformResource,
    run_config: RunConfigResource,
    mlflow: MlflowResource,
    market_clock: MarketClockResource,
) -> dg.MaterializeResult:
    config = run_config.load(last_session=market_clock.last_session())
    tracker = mlflow.tracker()
    outcome = report_walk_forward(
        platform.engine(), config, platform.settings, walk_forward_plan, _fold_list(fold_evaluation), tracker=tracker
    )
    summary = outcome.summary
    policy = summary.metrics[f"policy (seed {summary.primary_seed})"]
    metadata: dict[str, object] = {
        "summary": dg.MetadataValue.md(outcome.markdown),
        "gate": "passed" if summary.verdict.passed else "failed",
        "gate_reasons": "; ".join(summary.verdict.reasons) or "none",
        "promotion": outcome.promotion.message,
        "report_path": dg.MetadataValue.path(str(outcome.report_path)),
        "summary_json": dg.MetadataValue.path(str(outcome.summary_path)),
        "n_trials": summary.n_trials,
    }
    if outcome.report_url:
        metadata["report"] = dg.MetadataValue.url(outcome.report_url)
    if walk_forward_plan.mlflow_run_url:
        metadata["mlflow_run"] = dg.MetadataValue.url(walk_forward_plan.mlflow_run_url)
    numbers = {"oos_sharpe": policy.get("sharpe"), "oos_total_return": policy.get("total_return"),
               "oos_max_drawdown": policy.get("max_drawdown"), "deflated_sharpe": summary.deflated.get("dsr")}
    metadata |= {k: round(v, 6) for k, v in numbers.items() if isinstance(v, float)}
    context.log.info(f"walk-forward {walk_forward_plan.plan_key}: gate {summary.verdict.summary()}; {outcome.promotion.message}")
    return dg.MaterializeResult(metadata=metadata)


def _fold_list(fold_evaluation: object) -> list[FoldEvaluation]:
    if isinstance(fold_evaluation, FoldEvaluation):
        return [fold_evaluation]
    return list(fold_evaluation.values())
