"""Checkpoints: model weights plus everything needed to trust and resume them.

A checkpoint is a folder holding ``model.zip`` (stable-baselines3) and ``checkpoint.json``
(env config, train config, feature_set_hash, data snapshot hash, seed, code version, timesteps,
lineage). It is written into a temporary sibling folder (``.<name>.<id>.tmp``), flushed to disk
(files and folder fsynced), and renamed into place, so a reader never sees half a checkpoint and
rewriting the same checkpoint is idempotent. A process killed while writing leaves at most a
hidden ``.tmp`` folder, which readers ignore.

Training writes its checkpoints as step folders into one checkpoint folder::

    <policy folder>/checkpoints/step-0000000512/{model.zip,checkpoint.json}
    <policy folder>/checkpoints/step-0000001024/...
    <policy folder>/checkpoints/LATEST          # name of the newest complete step folder

``resolve_checkpoint`` turns any of a policy folder, a checkpoint folder, a step folder or a
``model.zip`` into the newest complete checkpoint there.
"""

from __future__ import annotations

import json
import logging
import os
import re
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

log = logging.getLogger(__name__)

MODEL_FILE = "model.zip"
META_FILE = "checkpoint.json"
FORMAT_VERSION = 1
CHECKPOINTS_DIR = "checkpoints"  # inside a policy folder
LATEST_FILE = "LATEST"  # inside a checkpoint folder: the newest complete step folder's name
STEP_FOLDER = re.compile(r"^step-(\d+)$")


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
    # the market's shape the model was trained on (None in checkpoints that did not record it)
    n_symbols: int | None = None
    n_features: int | None = None

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
            "n_symbols": self.n_symbols,
            "n_features": self.n_features,
        }


def step_folder_name(num_timesteps: int) -> str:
    return f"step-{int(num_timesteps):010d}"


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_latest(folder: str | Path, step_name: str) -> None:
    """Point ``folder/LATEST`` at the step folder ``step_name`` (atomic: temp file, fsync,
    rename)."""
    folder = Path(folder)
    staging = folder / f".{LATEST_FILE}.{uuid.uuid4().hex[:8]}.tmp"
    with open(staging, "w") as handle:
        handle.write(step_name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, folder / LATEST_FILE)
    _fsync_dir(folder)


def save_checkpoint(model: Any, path: str | Path, *, env_config: EnvConfig,
                    train_config: TrainConfig, feature_set_hash: str | None,
                    data_snapshot_hash: str, lineage: dict[str, Any] | None = None,
                    n_symbols: int | None = None, n_features: int | None = None) -> Checkpoint:
    """Write ``model`` and its metadata to the folder ``path`` atomically (replacing it): a
    staging folder is written and fsynced, then renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = Checkpoint(
        path=path, algo=train_config.algo, env_config=env_config, train_config=train_config,
        feature_set_hash=feature_set_hash, data_snapshot_hash=data_snapshot_hash,
        seed=train_config.seed, code_version=code_version(),
        num_timesteps=int(model.num_timesteps),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        lineage=dict(lineage or {}), n_symbols=n_symbols, n_features=n_features)
    staging = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    staging.mkdir()
    try:
        model.save(staging / MODEL_FILE)
        (staging / META_FILE).write_text(
            json.dumps(checkpoint.metadata(), indent=2, sort_keys=True, default=str))
        for name in (MODEL_FILE, META_FILE):
            _fsync_file(staging / name)
        _fsync_dir(staging)
        if path.exists():
            retired = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.old"
            os.replace(path, retired)
            os.replace(staging, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, path)
        _fsync_dir(path.parent)
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
            created_at=meta["created_at"], lineage=dict(meta.get("lineage") or {}),
            n_symbols=meta.get("n_symbols"), n_features=meta.get("n_features"))
    except KeyError as exc:
        raise CheckpointError(f"{meta_path}: missing key {exc.args[0]!r}") from None
    except ValueError as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{meta_path}: invalid config ({exc})") from None


def _step_folders(folder: Path) -> list[tuple[int, Path]]:
    """The ``step-N`` folders of a checkpoint folder, newest first; hidden staging folders left
    by an interrupted write are logged and skipped."""
    found = []
    for child in folder.iterdir():
        if not child.is_dir():
            continue
        if child.name.startswith(".") and child.name.endswith(".tmp"):
            log.warning("ignoring %s: a checkpoint whose write was interrupted", child)
            continue
        match = STEP_FOLDER.match(child.name)
        if match:
            found.append((int(match.group(1)), child))
    return sorted(found, reverse=True)


def latest_checkpoint(folder: str | Path) -> Checkpoint:
    """The newest complete checkpoint among the step folders of ``folder``; incomplete or
    unreadable step folders are skipped with a log line. ``CheckpointError`` when there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such checkpoint folder")
    for _, step in _step_folders(folder):
        try:
            return load_checkpoint(step)
        except CheckpointError as exc:
            log.warning("ignoring incomplete checkpoint %s", exc)
    raise CheckpointError(f"{folder}: no complete checkpoint (no step-N folder with "
                          f"{MODEL_FILE} and {META_FILE})")


def resolve_checkpoint(path: str | Path) -> Checkpoint:
    """The checkpoint to resume from, given any of:

    - a ``model.zip`` or a step folder: that checkpoint;
    - a checkpoint folder (holding ``step-N`` folders) or a policy folder (holding
      ``checkpoints/``): the newest complete checkpoint in it.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.is_file():
        if path.name != MODEL_FILE:
            raise CheckpointError(f"{path}: not a checkpoint (expected a folder or {MODEL_FILE})")
        return load_checkpoint(path.parent)
    if (path / META_FILE).exists() or (path / MODEL_FILE).exists():
        return load_checkpoint(path)
    if (path / CHECKPOINTS_DIR).is_dir():
        return latest_checkpoint(path / CHECKPOINTS_DIR)
    if any(STEP_FOLDER.match(child.name) for child in path.iterdir()):
        return latest_checkpoint(path)
    raise CheckpointError(f"{path}: not a checkpoint ({META_FILE} missing, and no "
                          f"{CHECKPOINTS_DIR}/ or step-N folders)")


def load_model(path: str | Path, env: Any = None, device: str = "cpu") -> Any:
    """The SB3 model of a checkpoint, given its ``model.zip``, its folder, or a checkpoint or
    policy folder (then the newest complete checkpoint)."""
    return resolve_checkpoint(path).load_model(env=env, device=device)
