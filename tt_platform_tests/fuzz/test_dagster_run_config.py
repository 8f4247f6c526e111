"""Fuzzing the Dagster run config the jobs accept: ``resources.run_config.config`` of the asset
jobs and ``ops.trading_session.config`` of ``live_session``.

Each property starts from a run config the platform writes itself (``dagster_run_config``, the
session config of paper.yaml), changes a few keys to values of any type, then checks it the way a
launch does: Dagster's own schema first (``validate_run_config``), then the resource or op config
built from what Dagster accepted and validated into the platform's config.

Property: a run config is refused by Dagster with a ``DagsterInvalidConfigError`` naming the
path, or refused by the platform with its own error naming ``resources.run_config.config`` (or
the session's source) and the key, or it gives a usable config. Never a pydantic or type error
from building the resource.
"""

from __future__ import annotations

import re
from datetime import date

import dagster as dg
import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st

from tt_platform.config.dagster import config_values
from tt_platform.config.run_config import RunConfigError, parse_run_config
from tt_platform.defs.live.jobs import LiveSessionOpConfig
from tt_platform.defs.platform.resources import RUN_CONFIG_SOURCE, RunConfigResource, dagster_run_config
from tt_platform.live.config import LIVE_OP, LiveConfigError, LiveSessionConfig, parse_live_config
from tt_platform_tests.fuzz.properties import FUZZ, assert_names_problem
from tt_platform_tests.fuzz.test_yaml_configs import LIVE_BASES, mutated, values

LAST_SESSION = date(2024, 6, 28)
RUN_CONFIG_BASES = [
    dagster_run_config(parse_run_config({}, last_session=LAST_SESSION)),
    dagster_run_config(parse_run_config({"evaluation": {"walk_forward": {"scheme": "single", "fractions": {"test": 0.2}}},
                                         "training": {"algo": "a2c", "n_steps": 16}}, last_session=LAST_SESSION)),
]
LIVE_RUN_CONFIGS = [LIVE_BASES[0], {"ops": {LIVE_OP: {"config": LiveSessionConfig().model_dump(mode="json")}}}]
# a run config is a mapping with text keys by the time Dagster reads it (its YAML and JSON loaders,
# the Launchpad); anything else is refused by Dagster's own argument checks, not its config system
RUN_CONFIG_VALUES = values(st.text(max_size=8))


@pytest.fixture(scope="module")
def main_job() -> dg.JobDefinition:
    from tt_platform.definitions import defs

    return defs.resolve_job_def("main_job")


@pytest.fixture(scope="module")
def live_job() -> dg.JobDefinition:
    from tt_platform.defs.live import live_session_job

    return live_session_job


def _beyond_float(tree) -> bool:
    """An integer too large for a float anywhere in ``tree``: Dagster's own post-processing of a
    Float key raises OverflowError on it before the platform sees the config (Dagster's limit)."""
    if isinstance(tree, dict):
        return any(_beyond_float(value) for value in tree.values())
    if isinstance(tree, list):
        return any(_beyond_float(value) for value in tree)
    return isinstance(tree, int) and not isinstance(tree, bool) and abs(tree) > 1e308


def assert_dagster_names_the_path(error: dg.DagsterInvalidConfigError) -> None:
    message = str(error)
    assert message.startswith("Error in config for job"), message
    # Dagster's own wording: "Error 1: ... at path root:resources:run_config:config:env:..." (a key
    # holding a line break breaks its line, so the message is read whole)
    assert re.search(r"Error 1: .*\broot\b", message, re.DOTALL), message


@FUZZ
@given(mutated(RUN_CONFIG_BASES, RUN_CONFIG_VALUES, any_root=False))
def test_an_asset_job_run_config_is_refused_naming_the_key_or_gives_a_run_config(main_job, run_config):
    assume(not _beyond_float(run_config))
    try:
        processed = dg.validate_run_config(main_job, run_config)
    except dg.DagsterInvalidConfigError as error:
        event("refused by the job's schema")
        assert_dagster_names_the_path(error)
        return
    resource = RunConfigResource(**processed["resources"]["run_config"]["config"])  # as a launch builds it
    try:
        config = resource.load(last_session=LAST_SESSION)
    except RunConfigError as error:
        event("refused by the run config")
        for line in str(error).splitlines():
            assert_names_problem(line, RUN_CONFIG_SOURCE)
    else:
        event("accepted")
        again = parse_run_config(config.as_written(), source="round trip", last_session=LAST_SESSION)
        assert again.config_hash == config.config_hash


@FUZZ
@given(mutated(LIVE_RUN_CONFIGS, RUN_CONFIG_VALUES, any_root=False))
def test_a_live_session_run_config_is_refused_naming_the_key_or_gives_a_session(live_job, run_config):
    assume(not _beyond_float(run_config))
    try:
        processed = dg.validate_run_config(live_job, run_config)
    except dg.DagsterInvalidConfigError as error:
        event("refused by the job's schema")
        assert_dagster_names_the_path(error)
        return
    op_config = LiveSessionOpConfig(**processed["ops"][LIVE_OP]["config"])  # as the op receives it
    try:
        session = parse_live_config({"ops": {LIVE_OP: {"config": config_values(op_config, LiveSessionConfig)}}},
                                    source="run config")
    except LiveConfigError as error:
        event("refused by the session config")
        assert_names_problem(str(error), "run config")
    else:
        event("accepted")
        assert session.capital > 0 and session.mode in ("paper", "live")


def test_a_launch_with_a_bad_value_fails_naming_the_key():
    """The same refusals on the path a launched run takes: Dagster's schema before the run, the
    run config's own check in the step that loads it."""

    @dg.asset
    def probe(run_config: RunConfigResource) -> None:
        run_config.load()

    wrong_type = dagster_run_config(parse_run_config({}, last_session=LAST_SESSION))
    wrong_type["resources"]["run_config"]["config"]["env"]["window_size"] = "twenty"
    with dg.instance_for_test() as instance:
        with pytest.raises(dg.DagsterInvalidConfigError) as error:
            dg.materialize([probe], resources={"run_config": RunConfigResource()}, run_config=wrong_type, instance=instance)
        assert "root:resources:run_config:config:env:window_size" in str(error.value)

        out_of_bounds = dagster_run_config(parse_run_config({}, last_session=LAST_SESSION))
        out_of_bounds["resources"]["run_config"]["config"]["env"]["window_size"] = 0
        result = dg.materialize([probe], resources={"run_config": RunConfigResource()}, run_config=out_of_bounds,
                                instance=instance, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure.cause.cls_name == "RunConfigError"
    assert f"{RUN_CONFIG_SOURCE}: env.window_size: Input should be greater than or equal to 1" in failure.cause.message


def test_a_null_that_dagsters_schema_lets_through_is_named_by_the_run_config(main_job, live_job):
    """Dagster's schema takes null for every key that has a default; the resource (and the live
    op's config) must still be built, and the platform's validation name the key."""
    run_config = dagster_run_config(parse_run_config({}, last_session=LAST_SESSION))
    values = run_config["resources"]["run_config"]["config"]
    values["env"]["window_size"], values["progress"], values["resume_checkpoint"] = None, None, None
    processed = dg.validate_run_config(main_job, run_config)
    resource = RunConfigResource(**processed["resources"]["run_config"]["config"])
    assert (resource.progress, resource.resume_checkpoint) == (None, None)  # execution knobs: their defaults' meaning
    with pytest.raises(RunConfigError) as error:
        resource.load(last_session=LAST_SESSION)
    assert str(error.value) == f"{RUN_CONFIG_SOURCE}: env.window_size: Input should be a valid integer"

    session = {"ops": {LIVE_OP: {"config": {"capital": None, "risk": {"leverage_cap": None}}}}}
    op_config = LiveSessionOpConfig(**dg.validate_run_config(live_job, session)["ops"][LIVE_OP]["config"])
    with pytest.raises(LiveConfigError) as error:
        parse_live_config({"ops": {LIVE_OP: {"config": config_values(op_config, LiveSessionConfig)}}}, source="run config")
    assert str(error.value) == ("run config: ops.trading_session.config.capital: Input should be a valid number; "
                                "run config: ops.trading_session.config.risk.leverage_cap: Input should be a valid number")
