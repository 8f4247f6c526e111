"""Which policy a session trades: resolved from tt_policy or a real local MLflow registry (alias,
version), and verified against its lineage -- model file hash, feature set hash, universe --
before it may trade."""

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from tt_platform.features.sets import get_feature_set
from tt_platform.live.policy_source import (
    MODEL_HASH_KEY,
    PolicyResolutionError,
    PolicyVerificationError,
    file_sha256,
    resolve_policy_row,
    verify_policy,
)
from tt_platform.store.engine import create_store_engine
from tt_platform.store.policies import POLICY_COLUMNS, get_policy, register_policy
from tt_platform.training.checkpoint import META_FILE
from tt_platform.training.tracking import MlflowTracker
from tt_platform_tests.fixtures.db import truncate_all
from tt_platform_tests.live.policy_factory import SYMBOLS, train_tiny_policy


@pytest.fixture(scope="module")
def trained(tmp_path_factory, embedded_postgres, schema_registry):
    """The factory's policy, trained once for the module, and its tt_policy row."""
    engine = create_store_engine(schema_registry.migrated(embedded_postgres.url()), poolclass=sa.pool.NullPool)
    try:
        truncate_all(engine)
        policy = train_tiny_policy(engine, tmp_path_factory.mktemp("policies"))
        row = get_policy(engine, policy.policy_id)
    finally:
        engine.dispose()
    return policy, row


@pytest.fixture
def row(trained, tmp_path) -> dict:
    """A copy of the policy's row whose model (and checkpoint folder) this test may change."""
    policy, stored = trained
    folder = shutil.copytree(policy.model_path.parent, tmp_path / "checkpoint")
    copied = copy.deepcopy(stored)
    copied["model_uri"] = str(Path(folder) / policy.model_path.name)
    return copied


def record_of(row: dict, **changes) -> dict:
    """What ``register_policy`` takes for ``row`` (no server-set columns)."""
    return {k: v for k, v in row.items() if k in POLICY_COLUMNS and k != "created_at"} | changes


# ---------------------------------------------------------------------------- verification
def test_the_factorys_policy_verifies_and_carries_what_the_live_loop_needs(trained, row):
    policy, _ = trained
    verified = verify_policy(row, "champion=v1")
    assert verified.policy_id == policy.policy_id and verified.version_label == "champion=v1"
    assert verified.model_path == Path(row["model_uri"])
    assert verified.model_sha256 == file_sha256(policy.model_path) == row["config"]["lineage"][MODEL_HASH_KEY]
    assert verified.algo == "ppo"
    assert verified.feature_set == get_feature_set("basic")
    assert verified.feature_set_hash == row["feature_set_hash"]
    assert verified.env_config == policy.config.env
    assert verified.interval == "1min" and verified.adjusted is False
    assert verified.symbols == SYMBOLS == policy.symbols
    assert verified.train_end == row["config"]["lineage"]["train_end"]
    model = verified.load_model()
    # the model takes the observation the training env builds: features and a position row per
    # symbol over the window, flattened
    n_features = len(verified.feature_set.features) + 1
    observation = np.zeros(len(SYMBOLS) * n_features * verified.env_config.window_size, dtype=np.float32)
    action, _ = model.predict(observation, deterministic=True)
    assert np.asarray(action).shape == (len(SYMBOLS),)


def test_a_model_file_changed_after_training_is_refused(row):
    with open(row["model_uri"], "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(PolicyVerificationError) as raised:
        verify_policy(row, "v1")
    message = str(raised.value)
    recorded = row["config"]["lineage"][MODEL_HASH_KEY]
    assert f"policy {row['policy_id']}: model file {row['model_uri']} has SHA-256 " in message
    assert file_sha256(row["model_uri"])[:12] in message and recorded[:12] in message
    assert "changed after training" in message


def test_a_missing_model_file_is_refused(row):
    Path(row["model_uri"]).unlink()
    with pytest.raises(PolicyVerificationError, match=r"model file '.*model\.zip' is missing"):
        verify_policy(row, "v1")
    with pytest.raises(PolicyVerificationError, match=r"records no model file \(model_uri is empty\)"):
        verify_policy(row | {"model_uri": None}, "v1")


def test_a_lineage_without_the_model_hash_is_refused(row):
    del row["config"]["lineage"][MODEL_HASH_KEY]
    with pytest.raises(PolicyVerificationError, match="its lineage records no model hash.*tt train"):
        verify_policy(row, "v1")


def test_a_feature_set_that_hashes_differently_today_is_refused(row):
    basic = get_feature_set("basic").hash
    trained_on = "0123456789abcdef"
    with pytest.raises(PolicyVerificationError) as raised:
        verify_policy(row | {"feature_set_hash": trained_on}, "v1")
    assert str(raised.value) == (f"policy {row['policy_id']}: feature set 'basic' hashes to {basic} in this code, "
                                 f"the policy was trained on {trained_on}; the features would differ")
    # the config naming another set than the one whose hash is recorded
    row["config"]["training"]["feature_set"] = "full"
    with pytest.raises(PolicyVerificationError, match=f"feature set 'full' hashes to .* trained on {basic}"):
        verify_policy(row, "v1")


def test_a_checkpoint_recording_another_feature_set_is_refused(row):
    meta_path = Path(row["model_uri"]).parent / META_FILE
    meta = json.loads(meta_path.read_text())
    assert meta["feature_set_hash"] == row["feature_set_hash"]
    meta_path.write_text(json.dumps(meta | {"feature_set_hash": "feedfacefeedface"}))
    with pytest.raises(PolicyVerificationError, match="records feature set feedfacefeedface"):
        verify_policy(row, "v1")


def test_a_lineage_without_symbols_is_refused(row):
    for symbols in (None, ""):
        changed = copy.deepcopy(row)
        if symbols is None:
            del changed["config"]["lineage"]["symbols"]
        else:
            changed["config"]["lineage"]["symbols"] = symbols
        with pytest.raises(PolicyVerificationError, match="its lineage records no universe"):
            verify_policy(changed, "v1")


# ---------------------------------------------------------------------------- tt_policy ids
def test_a_policy_id_resolves_to_its_row(store_engine, trained):
    _, stored = trained
    register_policy(store_engine, record_of(stored))
    row, label = resolve_policy_row(store_engine, ("policy_id", stored["policy_id"]), None)
    assert label == stored["policy_id"]
    assert row["config"] == stored["config"] and row["model_uri"] == stored["model_uri"]
    verify_policy(row, label)


def test_an_unknown_policy_id_is_named(store_engine):
    with pytest.raises(PolicyResolutionError, match="no policy 'ppo-nothing-s1' in tt_policy"):
        resolve_policy_row(store_engine, ("policy_id", "ppo-nothing-s1"), None)


@pytest.mark.parametrize("selector", [("alias", "champion"), ("version", "3")])
def test_an_alias_or_version_without_mlflow_says_it_needs_mlflow(store_engine, selector):
    with pytest.raises(PolicyResolutionError, match=f"policy {selector[0]} '{selector[1]}' needs MLflow"):
        resolve_policy_row(store_engine, selector, None)


# ---------------------------------------------------------------------------- MLflow
@pytest.fixture(scope="module")
def registry(tmp_path_factory, trained):
    """A local MLflow store (SQLite) holding three versions of the registered model:
    v1 (alias champion) trained the policy, as its tt_policy row's mlflow_run_id says; v2 names the
    policy by its version tag only; v3 names no policy at all."""
    policy, _ = trained
    folder = tmp_path_factory.mktemp("mlflow")
    tracker = MlflowTracker(f"sqlite:///{folder / 'mlflow.db'}", "live-policy-source")
    # created here so that its artifacts stay in the temporary folder; the tracker finds it by name
    tracker.client.create_experiment(tracker.experiment, artifact_location=(folder / "artifacts").as_uri())
    runs = []
    for name in ("trained", "tagged", "stray"):
        with tracker.start_run(run_name=name) as run:
            run.log_artifact(policy.model_path, "model")
            version = run.register_model("model")
        runs.append((run.run_id, version))
    name = tracker.registered_model_name
    tracker.client.set_model_version_tag(name, runs[1][1], "tt.policy_id", policy.policy_id)
    tracker.client.set_registered_model_alias(name, "champion", runs[0][1])
    return tracker, runs


def test_the_mlflow_alias_resolves_to_the_policy_its_run_trained(store_engine, trained, registry):
    _, stored = trained
    tracker, runs = registry
    (run_id, version), _, _ = runs
    assert version == "1"
    register_policy(store_engine, record_of(stored, mlflow_run_id=run_id))
    row, label = resolve_policy_row(store_engine, ("alias", "champion"), tracker)
    assert row["policy_id"] == stored["policy_id"] and row["mlflow_run_id"] == run_id
    assert label == "champion=v1"
    by_version, version_label = resolve_policy_row(store_engine, ("version", "1"), tracker)
    assert by_version["policy_id"] == stored["policy_id"] and version_label == "v1"
    assert verify_policy(row, label).version_label == "champion=v1"


def test_a_version_whose_run_is_not_in_tt_policy_resolves_by_its_policy_tag(store_engine, trained, registry):
    _, stored = trained
    tracker, runs = registry
    register_policy(store_engine, record_of(stored, mlflow_run_id=runs[0][0]))
    row, label = resolve_policy_row(store_engine, ("version", "2"), tracker)
    assert row["policy_id"] == stored["policy_id"] and label == "v2"


def test_a_version_naming_no_policy_is_refused(store_engine, trained, registry):
    _, stored = trained
    tracker, runs = registry
    register_policy(store_engine, record_of(stored, mlflow_run_id=runs[0][0]))
    stray_run = runs[2][0]
    with pytest.raises(PolicyResolutionError) as raised:
        resolve_policy_row(store_engine, ("version", "3"), tracker)
    assert str(raised.value) == f"model version v3 (MLflow run {stray_run}) has no policy in tt_policy"
    # the champion's policy is not in this store (yet): the same error, labelled as the alias
    truncate_all(store_engine)
    with pytest.raises(PolicyResolutionError, match=r"model version champion=v1 \(MLflow run .*\) has no policy"):
        resolve_policy_row(store_engine, ("alias", "champion"), tracker)


def test_an_alias_or_version_that_does_not_exist_is_named(store_engine, registry):
    tracker, _ = registry
    with pytest.raises(PolicyResolutionError) as raised:
        resolve_policy_row(store_engine, ("alias", "staging"), tracker)
    message = str(raised.value)
    assert message.startswith("registered model 'tt-policy' has no alias 'staging' (a walk-forward whose gate "
                              "passes sets it; or give 'policy:<id>'): ")
    assert "\n" not in message
    with pytest.raises(PolicyResolutionError, match="registered model 'tt-policy' has no version 9: "):
        resolve_policy_row(store_engine, ("version", "9"), tracker)


def test_an_alias_of_a_model_never_registered_is_named(store_engine, registry):
    tracker = MlflowTracker(registry[0].tracking_uri, "live-policy-source", registered_model_name="tt-nothing")
    with pytest.raises(PolicyResolutionError, match="registered model 'tt-nothing' has no alias 'champion'"):
        resolve_policy_row(store_engine, ("alias", "champion"), tracker)
