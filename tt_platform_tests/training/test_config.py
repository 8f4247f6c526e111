"""Every training setting, set in YAML, reaches the SB3 model or the training run."""

import pytest
import torch

from tt_platform.config import TrainConfig, load_run_config
from tt_platform.training import CheckpointError, load_checkpoint, train_policy
from tt_platform.training import trainer as trainer_module
from tt_platform.training.trainer import build_model, make_vec_env
from tt_platform_tests.env.markets import random_market

PPO_YAML = """
env:
  window_size: 5
  episode_length: 30
training:
  algo: ppo
  policy: MlpPolicy
  net_arch: [32, 16]
  learning_rate: 0.00123
  gamma: 0.95
  n_steps: 64
  batch_size: 32
  n_epochs: 3
  gae_lambda: 0.9
  clip_range: 0.15
  ent_coef: 0.01
  vf_coef: 0.7
  max_grad_norm: 0.8
  n_envs: 3
  seed: 11
"""

SAC_YAML = """
env:
  window_size: 5
training:
  algo: sac
  net_arch: [24]
  batch_size: 16
  buffer_size: 777
  learning_starts: 33
  tau: 0.02
  train_freq: 4
"""

A2C_YAML = """
env:
  window_size: 5
training:
  algo: a2c
  n_steps: 12
  gae_lambda: 0.8
  ent_coef: 0.02
  vf_coef: 0.3
  max_grad_norm: 0.9
"""

RUN_YAML = """
env:
  window_size: 5
  episode_length: 30
training:
  total_timesteps: 128
  n_envs: 2
  n_steps: 32
  batch_size: 32
  n_epochs: 1
  net_arch: [8]
  torch_threads: 2
  device: cpu
  checkpoint_every: 64
  eval_episode: false
  feature_set: full
"""


def _layers(model) -> list[int]:
    return [layer.out_features for layer in model.policy.mlp_extractor.policy_net
            if isinstance(layer, torch.nn.Linear)]


# where each setting shows: (which YAML above, check on the model or the training run)
OBSERVED = {
    "algo": ("sac", lambda m, c: type(m).__name__ == "SAC"),
    "policy": ("ppo", lambda m, c: m.policy_class is type(m).policy_aliases[c.policy]),
    "net_arch": ("ppo", lambda m, c: _layers(m) == [32, 16]),
    "learning_rate": ("ppo", lambda m, c: m.learning_rate == c.learning_rate
                      and m.policy.optimizer.param_groups[0]["lr"] == pytest.approx(c.learning_rate)),
    "gamma": ("ppo", lambda m, c: m.gamma == c.gamma),
    "n_steps": ("ppo", lambda m, c: m.n_steps == c.n_steps and m.rollout_buffer.buffer_size == c.n_steps),
    "batch_size": ("ppo", lambda m, c: m.batch_size == c.batch_size),
    "n_epochs": ("ppo", lambda m, c: m.n_epochs == c.n_epochs),
    "gae_lambda": ("ppo", lambda m, c: m.gae_lambda == c.gae_lambda),
    "clip_range": ("ppo", lambda m, c: m.clip_range(1.0) == c.clip_range),
    "ent_coef": ("ppo", lambda m, c: m.ent_coef == c.ent_coef),
    "vf_coef": ("ppo", lambda m, c: m.vf_coef == c.vf_coef),
    "max_grad_norm": ("ppo", lambda m, c: m.max_grad_norm == c.max_grad_norm),
    "n_envs": ("ppo", lambda m, c: m.n_envs == c.n_envs),
    "seed": ("ppo", lambda m, c: m.seed == c.seed),
    "buffer_size": ("sac", lambda m, c: m.buffer_size == c.buffer_size),
    "learning_starts": ("sac", lambda m, c: m.learning_starts == c.learning_starts),
    "tau": ("sac", lambda m, c: m.tau == c.tau),
    "train_freq": ("sac", lambda m, c: m.train_freq.frequency == c.train_freq),
    # seen in a training run (test_run_settings_reach_training below)
    "total_timesteps": ("run", None),
    "torch_threads": ("run", None),
    "device": ("run", None),
    "checkpoint_every": ("run", None),
    "eval_episode": ("run", None),
    # chooses the stored features the market is loaded with (tests/pipeline/test_training_records.py)
    "feature_set": ("pipeline", None),
    # the faster settings, checked on the model in tests/training/test_extractor.py
    "vec_env": ("extractor", None),
    "policy_extractor": ("extractor", None),
    "extractor_symbol_dim": ("extractor", None),
    "fused_optimizer": ("extractor", None),
}

YAMLS = {"ppo": PPO_YAML, "sac": SAC_YAML, "a2c": A2C_YAML}


@pytest.fixture(scope="module")
def market():
    return random_market(t=80, n=2, f=2, seed=3)


def _model(tmp_path, market, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    config = load_run_config(path)
    return build_model(config.training, make_vec_env(market, config.env, config.training)), config.training


def test_every_training_setting_is_observed_here():
    assert set(OBSERVED) == set(TrainConfig.model_fields)


@pytest.mark.parametrize("which", ["ppo", "sac"])
def test_training_settings_in_yaml_reach_the_sb3_model(tmp_path, market, which):
    model, config = _model(tmp_path, market, YAMLS[which])
    checked = [key for key, (source, _) in OBSERVED.items() if source == which]
    for key in checked:
        assert OBSERVED[key][1](model, config), key
    # every checked value differs from its default, so a dropped setting cannot pass
    defaults = TrainConfig()
    assert [k for k in checked if getattr(config, k) == getattr(defaults, k)] in ([], ["policy"])


def test_a2c_takes_its_settings(tmp_path, market):
    model, config = _model(tmp_path, market, A2C_YAML)
    assert type(model).__name__ == "A2C"
    assert (model.n_steps, model.gae_lambda, model.ent_coef, model.vf_coef, model.max_grad_norm) == (
        12, 0.8, 0.02, 0.3, 0.9)


def test_run_settings_reach_training(tmp_path, market, monkeypatch):
    path = tmp_path / "run.yaml"
    path.write_text(RUN_YAML)
    config = load_run_config(path)
    threads = []
    original = trainer_module.torch_threads

    def recording(n):
        threads.append(n)
        return original(n)

    monkeypatch.setattr(trainer_module, "torch_threads", recording)
    result = train_policy(market, config.env, config.training, checkpoint_dir=tmp_path / "ckpt")
    assert result.num_timesteps == 128  # total_timesteps
    assert threads == [2]  # torch_threads
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == ["LATEST", "step-0000000064", "step-0000000128"]  # checkpoint_every
    assert result.final_episode is None and "sharpe" not in result.metrics  # eval_episode: false
    checkpoint = load_checkpoint(result.checkpoint_path)
    assert checkpoint.train_config == config.training and checkpoint.env_config == config.env
    assert checkpoint.load_model().device.type == config.training.device


def test_resume_applies_the_configured_hyperparameters(tmp_path, market):
    path = tmp_path / "run.yaml"
    path.write_text(RUN_YAML)
    config = load_run_config(path)
    first = train_policy(market, config.env, config.training.model_copy(update={"checkpoint_every": None}),
                         checkpoint_dir=tmp_path / "a")
    resumed_config = config.with_overrides(**{"training.total_timesteps": 192, "training.learning_rate": 0.005,
                                              "training.checkpoint_every": None})
    resumed = train_policy(market, resumed_config.env, resumed_config.training, checkpoint_dir=tmp_path / "b",
                           resume_checkpoint=first.checkpoint_path)
    assert resumed.num_timesteps == 192
    # the saved model carries the learning rate it continued with
    assert load_checkpoint(resumed.checkpoint_path).load_model().learning_rate == 0.005
    with pytest.raises(CheckpointError, match="net_arch"):
        changed = resumed_config.with_overrides(**{"training.net_arch": [16]})
        train_policy(market, changed.env, changed.training, checkpoint_dir=tmp_path / "c",
                     resume_checkpoint=first.checkpoint_path)
