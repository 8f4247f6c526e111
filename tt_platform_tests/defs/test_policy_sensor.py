"""The walk-forward of every new policy: the new-policy sensor requests the plan, the fold sensor
its folds and then its report, each exactly once.

Materializations come from stand-in assets carrying the platform's asset keys, so the sensors
read a real instance's event log and runs without training anything.
"""

import dagster as dg
import pytest

from tt_platform.config.run_config import load_run_config
from tt_platform.defs.automation.sensors import walk_forward_folds, walk_forward_new_policies
from tt_platform.defs.platform.resources import RunConfigResource, dagster_run_config
from tt_platform_tests.defs.test_schedules import platform_definitions

FOLDS = dg.DynamicPartitionsDefinition(name="walk_forward_folds")
FOLD_KEYS = ["f00_2020-01-02", "f01_2020-07-01"]
SENSOR_TAGS = {"dagster/sensor_name": "walk_forward_new_policies", "tt/policy_id": "ppo-1-s42"}
TT_TAGS = {"tt/host": "workstation", "tt/pid": "4242"}


def weekly_config():
    return load_run_config(None).with_overrides(**{"name": "weekly", "training.seed": 5})


def materialize(key: str, instance, *, metadata=None, tags=None, partition_key=None, progress=False):
    """One materialization of ``key`` by a run with the platform's run config (and ``tags``)."""

    @dg.asset(name=key, partitions_def=FOLDS if partition_key else None)
    def stand_in(run_config: RunConfigResource) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata=metadata or {})

    result = dg.materialize(
        [stand_in], instance=instance, resources={"run_config": RunConfigResource()},
        run_config=dagster_run_config(weekly_config(), progress=progress), tags=tags or {}, partition_key=partition_key,
    )
    assert result.success
    return result


def evaluate(sensor, instance, cursor=None) -> dg.SensorResult:
    return sensor(dg.build_sensor_context(instance=instance, cursor=cursor))


def requested(result: dg.SensorResult) -> list[dg.RunRequest]:
    return list(result.run_requests or [])


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def test_both_sensors_run_by_default_every_minute():
    defs = platform_definitions()
    for name in ("walk_forward_new_policies", "walk_forward_folds"):
        sensor = defs.resolve_sensor_def(name)
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
        assert sensor.minimum_interval_seconds == 60
        assert sensor.job_name == "walk_forward_job"


def test_a_new_policy_starts_its_walk_forward_once(instance):
    first = evaluate(walk_forward_new_policies, instance, cursor="0")
    assert requested(first) == [] and first.skip_reason.skip_message == "no new trained policy"

    # trained with a progress bar: how that run executed does not travel to the walk-forward
    materialize("trained_policy", instance, metadata={"policy_id": "ppo-1-s5"}, progress=True)
    result = evaluate(walk_forward_new_policies, instance, cursor=first.cursor)
    [request] = requested(result)
    assert request.run_key == "walk-forward:ppo-1-s5"
    assert request.asset_selection == [dg.AssetKey("walk_forward_plan")]
    assert request.tags["tt/policy_id"] == "ppo-1-s5"
    config = request.run_config["resources"]["run_config"]["config"]
    assert (config["name"], config["training"]["seed"], config["progress"]) == ("weekly", 5, False)
    assert dg.validate_run_config(platform_definitions().resolve_job_def("walk_forward_job"), request.run_config)

    again = evaluate(walk_forward_new_policies, instance, cursor=result.cursor)
    assert requested(again) == [] and again.cursor == result.cursor


def test_fold_policies_start_nothing(instance):
    instance.add_dynamic_partitions("walk_forward_folds", FOLD_KEYS)
    materialize("fold_policies", instance, metadata={"policies": "seed 42: ppo-f-s42"}, partition_key=FOLD_KEYS[0])
    result = evaluate(walk_forward_new_policies, instance, cursor="0")
    assert requested(result) == []
    materialize("trained_policy", instance, metadata={"policy_id": "ppo-2-s5"})
    assert [r.run_key for r in requested(evaluate(walk_forward_new_policies, instance, cursor=result.cursor))] == [
        "walk-forward:ppo-2-s5"
    ]


def test_switched_on_for_the_first_time_it_judges_the_newest_policy_only(instance):
    for policy_id in ("ppo-old-s5", "ppo-new-s5"):
        materialize("trained_policy", instance, metadata={"policy_id": policy_id})
    result = evaluate(walk_forward_new_policies, instance)
    assert [r.run_key for r in requested(result)] == ["walk-forward:ppo-new-s5"]
    assert requested(evaluate(walk_forward_new_policies, instance, cursor=result.cursor)) == []


def test_a_policy_materialized_twice_in_one_tick_is_requested_once(instance):
    for _ in range(2):
        materialize("trained_policy", instance, metadata={"policy_id": "ppo-same-s5"})
    assert [r.run_key for r in requested(evaluate(walk_forward_new_policies, instance, cursor="0"))] == [
        "walk-forward:ppo-same-s5"
    ]


def plan(instance, tags, plan_key="plan-abc"):
    instance.add_dynamic_partitions("walk_forward_folds", FOLD_KEYS)
    return materialize("walk_forward_plan", instance, metadata={"plan_key": plan_key, "folds": len(FOLD_KEYS)}, tags=tags)


def test_the_fold_sensor_requests_every_fold_then_the_report_once(instance):
    instance.add_dynamic_partitions("walk_forward_folds", FOLD_KEYS)
    materialize("fold_evaluation", instance, partition_key=FOLD_KEYS[0])  # an earlier plan's: does not count
    plan_run = plan(instance, SENSOR_TAGS)
    plan_config = instance.get_run_by_id(plan_run.run_id).run_config

    folds = evaluate(walk_forward_folds, instance)
    assert [(r.run_key, r.partition_key) for r in requested(folds)] == [
        ("plan-abc:f00_2020-01-02", "f00_2020-01-02"), ("plan-abc:f01_2020-07-01", "f01_2020-07-01")
    ]
    job = platform_definitions().resolve_job_def("walk_forward_job")
    for request in requested(folds):
        assert request.asset_selection == [dg.AssetKey("fold_policies"), dg.AssetKey("fold_evaluation")]
        assert request.run_config == plan_config and dg.validate_run_config(job, request.run_config)
        assert request.tags["tt/walk_forward_plan"] == "plan-abc" and request.tags["tt/policy_id"] == "ppo-1-s42"
        assert request.tags["tt/kind"] == "training"

    waiting = evaluate(walk_forward_folds, instance, cursor=folds.cursor)
    assert requested(waiting) == []
    assert "2 of 2 folds not evaluated yet" in waiting.skip_reason.skip_message

    materialize("fold_evaluation", instance, partition_key=FOLD_KEYS[0])
    one_left = evaluate(walk_forward_folds, instance, cursor=waiting.cursor)
    assert requested(one_left) == [] and "1 of 2 folds not evaluated yet (f01_2020-07-01)" in one_left.skip_reason.skip_message

    materialize("fold_evaluation", instance, partition_key=FOLD_KEYS[1])
    report = evaluate(walk_forward_folds, instance, cursor=one_left.cursor)
    [request] = requested(report)
    assert request.run_key == "plan-abc:report"
    assert request.asset_selection == [dg.AssetKey("walk_forward_report")]
    assert request.run_config == plan_config

    done = evaluate(walk_forward_folds, instance, cursor=report.cursor)
    assert requested(done) == [] and "nothing left to start" in done.skip_reason.skip_message


def test_a_plan_run_by_tt_is_left_to_tt(instance):
    plan(instance, TT_TAGS)
    result = evaluate(walk_forward_folds, instance)
    assert requested(result) == []
    assert "not started by a sensor or schedule" in result.skip_reason.skip_message
    assert requested(evaluate(walk_forward_folds, instance, cursor=result.cursor)) == []


def test_a_newer_plan_is_followed_instead(instance):
    plan(instance, SENSOR_TAGS, plan_key="plan-old")
    first = evaluate(walk_forward_folds, instance)
    plan(instance, SENSOR_TAGS, plan_key="plan-new")
    result = evaluate(walk_forward_folds, instance, cursor=first.cursor)
    assert {r.run_key.split(":")[0] for r in requested(result)} == {"plan-new"}
    assert len(requested(result)) == len(FOLD_KEYS)


def test_the_same_plan_again_gets_its_report_from_the_folds_already_run(instance):
    # plan-abc's folds ran for an earlier policy; materializing the same plan again reuses them
    # (Dagster skips fold requests whose run keys were used), so the report follows at once
    plan(instance, SENSOR_TAGS)
    for key in FOLD_KEYS:
        materialize("fold_evaluation", instance, partition_key=key,
                    tags={"tt/walk_forward_plan": "plan-abc", "tt/walk_forward_step": "fold"})
    plan(instance, SENSOR_TAGS)
    folds = evaluate(walk_forward_folds, instance)
    assert len(requested(folds)) == len(FOLD_KEYS)
    report = evaluate(walk_forward_folds, instance, cursor=folds.cursor)
    assert [r.run_key for r in requested(report)] == ["plan-abc:report"]
