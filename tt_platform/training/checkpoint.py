"""Checkpoints: model weights plus everything needed to trust and resume them.

A checkpoint is a folder holding ``model.zip`` (stable-baselines3) and ``checkpoint.json``
(env config, train config, feature_set_hash, data snapshot hash, seed, code version, timesteps,
lineage). It is written into a temporary sibling folder and renamed into place, so a reader never
sees half a checkpoint and rewriting the same checkpoint is idempotent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from tt_platform.env.config import EnvConfig
from tt_platform.training.config import TrainConfig

MODEL_FILE = "model.zip"
META_FILE = "checkpoint.json"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that is missing, incomplete or does not fit the data it is used with."""


def algo_class(algo: str) -> type:
    from stable_baselines3 import A2C, PPO, SAC

    classes = {"ppo": PPO, "a2c": A2C, "sac": SAC}
    if algo not in classes:
        raise CheckpointError(f"unknown algo {algo!r}; expected one of {sorted(classes)}")
    return classes[algo]


@lru_cache(maxsize=1)
def code_version() -> str:
    """``git describe --always --dirty`` of the source tree, else the installed version."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=root,
                             capture_output=True, text=True, timeout=5, check=True)
        described = out.stdout.strip()
        if described:
            return f"git:{described}"
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return f"pkg:{metadata.version('tt-platform')}"
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    algo: str
    env_config: EnvConfig
    train_config: TrainConfig
    feature_set_hash: str | None
    data_snapshot_hash: str
    seed: int
    code_version: str
    num_timesteps: int
    created_at: str
    lineage: dict[str, Any] = field(default_factory=dict)

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    def load_model(self, env: Any = None, device: str = "cpu") -> Any:
        """The SB3 model; pass ``env`` (a VecEnv or gym env) to continue training."""
        return algo_class(self.algo).load(self.model_path, env=env, device=device)

    def metadata(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "algo": self.algo,
            "env_config": self.env_config.model_dump(mode="json"),
            "train_config": self.train_config.model_dump(mode="json"),
            "feature_set_hash": self.feature_set_hash,
            "data_snapshot_hash": self.data_snapshot_hash,
            "seed": self.seed,
            "code_version": self.code_version,
            "num_timesteps": self.num_timesteps,
            "created_at": self.created_at,
            "lineage": self.lineage,
        }


def save_checkpoint(model: Any, path: str | Path, *, env_config: EnvConfig,
                    train_config: TrainConfig, feature_set_hash: str | None,
                    data_snapshot_hash: str, lineage: dict[str, Any] | None = None) -> Checkpoint:
    """Write ``model`` and its metadata to the folder ``path`` atomically (replacing it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = Checkpoint(
        path=path, algo=train_config.algo, env_config=env_config, train_config=train_config,
        feature_set_hash=feature_set_hash, data_snapshot_hash=data_snapshot_hash,
        seed=train_config.seed, code_version=code_version(),
        num_timesteps=int(model.num_timesteps),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        lineage=dict(lineage or {}))
    staging = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    staging.mkdir()
    try:
        model.save(staging / MODEL_FILE)
        (staging / META_FILE).write_text(
            json.dumps(checkpoint.metadata(), indent=2, sort_keys=True, default=str))
        if path.exists():
            retired = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.old"
            os.replace(path, retired)
            os.replace(staging, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return checkpoint


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint folder; raises ``CheckpointError`` naming the missing or bad part."""
    path = Path(path)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise CheckpointError(f"{path}: not a checkpoint ({META_FILE} missing)")
    if not (path / MODEL_FILE).is_file():
        raise CheckpointError(f"{path}: {MODEL_FILE} missing")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{meta_path}: line {exc.lineno}: invalid JSON ({exc.msg})") from None
    try:
        if meta.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(
                f"{meta_path}: format_version {meta.get('format_version')!r} is not {FORMAT_VERSION}")
        return Checkpoint(
            path=path, algo=meta["algo"],
            env_config=EnvConfig.model_validate(meta["env_config"]),
            train_config=TrainConfig.model_validate(meta["train_config"]),
            feature_set_hash=meta["feature_set_hash"],
            data_snapshot_hash=meta["data_snapshot_hash"], seed=int(meta["seed"]),
            code_version=meta["code_version"], num_timesteps=int(meta["num_timesteps"]),
            created_at=meta["created_at"], lineage=dict(meta.get("lineage") or {}))
    except KeyError as exc:
        raise CheckpointError(f"{meta_path}: missing key {exc.args[0]!r}") from None
    except ValueError as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{meta_path}: invalid config ({exc})") from None


def load_model(path: str | Path, env: Any = None, device: str = "cpu") -> Any:
    """The SB3 model of a checkpoint, given the checkpoint folder or its ``model.zip``."""
    path = Path(path)
    folder = path.parent if path.name == MODEL_FILE else path
    return load_checkpoint(folder).load_model(env=env, device=device)
