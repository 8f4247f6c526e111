"""Periodic atomic checkpoints, resuming from any path form, and surviving kill -9."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tt_platform.training import CheckpointError, TrainConfig, train_policy
from tt_platform.training.checkpoint import (
    CHECKPOINTS_DIR,
    LATEST_FILE,
    MODEL_FILE,
    latest_checkpoint,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from tt_platform.training.trainer import build_model, checkpoint_interval, make_vec_env
from tt_platform_tests.training import killable_training as killable

ROOT = Path(__file__).resolve().parents[2]
ENV = killable.ENV
TRAIN = killable.TRAIN.model_copy(update={"total_timesteps": 512})


@pytest.fixture(scope="module")
def market():
    return killable.market()


@pytest.fixture(scope="module")
def policy_dir(market, tmp_path_factory):
    """A policy folder trained 512 steps with a checkpoint every 128."""
    folder = tmp_path_factory.mktemp("policy")
    train_policy(market, ENV, TRAIN, checkpoint_dir=folder / CHECKPOINTS_DIR)
    return folder


def test_periodic_checkpoints_are_step_folders_with_a_latest_pointer(policy_dir):
    folder = policy_dir / CHECKPOINTS_DIR
    names = sorted(p.name for p in folder.iterdir())
    assert names == [LATEST_FILE, "step-0000000128", "step-0000000256", "step-0000000384",
                     "step-0000000512"]
    assert (folder / LATEST_FILE).read_text().strip() == "step-0000000512"
    for step in (128, 256, 384, 512):
        assert load_checkpoint(folder / f"step-{step:010d}").num_timesteps == step


def test_unset_checkpoint_every_checkpoints_a_tenth_of_the_run_and_small_runs_only_at_the_end(
        market, tmp_path):
    assert checkpoint_interval(TrainConfig(total_timesteps=1_000_000)) == 100_000
    assert checkpoint_interval(TrainConfig()) == 2048  # the default 4096-step run: one midway
    assert checkpoint_interval(TrainConfig(checkpoint_every=300)) == 300
    train_policy(market, ENV, TRAIN.model_copy(update={"checkpoint_every": None}),
                 checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [LATEST_FILE, "step-0000000512"]


def test_checkpoint_write_is_atomic_a_failed_write_leaves_nothing_visible(market, tmp_path):
    model = build_model(TRAIN, make_vec_env(market, ENV, TRAIN))
    target = tmp_path / "step-0000000000"
    seen_during_write = []

    def broken_save(path):
        Path(path).write_bytes(b"PK half a zip")
        seen_during_write.append(target.exists())
        raise OSError("disk full")

    model.save = broken_save
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(model, target, env_config=ENV, train_config=TRAIN,
                        feature_set_hash="fs", data_snapshot_hash="d")
    assert seen_during_write == [False]
    assert list(tmp_path.iterdir()) == []


def test_resume_accepts_policy_folder_checkpoint_folder_step_folder_and_model_zip(policy_dir):
    newest = policy_dir / CHECKPOINTS_DIR / "step-0000000512"
    for form in (policy_dir, policy_dir / CHECKPOINTS_DIR, newest, newest / MODEL_FILE):
        assert resolve_checkpoint(form).path == newest, form
    older = policy_dir / CHECKPOINTS_DIR / "step-0000000256"
    assert resolve_checkpoint(older / MODEL_FILE).num_timesteps == 256


def test_resume_skips_half_written_checkpoints_with_a_log_line(policy_dir, tmp_path, caplog):
    import shutil

    copy = tmp_path / "policy"
    shutil.copytree(policy_dir, copy)
    folder = copy / CHECKPOINTS_DIR
    # what an interrupted write leaves: a hidden staging folder, and a step folder missing parts
    (folder / ".step-0000000640.1234abcd.tmp").mkdir()
    (folder / ".step-0000000640.1234abcd.tmp" / MODEL_FILE).write_bytes(b"PK")
    (folder / "step-0000000768").mkdir()
    (folder / "step-0000000768" / "checkpoint.json").write_text('{"algo": "pp')
    with caplog.at_level(logging.WARNING, logger="tt_platform.training.checkpoint"):
        checkpoint = latest_checkpoint(folder)
    assert checkpoint.num_timesteps == 512
    logged = caplog.text
    assert ".step-0000000640.1234abcd.tmp" in logged and "step-0000000768" in logged


def test_resume_refuses_a_checkpoint_that_does_not_fit_with_one_line_naming_the_difference(
        policy_dir, tmp_path):
    from tt_platform_tests.env.markets import random_market

    cases = [
        (random_market(t=120, n=3, f=3, seed=1, feature_set_hash="fs-kill"), ENV, TRAIN,
         "n_features"),
        (random_market(t=120, n=4, f=2, seed=1, feature_set_hash="fs-kill"), ENV, TRAIN,
         "n_symbols"),
        (killable.market(), ENV, TRAIN.model_copy(update={"algo": "a2c", "n_steps": 8}), "algo"),
        (killable.market(), ENV, TRAIN.model_copy(update={"net_arch": [8]}), "net_arch"),
        (killable.market(), ENV.model_copy(update={"window_size": 6}), TRAIN, "window_size"),
    ]
    for market, env, train, what in cases:
        with pytest.raises(CheckpointError, match=what) as caught:
            train_policy(market, env, train, checkpoint_dir=tmp_path / what,
                         resume_checkpoint=policy_dir)
        assert "\n" not in str(caught.value)
    (tmp_path / "empty" / CHECKPOINTS_DIR).mkdir(parents=True)  # killed before any checkpoint
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        train_policy(killable.market(), ENV, TRAIN, checkpoint_dir=tmp_path / "z",
                     resume_checkpoint=tmp_path / "empty")


def test_kill_9_during_training_then_resume_from_each_path_form(market, tmp_path):
    policy = tmp_path / "policy"
    folder = policy / CHECKPOINTS_DIR
    proc = subprocess.Popen(
        [sys.executable, "-m", "tt_platform_tests.training.killable_training", str(folder),
         (tmp_path / "mlruns").as_uri(), "kill-test"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (folder / LATEST_FILE).exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no periodic checkpoint within 60 s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()

    killed_at = latest_checkpoint(folder)
    assert killed_at.num_timesteps % killable.EVERY == 0 and killed_at.num_timesteps >= 128
    total = max(1024, killed_at.num_timesteps + 256)
    config = killable.TRAIN.model_copy(update={"total_timesteps": total})
    for i, form in enumerate((policy, killed_at.path, killed_at.path / MODEL_FILE)):
        result = train_policy(market, ENV, config, checkpoint_dir=tmp_path / f"resumed-{i}",
                              resume_checkpoint=form)
        assert result.num_timesteps == total, form
        final = load_checkpoint(result.checkpoint_path)
        assert final.num_timesteps == total
        assert final.lineage["resumed_from"] == str(killed_at.path)
