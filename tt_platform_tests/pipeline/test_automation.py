"""What the schedules and sensors decide: sessions and holidays, partitions, run keys, cursors."""

from datetime import date, time

import pytest

from tt_platform.pipeline.automation import (
    FINISHED,
    FOLDS_REQUESTED,
    FoldSensorCursor,
    check_session,
    fold_run_key,
    in_fold_order,
    iso_week,
    nightly_run_key,
    policy_cursor,
    report_run_key,
    retrain_run_key,
    run_config_section,
    started_by_automation,
    walk_forward_run_key,
)


def test_a_regular_session_maps_to_its_month():
    session = check_session(date(2024, 7, 8))
    assert session.is_session and session.reason == ""
    assert session.early_close is None
    assert session.partition_key == "2024-07"


def test_a_holiday_is_named():
    session = check_session(date(2024, 7, 4))
    assert not session.is_session
    assert session.reason == "2024-07-04 (Thursday) is not a NYSE session (holiday: July 4th)"
    assert "Thanksgiving" in check_session(date(2024, 11, 28)).reason
    assert "Good Friday" in check_session(date(2024, 3, 29)).reason


def test_a_half_day_is_a_session_with_its_early_close():
    session = check_session(date(2024, 11, 29))  # the day after Thanksgiving: closes at 13:00
    assert session.is_session
    assert session.early_close == time(13, 0)
    assert session.partition_key == "2024-11"


def test_a_weekend_is_no_session():
    assert check_session(date(2024, 7, 6)).reason == "2024-07-06 is a Saturday: not a NYSE session"
    assert check_session(date(2024, 7, 7)).reason == "2024-07-07 is a Sunday: not a NYSE session"


def test_an_unnamed_closure_still_says_holiday():
    # the national day of mourning for President Carter is an ad hoc closure without a name
    session = check_session(date(2025, 1, 9))
    assert not session.is_session
    assert session.reason == "2025-01-09 (Thursday) is not a NYSE session (holiday)"


def test_a_day_beyond_the_calendar_is_refused():
    with pytest.raises(ValueError, match=r"2200-01-02 is outside the XNYS calendar"):
        check_session(date(2200, 1, 2))


def test_run_keys_name_what_they_run_once():
    assert nightly_run_key(date(2024, 7, 8)) == "nightly-bars:2024-07-08"
    assert retrain_run_key(date(2024, 7, 6)) == "retrain:2024-W27"
    assert retrain_run_key(date(2024, 7, 1)) == retrain_run_key(date(2024, 7, 6))  # same ISO week
    assert iso_week(date(2021, 1, 2)) == "2020-W53"  # ISO weeks straddle New Year
    assert walk_forward_run_key("ppo-abc-s42") == "walk-forward:ppo-abc-s42"
    assert fold_run_key("plan1", "f00_2020-01-02") == "plan1:f00_2020-01-02"
    assert report_run_key("plan1") == "plan1:report"


def test_only_sensor_or_schedule_runs_not_executed_by_tt_count_as_automated():
    assert started_by_automation({"dagster/sensor_name": "walk_forward_new_policies"})
    assert started_by_automation({"dagster/schedule_name": "weekly_retrain"})
    assert not started_by_automation({})  # launched from the UI
    assert not started_by_automation({"tt/host": "h", "tt/pid": "12"})
    # a run that carries a sensor's tags but was executed by tt is tt's to follow
    assert not started_by_automation({"dagster/sensor_name": "s", "tt/pid": "12"})
    # trained_policy adds tt/host to any run it executes: that alone does not make it tt's
    assert started_by_automation({"dagster/sensor_name": "s", "tt/host": "h"})


def test_run_config_section_drops_how_a_run_executed():
    run_config = {"resources": {"run_config": {"config": {"name": "x", "resume_checkpoint": "/c", "progress": True}}}}
    assert run_config_section(run_config) == {"name": "x"}
    with pytest.raises(ValueError, match=r"no resources.run_config.config"):
        run_config_section({"ops": {}})
    with pytest.raises(ValueError, match=r"is a list, not a mapping"):
        run_config_section({"resources": {"run_config": {"config": []}}})


def test_folds_sort_by_number():
    keys = ["f10_2021-01-04", "f02_2020-01-02", "f01_2019-06-03", "f100_2030-01-02"]
    assert in_fold_order(keys) == ["f01_2019-06-03", "f02_2020-01-02", "f10_2021-01-04", "f100_2030-01-02"]


def test_cursors_round_trip_and_bad_ones_are_named():
    cursor = FoldSensorCursor(17, FOLDS_REQUESTED)
    assert FoldSensorCursor.parse(cursor.serialize()) == cursor
    assert FoldSensorCursor.parse(None) is None
    with pytest.raises(ValueError, match=r"fold sensor cursor 'oops'"):
        FoldSensorCursor.parse("oops")
    with pytest.raises(ValueError, match=r"stage 'later' is not"):
        FoldSensorCursor.parse('{"plan_storage_id": 1, "stage": "later"}')
    assert FoldSensorCursor(3, FINISHED).stage == FINISHED
    assert policy_cursor("42") == 42 and policy_cursor(None) is None
    with pytest.raises(ValueError, match=r"new-policy sensor cursor 'x' is not a storage id"):
        policy_cursor("x")
