"""The shared-symbol feature extractor and the trainer's faster settings."""

import numpy as np
import pytest
import torch
from gymnasium import spaces

from tt_platform.config import TrainConfig
from tt_platform.env import EnvConfig, make_env
from tt_platform.env.vector import BatchedTradingVecEnv
from tt_platform.training import CheckpointError, load_checkpoint, train_policy
from tt_platform.training.extractor import (
    LeanRolloutBuffer,
    ObservationLayoutError,
    SharedSymbolExtractor,
    observation_layout,
)
from tt_platform.training.trainer import build_model, make_vec_env
from tt_platform_tests.env.markets import random_market

S, R, W, D = 5, 4, 7, 6


def _flat_space(symbols=S, rows=R, window=W):
    return spaces.Box(-10.0, 10.0, shape=(symbols * rows * window,), dtype=np.float32)


def _extractor(symbols=S, rows=R, window=W, dim=D, seed=0):
    torch.manual_seed(seed)
    return SharedSymbolExtractor(_flat_space(symbols, rows, window), n_symbols=symbols,
                                 window=window, symbol_dim=dim)


def test_output_is_one_embedding_per_symbol_plus_the_market_context():
    extractor = _extractor()
    assert extractor.features_dim == (S + 1) * D
    out = extractor(torch.randn(8, S * R * W))
    assert out.shape == (8, (S + 1) * D)
    per_symbol = out[:, :S * D].reshape(8, S, D)
    assert torch.allclose(out[:, S * D:], per_symbol.mean(dim=1))


def test_tensor_observations_give_the_same_features_as_flat_ones():
    flat = _extractor()
    torch.manual_seed(0)
    tensor = SharedSymbolExtractor(spaces.Box(-10.0, 10.0, shape=(S, R, W), dtype=np.float32),
                                   n_symbols=S, window=W, symbol_dim=D)
    obs = torch.randn(3, S, R, W)
    assert torch.allclose(flat(obs.reshape(3, -1)), tensor(obs))


def test_features_pool_the_window_by_last_value_and_mean():
    extractor = _extractor()
    obs = torch.randn(2, S, R, W)
    pooled = torch.cat([obs[..., -1], obs.mean(dim=-1)], dim=-1)
    expected = extractor.encoder(pooled)
    out = extractor(obs.reshape(2, -1))
    assert torch.allclose(out[:, :S * D].reshape(2, S, D), expected, atol=1e-6)


def test_one_encoder_is_shared_by_all_symbols():
    # by design: reordering the symbols reorders their embeddings and keeps the context
    extractor = _extractor()
    obs = torch.randn(4, S, R, W)
    order = torch.tensor([3, 0, 4, 1, 2])
    out = extractor(obs.reshape(4, -1))
    shuffled = extractor(obs[:, order].reshape(4, -1))
    blocks = out[:, :S * D].reshape(4, S, D)
    assert torch.allclose(shuffled[:, :S * D].reshape(4, S, D), blocks[:, order], atol=1e-6)
    assert torch.allclose(shuffled[:, S * D:], out[:, S * D:], atol=1e-6)


def test_parameters_do_not_grow_with_symbols_or_window():
    sizes = {sum(p.numel() for p in _extractor(symbols, R, window).parameters())
             for symbols, window in [(3, 5), (30, 30), (100, 250)]}
    assert sizes == {2 * R * D + D}


def test_gradients_reach_every_parameter():
    extractor = _extractor()
    extractor(torch.randn(16, S * R * W)).pow(2).sum().backward()
    for name, parameter in extractor.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("space, symbols, window, message", [
    (_flat_space(), S, W + 1, "does not split"),
    (spaces.Box(-1.0, 1.0, shape=(S, R, W), dtype=np.float32), S + 1, W, "is not"),
    (spaces.Discrete(3), S, W, "needs a Box"),
])
def test_a_layout_that_does_not_fit_is_refused(space, symbols, window, message):
    with pytest.raises(ObservationLayoutError, match=message):
        observation_layout(space, symbols, window)


def test_the_env_observation_splits_into_symbols_rows_and_window():
    market = random_market(t=60, n=3, f=2)
    for config, rows in [(EnvConfig(window_size=5), 3),
                         (EnvConfig(window_size=5, include_positions=False), 2)]:
        env = make_env(market, config)
        assert observation_layout(env.observation_space, 3, 5) == (3, rows, 5)


# ----------------------------------------------------------------------------- trainer

ENV = EnvConfig(window_size=5, episode_length=40, random_start=True, long_only=False)
FAST = TrainConfig(total_timesteps=256, n_envs=4, n_steps=32, batch_size=64, n_epochs=2,
                   net_arch=[16], seed=3, vec_env="batched", policy_extractor="shared_symbol",
                   extractor_symbol_dim=4, fused_optimizer=True)


@pytest.fixture(scope="module")
def market():
    return random_market(t=120, n=3, f=2, seed=1)


def test_the_faster_settings_reach_the_sb3_model(market):
    model = build_model(FAST, make_vec_env(market, ENV, FAST))
    assert isinstance(model.env.unwrapped, BatchedTradingVecEnv)  # vec_env
    extractor = model.policy.features_extractor
    assert isinstance(extractor, SharedSymbolExtractor)  # policy_extractor
    assert (extractor.n_symbols, extractor.n_rows, extractor.window) == (3, 3, 5)
    assert extractor.symbol_dim == 4 and extractor.features_dim == 16  # extractor_symbol_dim
    group = model.policy.optimizer.param_groups[0]
    assert group["fused"] is True and group["eps"] == 1e-5  # fused_optimizer, SB3's PPO eps
    assert isinstance(model.rollout_buffer, LeanRolloutBuffer)


def test_the_defaults_are_sb3s_own_model(market):
    default = TrainConfig(n_envs=2, n_steps=32, batch_size=64)
    model = build_model(default, make_vec_env(market, ENV, default))
    assert type(model.policy.features_extractor).__name__ == "FlattenExtractor"
    assert type(model.rollout_buffer).__name__ == "RolloutBuffer"
    assert not model.policy.optimizer.param_groups[0]["fused"]
    assert type(model.env.unwrapped).__name__ == "DummyVecEnv"


def test_training_with_the_faster_settings_checkpoints_and_resumes(market, tmp_path):
    first = train_policy(market, ENV, FAST, checkpoint_dir=tmp_path / "a")
    assert first.num_timesteps == 256 and "sharpe" in first.metrics
    checkpoint = load_checkpoint(first.checkpoint_path)
    assert checkpoint.train_config == FAST
    loaded = checkpoint.load_model()
    assert isinstance(loaded.policy.features_extractor, SharedSymbolExtractor)
    obs, _ = make_env(market, ENV.whole_period(), seed=0).reset()
    action, _ = loaded.predict(obs, deterministic=True)
    assert action.shape == (3,)
    resumed = train_policy(market, ENV, FAST.model_copy(update={"total_timesteps": 384}),
                           checkpoint_dir=tmp_path / "b", resume_checkpoint=first.checkpoint_path)
    assert resumed.num_timesteps == 384
    with pytest.raises(CheckpointError, match="policy_extractor"):
        train_policy(market, ENV, FAST.model_copy(update={"policy_extractor": "flat"}),
                     checkpoint_dir=tmp_path / "c", resume_checkpoint=first.checkpoint_path)
    with pytest.raises(CheckpointError, match="extractor_symbol_dim"):
        train_policy(market, ENV, FAST.model_copy(update={"extractor_symbol_dim": 8}),
                     checkpoint_dir=tmp_path / "d", resume_checkpoint=first.checkpoint_path)


def test_the_same_seed_trains_the_same_shared_symbol_policy(market, tmp_path):
    a = train_policy(market, ENV, FAST, checkpoint_dir=tmp_path / "a")
    b = train_policy(market, ENV, FAST, checkpoint_dir=tmp_path / "b")
    assert a.metrics == b.metrics and a.episode_metrics == b.episode_metrics


def test_sac_and_discrete_actions_work_with_the_shared_extractor(market):
    sac = TrainConfig(algo="sac", n_envs=2, batch_size=16, learning_starts=8, buffer_size=100,
                      net_arch=[8], policy_extractor="shared_symbol", fused_optimizer=True,
                      vec_env="batched")
    model = build_model(sac, make_vec_env(market, ENV, sac))
    model.learn(24)
    assert isinstance(model.actor.features_extractor, SharedSymbolExtractor)
    discrete_env = ENV.model_copy(update={"action_scheme": "discrete"})
    ppo = FAST.model_copy(update={"fused_optimizer": False})
    model = build_model(ppo, make_vec_env(market, discrete_env, ppo))
    model.learn(128)
    assert model.num_timesteps == 128


def test_fused_optimizer_is_refused_for_a2c():
    with pytest.raises(ValueError, match="fused_optimizer needs Adam"):
        TrainConfig(algo="a2c", fused_optimizer=True)
