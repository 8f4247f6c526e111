"""tuning_worker_job: each run is one more Optuna worker in the run config's study (the study
``tt tune`` runs), so launching N runs through Dagster's run launcher gives N workers."""

import dagster as dg
import pytest

from tt_platform.defs.evaluation.tuning import TuningWorkerResult
from tt_platform.defs.platform.resources import dagster_run_config
from tt_platform.pipeline.tuning import recorded_trials, storage_url_for, study_name, tuning_config
from tt_platform.store.engine import safe_url
from tt_platform_tests.pipeline.test_tuning import TUNING, _config, stored  # noqa: F401 - fixture
from tt_platform_tests.pipeline.test_whole_graph import platform_env  # noqa: F401 - fixture

JOB = "tuning_worker_job"


def _tuned_config(name: str = "tune-job", **extra):
    # the small search space of the pipeline tests, carried by the run config as a launched run would
    space = [param.model_dump(mode="json", exclude_none=True) for param in TUNING.search_space]
    return _config(name, **{"evaluation.tuning.search_space": space, **extra})


def _execute(instance, config=None, **worker):
    from tt_platform.definitions import defs

    run_config = dagster_run_config(config) if config is not None else {}
    run_config["ops"] = {"tuning_worker": {"config": worker}}
    return defs.resolve_job_def(JOB).execute_in_process(instance=instance, run_config=run_config, raise_on_error=False)


def _failure(result) -> str:
    assert not result.success
    failure = result.failure_data_for_node("tuning_worker")
    return failure.user_failure_data.description


def test_the_job_is_defined_with_its_worker_config_and_tag():
    from tt_platform.definitions import defs

    dg.Definitions.validate_loadable(defs)
    job = defs.get_job_def(JOB)
    assert job.tags.get("tt/kind") == "tuning"
    assert {"platform", "run_config", "market_clock"} <= job.required_resource_keys
    op_config = job.run_config_schema.config_type.fields["ops"].config_type.fields["tuning_worker"]
    assert set(op_config.config_type.fields["config"].config_type.fields) == {"trials", "timeout_seconds"}
    assert "launch N runs" in job.description


def test_a_worker_asked_for_no_trials_fails_in_one_line_before_touching_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("TT_HOME", str(tmp_path / "home"))
    with dg.instance_for_test() as instance:
        message = _failure(_execute(instance, trials=0))
    assert message == "tuning_worker: trials must be at least 1 (or null), got 0"


def test_each_run_is_one_more_worker_in_the_same_study(stored, platform_env):  # noqa: F811
    config = _tuned_config()
    assert tuning_config(config).space.payload() == TUNING.space.payload()
    name = study_name(config, TUNING)
    url = storage_url_for(stored.url)
    with dg.instance_for_test() as instance:
        first = _execute(instance, config, trials=2)
        assert first.success, _failure(first)
        second = _execute(instance, config, trials=1)
        assert second.success, _failure(second)
        runs = instance.get_runs(dg.RunsFilter(job_name=JOB))
        assert len(runs) == 2 and all(run.tags.get("tt/kind") == "tuning" for run in runs)

    done = first.output_for_node("tuning_worker")
    assert isinstance(done, TuningWorkerResult)
    assert (done.study_name, done.trials_run, done.completed_trials, done.recorded_trials) == (name, 2, 2, 2)
    again = second.output_for_node("tuning_worker")
    # trials counted across both runs: the second worker joined the first one's study
    assert (again.study_name, again.trials_run, again.completed_trials, again.recorded_trials) == (name, 1, 3, 3)
    assert again.best_value is not None and again.best_trial in (0, 1, 2)
    assert recorded_trials(url, name) == 3

    [materialization] = [e for e in second.all_node_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = {k: v.value for k, v in materialization.step_output_data.metadata.items()}
    assert metadata["study_name"] == name and metadata["trials_run"] == 1 and metadata["completed_trials"] == 3
    assert metadata["storage"] == safe_url(url) and metadata["best_value"] == round(again.best_value, 6)


def test_a_config_without_validation_windows_fails_naming_the_setting(stored, platform_env):  # noqa: F811
    config = _tuned_config("no-validation", **{"evaluation.walk_forward.validation_bars": 0})
    with dg.instance_for_test() as instance:
        message = _failure(_execute(instance, config, trials=1))
    assert message.startswith("tuning_worker: tuning scores trials on the walk-forward's validation windows")
    assert "set evaluation.walk_forward.validation_bars above 0" in message
    assert "\n" not in message
    assert recorded_trials(storage_url_for(stored.url), study_name(config, TUNING)) == 0


@pytest.mark.parametrize("timeout", [0.0, -5.0])
def test_a_worker_with_a_timeout_that_is_not_positive_fails_in_one_line(tmp_path, monkeypatch, timeout):
    monkeypatch.setenv("TT_HOME", str(tmp_path / "home"))
    with dg.instance_for_test() as instance:
        message = _failure(_execute(instance, timeout_seconds=timeout))
    assert message == f"tuning_worker: timeout_seconds must be above 0 (or null), got {timeout}"
