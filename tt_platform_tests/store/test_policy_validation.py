"""Policy registrations validate, then commit: a refused record leaves tt_policy as it was.

Each test registers a good policy first, then registers a bad record (mostly under the same id)
and checks the one-sentence message and that the store is unchanged.
"""

import json
import re

import pandas as pd
import pytest
import sqlalchemy as sa

from tt_platform.config import RunConfig
from tt_platform.core.records import RecordError
from tt_platform.store.policies import PolicyRecordError, get_policy, register_policy
from tt_platform.store.query import read_frame
from tt_platform.store.schema import metadata
from tt_platform.store.upsert import UpsertError

POLICY_ID = "ppo-1a2b3c4d5e-s7"
LINEAGE = {
    "policy_id": POLICY_ID,
    "feature_set_hash": "9f86d081884c7d65",
    "data_snapshot_hash": "2c26b46b68ffc68f",
    "config_hash": "fcde2b2edba56bf4",
    "seed": "7",
    "train_end": "2021-09-30 00:00:00+00:00",
}
POLICY = {
    "policy_id": POLICY_ID,
    "mlflow_run_id": "run-abc",
    "algo": "ppo",
    "feature_set_hash": LINEAGE["feature_set_hash"],
    "data_snapshot_hash": LINEAGE["data_snapshot_hash"],
    "config_hash": LINEAGE["config_hash"],
    "config": {"training": {"algo": "ppo", "total_timesteps": 4096, "seed": 7}, "lineage": LINEAGE},
    "seed": 7,
    "code_version": "git:1234abc",
    "model_uri": "/models/ppo-1/model.zip",
}


def store_contents(engine) -> dict[str, pd.DataFrame]:
    """Every row of every tt_ table, in key order."""
    contents = {}
    for table in metadata.sorted_tables:
        order = list(table.primary_key.columns) or list(table.columns)
        contents[table.name] = read_frame(engine, sa.select(*table.columns).order_by(*order))
    return contents


@pytest.fixture
def stored(store_engine):
    """The store holding one good policy; yields the engine."""
    assert register_policy(store_engine, POLICY) == 1
    return store_engine


def refuse(engine, record: dict, message: str, subject: str = f"Policy {POLICY_ID!r}") -> None:
    """Registering ``record`` raises a PolicyRecordError whose one sentence contains
    ``message``, and the store is exactly as it was."""
    before = store_contents(engine)
    with pytest.raises(PolicyRecordError, match=re.escape(message)) as refused:
        register_policy(engine, record)
    text = str(refused.value)
    assert text.startswith(subject) and text.endswith(".") and "\n" not in text
    after = store_contents(engine)
    for name, frame in before.items():
        pd.testing.assert_frame_equal(after[name], frame, obj=name)


# ----------------------------------------------------------------------------- what is accepted
def test_the_pipeline_record_of_a_run_config_is_accepted(store_engine):
    config = RunConfig()
    lineage = LINEAGE | {"config_hash": config.config_hash}
    record = POLICY | {"config_hash": config.config_hash,
                       "config": config.model_dump(mode="json") | {"as_written": {}, "lineage": lineage}}
    assert register_policy(store_engine, record) == 1
    assert get_policy(store_engine, POLICY_ID)["config"]["lineage"] == lineage


def test_re_registering_the_same_lineage_updates_the_run_and_the_model(stored):
    retrained = POLICY | {"mlflow_run_id": "run-def", "model_uri": "/models/ppo-1/v2/model.zip",
                          "code_version": "git:5678def"}
    assert register_policy(stored, retrained) == 1
    assert register_policy(stored, retrained) == 0
    policy = get_policy(stored, POLICY_ID)
    assert (policy["mlflow_run_id"], policy["model_uri"], policy["code_version"]) == (
        "run-def", "/models/ppo-1/v2/model.zip", "git:5678def")


def test_a_config_given_as_json_text_is_stored_as_a_mapping(store_engine):
    register_policy(store_engine, POLICY | {"config": json.dumps(POLICY["config"])})
    assert get_policy(store_engine, POLICY_ID)["config"] == POLICY["config"]


def test_refusals_are_record_errors_and_upsert_errors():
    assert issubclass(PolicyRecordError, RecordError) and issubclass(PolicyRecordError, UpsertError)


# ----------------------------------------------------------------------------- the record
@pytest.mark.parametrize("policy_id", [None, "", " ppo-1"])
def test_a_record_without_a_clean_policy_id_is_refused_and_the_store_is_kept(stored, policy_id):
    refuse(stored, POLICY | {"policy_id": policy_id},
           f"A policy record needs a non-empty policy_id without surrounding blanks, got {policy_id!r}",
           subject="A policy record")


def test_an_unknown_field_is_refused_and_the_stored_policy_is_kept(stored):
    refuse(stored, POLICY | {"status": "live"}, "record has unknown fields ['status']")


@pytest.mark.parametrize("field", ["algo", "code_version"])
def test_an_empty_algo_or_code_version_is_refused_and_the_stored_policy_is_kept(stored, field):
    refuse(stored, POLICY | {field: " "}, f"{field} ' ' is not a non-empty text")


@pytest.mark.parametrize("field", ["feature_set_hash", "data_snapshot_hash", "config_hash"])
@pytest.mark.parametrize("value", [None, "", "None", "nan", "9f86 d081", "x" * 129])
def test_a_lineage_hash_that_is_not_a_hash_is_refused_and_the_stored_policy_is_kept(stored, field, value):
    record = POLICY | {field: value, "config": {}}  # no config lineage: the hash itself is refused
    refuse(stored, record, f"{field} {value!r} is not a hash (1 to 128 letters, digits or . _ : + -)")


@pytest.mark.parametrize("seed", [None, -1, 2**32, 7.0, True, "7"])
def test_a_seed_that_is_not_an_integer_in_0_to_2_32_is_refused_and_the_stored_policy_is_kept(stored, seed):
    refuse(stored, POLICY | {"seed": seed}, f"seed {seed!r} is not an integer in [0, 4294967295]")


@pytest.mark.parametrize(("config", "message"), [
    (None, "config is a NoneType, not a mapping of settings"),
    ([1, 2], "config is a list, not a mapping of settings"),
    ("{not json", "config is text that is not JSON"),
    ("[1, 2]", "config is a list, not a mapping of settings"),
])
def test_a_config_that_is_not_a_mapping_is_refused_and_the_stored_policy_is_kept(stored, config, message):
    refuse(stored, POLICY | {"config": config}, message)


@pytest.mark.parametrize("timesteps", [0, -5, 1.5, "4096"])
def test_non_positive_total_timesteps_are_refused_and_the_stored_policy_is_kept(stored, timesteps):
    config = POLICY["config"] | {"training": {"total_timesteps": timesteps}}
    refuse(stored, POLICY | {"config": config},
           f"config training.total_timesteps {timesteps!r} is not a positive integer")


@pytest.mark.parametrize(("field", "value"), [
    ("policy_id", "ppo-other-s7"),
    ("feature_set_hash", "0000000000000000"),
    ("data_snapshot_hash", "1111111111111111"),
    ("config_hash", "2222222222222222"),
    ("seed", "8"),
])
def test_a_config_lineage_that_disagrees_with_the_record_is_refused_and_the_store_is_kept(stored, field, value):
    config = POLICY["config"] | {"lineage": LINEAGE | {field: value}}
    expected = POLICY_ID if field == "policy_id" else POLICY[field]
    refuse(stored, POLICY | {"config": config},
           f"config lineage {field} {value!r} differs from the record's {field} {expected!r}")


# ----------------------------------------------------------------------------- re-registering
@pytest.mark.parametrize(("field", "value"), [
    ("algo", "sac"),
    ("feature_set_hash", "0000000000000000"),
    ("data_snapshot_hash", "1111111111111111"),
    ("config_hash", "2222222222222222"),
    ("seed", 8),
])
def test_re_registering_a_policy_id_with_another_lineage_is_refused_and_the_stored_policy_is_kept(
    stored, field, value
):
    changed = POLICY | {field: value, "config": {"training": {"total_timesteps": 4096}}}
    refuse(stored, changed, f"Policy {POLICY_ID!r} is already registered with {field} {POLICY[field]!r}, not "
                            f"{value!r}: one policy id names one lineage")
