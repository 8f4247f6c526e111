"""SB3's losses reach the MLflow run, stepped by timesteps."""

import gymnasium as gym
from stable_baselines3 import PPO

from tt_platform.training.sb3_logging import mlflow_logger
from tt_platform.training.tracking import MlflowTracker


def test_ppo_losses_are_logged_to_the_mlflow_run_by_timestep(tmp_path):
    tracker = MlflowTracker((tmp_path / "mlruns").as_uri(), "sb3-logging")
    with tracker.start_run(run_name="losses") as run:
        model = PPO("MlpPolicy", gym.make("CartPole-v1"), n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
        model.set_logger(mlflow_logger(run))
        model.learn(total_timesteps=128)
    logged = tracker.client.get_run(run.run_id).data.metrics
    for name in ("train/value_loss", "train/policy_gradient_loss", "train/entropy_loss", "train/approx_kl"):
        assert name in logged, sorted(logged)
    assert not any(name.startswith("rollout/ep_") for name in logged)
    history = tracker.client.get_metric_history(run.run_id, "train/value_loss")
    assert [m.step for m in history] == [128]
