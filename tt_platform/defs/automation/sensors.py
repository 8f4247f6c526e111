"""Every new policy gets its walk-forward evaluation, as Dagster runs the daemon starts.

A walk-forward is several runs: the plan (which registers the fold partitions), one run per fold
partition, then the report once every fold is evaluated. Two sensors chain them:

- ``walk_forward_new_policies`` follows ``trained_policy`` materializations (its cursor is the
  last storage id seen). Each one is a new policy version; policies trained for walk-forward
  folds (``fold_policies``) or tuning trials are never ``trained_policy`` materializations, so
  they start nothing. It requests the plan of ``walk_forward_job`` with the run config the policy
  was trained with, tagged with the policy id; run key ``walk-forward:<policy_id>``.
- ``walk_forward_folds`` follows the newest ``walk_forward_plan`` materialization: for a plan
  whose run a sensor or schedule requested, one run per fold partition (run key
  ``<plan_key>:<fold>``), then, once every fold has a successful ``fold_evaluation`` after the
  plan, the report (``<plan_key>:report``); all with the plan run's run config. Plans that ``tt
  walk-forward`` executed are left alone: ``tt`` runs their folds and report itself. An older
  plan is not followed once a newer one exists: fold runs read the newest plan.

Both read only the Dagster instance (no store, no IB), so a tick takes milliseconds.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from tt_platform.config.run_config import RunConfigError, parse_run_config
from tt_platform.defs.evaluation.walk_forward import FOLDS
from tt_platform.defs.platform.resources import dagster_run_config
from tt_platform.pipeline.automation import (
    FINISHED,
    FOLDS_REQUESTED,
    KIND_TAG,
    PLAN_TAG,
    POLICY_TAG,
    STEP_TAG,
    FoldSensorCursor,
    fold_run_key,
    in_fold_order,
    policy_cursor,
    report_run_key,
    run_config_section,
    started_by_automation,
    walk_forward_run_key,
)

WALK_FORWARD_JOB_NAME = "walk_forward_job"
TRAINED_POLICY = dg.AssetKey("trained_policy")
PLAN = dg.AssetKey("walk_forward_plan")
FOLD_ASSETS = [dg.AssetKey("fold_policies"), dg.AssetKey("fold_evaluation")]
FOLD_EVALUATION = dg.AssetKey("fold_evaluation")
REPORT = dg.AssetKey("walk_forward_report")
# new policies handled per tick; more wait for the next tick (ticks stay short)
POLICIES_PER_TICK = 20
PARTITION_TAG = "dagster/partition"


def _metadata_value(record: dg.EventLogRecord, key: str) -> Any:
    materialization = record.asset_materialization
    entry = None if materialization is None else materialization.metadata.get(key)
    return None if entry is None else getattr(entry, "value", entry)


@dg.sensor(
    name="walk_forward_new_policies",
    job_name=WALK_FORWARD_JOB_NAME,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Starts the walk-forward evaluation of every newly trained policy (each trained_policy "
        "materialization; fold and tuning policies excluded): a walk_forward_plan run with the "
        "config the policy was trained with, run key walk-forward:<policy_id>. The folds and the "
        "report follow through walk_forward_folds. Without a cursor it starts with the newest policy."
    ),
)
def walk_forward_new_policies(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    instance = context.instance
    after = policy_cursor(context.cursor)
    if after is None:
        # a sensor switched on for the first time judges the newest policy, not all of history
        records = instance.fetch_materializations(TRAINED_POLICY, limit=1, ascending=False).records
    else:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=TRAINED_POLICY, after_storage_id=after),
            limit=POLICIES_PER_TICK, ascending=True,
        ).records
    if not records:
        return dg.SensorResult(skip_reason="no new trained policy", cursor=str(after or 0))
    requests: dict[str, dg.RunRequest] = {}
    for record in records:
        request = _walk_forward_request(context, record)
        if request is not None:
            requests.setdefault(request.run_key, request)  # one policy retrained twice in a tick: once
    cursor = str(max(record.storage_id for record in records))
    if not requests:
        return dg.SensorResult(skip_reason="new trained_policy materializations name no policy to evaluate", cursor=cursor)
    return dg.SensorResult(run_requests=list(requests.values()), cursor=cursor)


def _walk_forward_request(context: dg.SensorEvaluationContext, record: dg.EventLogRecord) -> dg.RunRequest | None:
    policy_id = _metadata_value(record, "policy_id")
    if not policy_id:
        context.log.warning(f"trained_policy materialization {record.storage_id} has no policy_id: skipped")
        return None
    run = context.instance.get_run_by_id(record.run_id)
    if run is None:
        context.log.warning(f"policy {policy_id}: its training run {record.run_id} is gone: skipped")
        return None
    try:
        config = parse_run_config(run_config_section(run.run_config), source=f"run {run.run_id} run config")
    except (ValueError, RunConfigError) as exc:
        context.log.warning(f"policy {policy_id}: cannot read the config it was trained with: {exc}")
        return None
    return dg.RunRequest(
        run_key=walk_forward_run_key(str(policy_id)),
        run_config=dagster_run_config(config),
        asset_selection=[PLAN],
        tags={POLICY_TAG: str(policy_id), STEP_TAG: "plan", KIND_TAG: "walk_forward"},
    )


@dg.sensor(
    name="walk_forward_folds",
    job_name=WALK_FORWARD_JOB_NAME,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Follows a walk_forward_plan that a sensor or schedule started: one run per fold partition "
        "(run key <plan_key>:<fold>), then the walk_forward_report once every fold is evaluated "
        "(<plan_key>:report), with the plan run's config. Plans run by tt walk-forward are left to tt."
    ),
)
def walk_forward_folds(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    instance = context.instance
    cursor = FoldSensorCursor.parse(context.cursor)
    latest = instance.fetch_materializations(PLAN, limit=1, ascending=False).records
    if not latest:
        return dg.SensorResult(skip_reason="no walk_forward_plan materialized yet", cursor=context.cursor)
    plan = latest[0]
    plan_key = str(_metadata_value(plan, "plan_key") or f"plan-{plan.storage_id}")
    if cursor is not None and cursor.plan_storage_id == plan.storage_id and cursor.stage == FINISHED:
        return dg.SensorResult(skip_reason=f"walk-forward {plan_key}: nothing left to start", cursor=context.cursor)

    run = instance.get_run_by_id(plan.run_id)
    if run is None or not started_by_automation(run.tags):
        finished = FoldSensorCursor(plan.storage_id, FINISHED).serialize()
        who = "its run is gone" if run is None else "it was not started by a sensor or schedule (tt runs its own folds)"
        return dg.SensorResult(skip_reason=f"walk-forward {plan_key}: {who}", cursor=finished)

    fold_keys = in_fold_order(instance.get_dynamic_partitions(FOLDS.name))
    expected = _metadata_value(plan, "folds")
    if not fold_keys or (isinstance(expected, int) and expected != len(fold_keys)):
        return dg.SensorResult(
            skip_reason=f"walk-forward {plan_key}: {len(fold_keys)} fold partitions registered, the plan has {expected}",
            cursor=context.cursor,
        )
    tags = {PLAN_TAG: plan_key, KIND_TAG: "walk_forward"}
    if POLICY_TAG in run.tags:
        tags[POLICY_TAG] = run.tags[POLICY_TAG]

    if cursor is None or cursor.plan_storage_id != plan.storage_id:
        requests = [
            dg.RunRequest(
                run_key=fold_run_key(plan_key, key),
                run_config=run.run_config,
                asset_selection=FOLD_ASSETS,
                partition_key=key,
                # folds train policies: the instance's training concurrency limit applies
                tags=tags | {STEP_TAG: "fold", KIND_TAG: "training"},
            )
            for key in fold_keys
        ]
        return dg.SensorResult(run_requests=requests,
                               cursor=FoldSensorCursor(plan.storage_id, FOLDS_REQUESTED).serialize())

    waiting = [key for key in fold_keys if key not in _evaluated_folds(instance, plan, plan_key)]
    if waiting:
        return dg.SensorResult(
            skip_reason=f"walk-forward {plan_key}: {len(waiting)} of {len(fold_keys)} folds not evaluated yet "
            f"({', '.join(waiting[:5])}{', ...' if len(waiting) > 5 else ''})",
            cursor=context.cursor,
        )
    report = dg.RunRequest(
        run_key=report_run_key(plan_key),
        run_config=run.run_config,
        asset_selection=[REPORT],
        tags=tags | {STEP_TAG: "report"},
    )
    return dg.SensorResult(run_requests=[report], cursor=FoldSensorCursor(plan.storage_id, FINISHED).serialize())


def _evaluated_folds(instance: dg.DagsterInstance, plan: dg.EventLogRecord, plan_key: str) -> set[str]:
    """Folds with a fold_evaluation materialized after ``plan``, or evaluated by a successful fold
    run of the same plan key (the same plan materialized again: its fold run keys were used)."""
    done = set(instance.get_materialized_partitions(FOLD_EVALUATION, after_cursor=plan.storage_id))
    runs = instance.get_runs(
        filters=dg.RunsFilter(tags={PLAN_TAG: plan_key, STEP_TAG: "fold"}, statuses=[dg.DagsterRunStatus.SUCCESS])
    )
    return done | {r.tags[PARTITION_TAG] for r in runs if PARTITION_TAG in r.tags}
