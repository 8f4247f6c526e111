"""Which policy a session trades, and the proof that it is the one its lineage names.

A selector is an MLflow alias (``champion``), a model version, or ``policy:<id>`` straight from
``tt_policy``. Before the first order the model file's SHA-256 must equal the hash recorded when
it was trained, and the feature set this code computes must hash to the policy's
``feature_set_hash`` (and to its checkpoint's): a policy whose file was swapped, or whose features
would be computed differently today, never trades.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tt_platform.env.config import EnvConfig
from tt_platform.features.sets import get_feature_set
from tt_platform.features.spec import FeatureSet
from tt_platform.training.checkpoint import META_FILE

MODEL_HASH_KEY = "model_sha256"


class PolicyResolutionError(LookupError):
    """The selector names no policy (no such alias, version or id)."""


class PolicyVerificationError(RuntimeError):
    """The policy's model file or feature set does not match its lineage: it must not trade."""


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class VerifiedPolicy:
    """A policy checked against its lineage, with what the live loop needs to run it."""

    policy_id: str
    version_label: str  # what the audit log records: "champion=v3", "v3" or the policy id
    model_path: Path
    model_sha256: str
    algo: str
    feature_set: FeatureSet
    env_config: EnvConfig
    interval: str
    adjusted: bool
    symbols: tuple[str, ...]
    train_end: str

    @property
    def feature_set_hash(self) -> str:
        return self.feature_set.hash

    def load_model(self) -> Any:
        from tt_platform.training.checkpoint import algo_class

        return algo_class(self.algo).load(self.model_path, device="cpu")


def resolve_policy_row(engine: Any, selector: tuple[str, str], tracker: Any | None) -> tuple[dict, str]:
    """The ``tt_policy`` row ``selector`` names and a label for it; PolicyResolutionError otherwise.

    ``tracker`` (an ``MlflowTracker``) is needed for aliases and versions.
    """
    from tt_platform.store.policies import get_policy, get_policy_by_mlflow_run

    kind, value = selector
    if kind == "policy_id":
        row = get_policy(engine, value)
        if row is None:
            raise PolicyResolutionError(f"no policy {value!r} in tt_policy")
        return row, value
    if tracker is None:
        raise PolicyResolutionError(f"policy {kind} {value!r} needs MLflow (MLFLOW_TRACKING_URI or the local store)")
    from mlflow.exceptions import MlflowException

    name = tracker.registered_model_name
    try:
        if kind == "alias":
            version = tracker.client.get_model_version_by_alias(name, value)
        else:
            version = tracker.client.get_model_version(name, value)
    except MlflowException as exc:
        what = f"alias {value!r}" if kind == "alias" else f"version {value}"
        hint = " (a walk-forward whose gate passes sets it; or give 'policy:<id>')" if kind == "alias" else ""
        raise PolicyResolutionError(f"registered model {name!r} has no {what}{hint}: "
                                    f"{str(exc).splitlines()[0]}") from None
    label = f"{value}=v{version.version}" if kind == "alias" else f"v{version.version}"
    row = get_policy_by_mlflow_run(engine, version.run_id) if version.run_id else None
    if row is None:
        policy_id = (version.tags or {}).get("tt.policy_id")
        row = get_policy(engine, policy_id) if policy_id else None
    if row is None:
        raise PolicyResolutionError(f"model version {label} (MLflow run {version.run_id}) has no policy in tt_policy")
    return row, label


def verify_policy(row: dict, version_label: str) -> VerifiedPolicy:
    """Check ``row``'s model file and feature set against its lineage; PolicyVerificationError
    naming the difference."""
    policy_id = row["policy_id"]
    config = row.get("config") or {}
    lineage = config.get("lineage") or {}
    if not row.get("model_uri"):
        raise PolicyVerificationError(f"policy {policy_id}: tt_policy records no model file (model_uri is empty)")
    model_path = Path(row["model_uri"])
    if not model_path.is_file():
        raise PolicyVerificationError(f"policy {policy_id}: model file {str(model_path)!r} is missing")
    recorded = lineage.get(MODEL_HASH_KEY)
    if not recorded:
        raise PolicyVerificationError(
            f"policy {policy_id}: its lineage records no model hash, so its model file cannot be verified; "
            "train it again (tt train) to record one")
    actual = file_sha256(model_path)
    if actual != recorded:
        raise PolicyVerificationError(
            f"policy {policy_id}: model file {model_path} has SHA-256 {actual[:12]}…, its lineage records "
            f"{recorded[:12]}…; the file was changed after training")
    training = config.get("training") or {}
    feature_set = get_feature_set(training.get("feature_set", "basic"))
    if feature_set.hash != row["feature_set_hash"]:
        raise PolicyVerificationError(
            f"policy {policy_id}: feature set {feature_set.name!r} hashes to {feature_set.hash} in this code, "
            f"the policy was trained on {row['feature_set_hash']}; the features would differ")
    meta_path = model_path.parent / META_FILE
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("feature_set_hash") not in (None, row["feature_set_hash"]):
            raise PolicyVerificationError(
                f"policy {policy_id}: checkpoint {meta_path} records feature set {meta['feature_set_hash']}, "
                f"tt_policy {row['feature_set_hash']}")
    data = config.get("data") or {}
    symbols = tuple(s for s in str(lineage.get("symbols", "")).split(",") if s)
    if not symbols:
        raise PolicyVerificationError(f"policy {policy_id}: its lineage records no universe (symbols)")
    return VerifiedPolicy(
        policy_id=policy_id, version_label=version_label, model_path=model_path, model_sha256=actual,
        algo=row["algo"], feature_set=feature_set, env_config=EnvConfig.model_validate(config.get("env") or {}),
        interval=str(data.get("interval", "1d")), adjusted=bool(data.get("adjusted", False)), symbols=symbols,
        train_end=str(lineage.get("train_end", "")))
