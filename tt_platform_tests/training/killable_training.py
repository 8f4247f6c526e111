"""Train on a tiny synthetic market until killed: the subject of the kill -9 tests.

``python -m tt_platform_tests.training.killable_training CHECKPOINT_DIR MLFLOW_URI EXPERIMENT``
trains far more steps than a test waits for, checkpointing every ``EVERY`` steps into
CHECKPOINT_DIR and tracking the run in MLflow, so the test can kill it mid-run.
"""

from __future__ import annotations

import sys

from tt_platform.env import EnvConfig
from tt_platform.training import MlflowTracker, TrainConfig, train_policy
from tt_platform_tests.env.markets import random_market

ENV = EnvConfig(window_size=5, episode_length=40, random_start=True, long_only=False)
EVERY = 128
TRAIN = TrainConfig(total_timesteps=1_000_000, n_envs=2, n_steps=64, batch_size=64, n_epochs=2,
                    net_arch=[16], seed=3, checkpoint_every=EVERY, eval_episode=False)


def market():
    return random_market(t=120, n=3, f=2, seed=1, feature_set_hash="fs-kill")


def main(argv: list[str]) -> None:
    checkpoint_dir, mlflow_uri, experiment = argv
    train_policy(market(), ENV, TRAIN, checkpoint_dir=checkpoint_dir,
                 tracker=MlflowTracker(mlflow_uri, experiment))


if __name__ == "__main__":
    main(sys.argv[1:])
