"""The batched VecEnv gives exactly what N single envs in SB3's DummyVecEnv give."""

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from tt_platform.env import EnvConfig, make_env
from tt_platform.env.vector import BatchedTradingVecEnv
from tt_platform_tests.env.markets import random_market

N_ENVS = 3
SEED = 7
# volatile prices and a tight drawdown stop: episodes end both ways (terminated and truncated)
STOPPING = dict(window_size=5, episode_length=30, random_start=True, long_only=False,
                max_drawdown=0.08, risk_target=1.0, per_symbol_cap=0.5)


@pytest.fixture(scope="module")
def market():
    return random_market(t=150, n=4, f=3, seed=5, vol=0.04)


def _pair(market, config, n_envs=N_ENVS, seed=SEED):
    single = DummyVecEnv([(lambda i=i: make_env(market, config, seed=seed + i))
                          for i in range(n_envs)])
    return single, BatchedTradingVecEnv(market, config, n_envs, seed=seed)


def _same_info(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        other = b[key]
        if isinstance(value, np.ndarray):
            assert value.dtype == other.dtype and np.array_equal(value, other), key
        else:
            assert value == other, key


def _actions(space, rng, n_envs):
    if hasattr(space, "nvec"):
        return rng.integers(0, space.nvec, size=(n_envs, len(space.nvec)))
    # beyond the bounds too: both paths must clip the same way
    return rng.uniform(-1.5, 1.5, size=(n_envs, *space.shape)).astype(np.float32)


@pytest.mark.parametrize("overrides", [
    {},
    {"observation": "tensor"},
    {"action_scheme": "discrete"},
    {"include_positions": False, "turnover_penalty": 0.5, "min_order_value": 500.0},
], ids=["flat-vol_target", "tensor", "discrete", "no-positions-costs"])
def test_batched_env_matches_n_single_envs_for_the_same_seeds(market, overrides):
    config = EnvConfig(**(STOPPING | overrides))
    single, batched = _pair(market, config)
    assert batched.observation_space == single.observation_space
    assert batched.action_space == single.action_space
    obs_a, obs_b = single.reset(), batched.reset()
    assert np.array_equal(obs_a, obs_b)
    for info_a, info_b in zip(single.reset_infos, batched.reset_infos, strict=True):
        _same_info(info_a, info_b)
    rng = np.random.default_rng(0)
    ends = {"terminated": 0, "truncated": 0}
    for step in range(300):
        actions = _actions(single.action_space, rng, N_ENVS)
        obs_a, rew_a, done_a, infos_a = single.step(actions)
        obs_b, rew_b, done_b, infos_b = batched.step(actions)
        assert obs_b.dtype == obs_a.dtype and np.array_equal(obs_a, obs_b), step
        assert rew_b.dtype == rew_a.dtype and np.array_equal(rew_a, rew_b), step
        assert done_b.dtype == done_a.dtype and np.array_equal(done_a, done_b), step
        for info_a, info_b in zip(infos_a, infos_b, strict=True):
            _same_info(info_a, info_b)
            if "terminal_observation" in info_a:
                ends["truncated" if info_a["TimeLimit.truncated"] else "terminated"] += 1
        for info_a, info_b in zip(single.reset_infos, batched.reset_infos, strict=True):
            _same_info(info_a, info_b)
    # auto-reset was exercised on both kinds of episode end
    assert ends["terminated"] > 0 and ends["truncated"] > 0, ends


def test_seed_and_options_apply_at_the_next_reset_like_dummy_vec_env(market):
    config = EnvConfig(**STOPPING)
    single, batched = _pair(market, config, seed=0)
    for venv in (single, batched):
        venv.seed(123)
        venv.set_options({"start_index": 40})
    first_a, first_b = single.reset(), batched.reset()
    assert np.array_equal(first_a, first_b)
    assert [i["t"] for i in batched.reset_infos] == [40] * N_ENVS
    # seeds and options are used once: the next resets draw random starts again, identically
    again_a, again_b = single.reset(), batched.reset()
    assert np.array_equal(again_a, again_b)
    assert [i["t"] for i in single.reset_infos] == [i["t"] for i in batched.reset_infos]


def test_copy_i_is_the_single_env_seeded_seed_plus_i(market):
    config = EnvConfig(**STOPPING)
    batched = BatchedTradingVecEnv(market, config, N_ENVS, seed=SEED)
    batched.reset()
    for i in range(N_ENVS):
        alone = make_env(market, config, seed=SEED + i)
        _, info = alone.reset()
        assert batched.reset_infos[i]["t"] == info["t"]
    # copies start where their own seeds put them, not all at one bar
    assert len({info["t"] for info in batched.reset_infos}) > 1


def test_infos_are_snapshots_of_their_step(market):
    batched = BatchedTradingVecEnv(market, EnvConfig(**STOPPING), 2, seed=1)
    batched.reset()
    _, _, _, infos = batched.step(np.full((2, 4), 0.5, dtype=np.float32))
    kept = [info["positions"].copy() for info in infos]
    batched.step(np.full((2, 4), -0.5, dtype=np.float32))
    assert all(np.array_equal(k, info["positions"]) for k, info in zip(kept, infos, strict=True))


def test_attributes_and_methods_reach_every_copy(market):
    batched = BatchedTradingVecEnv(market, EnvConfig(**STOPPING), N_ENVS, seed=0)
    assert batched.get_attr("market") == [market] * N_ENVS
    assert [c.window_size for c in batched.get_attr("config", indices=[0, 2])] == [5, 5]
    batched.set_attr("custom_tag", "x", indices=1)
    assert batched.get_attr("custom_tag", indices=1) == ["x"]
    assert len(batched.env_method("reset", seed=3)) == N_ENVS
    assert batched.env_is_wrapped(DummyVecEnv) == [False] * N_ENVS
    with pytest.raises(ValueError, match="n_envs >= 1"):
        BatchedTradingVecEnv(market, EnvConfig(**STOPPING), 0)


def test_training_on_the_batched_env_gives_the_same_policy_as_on_dummy_vec_env(tmp_path):
    from tt_platform.training import TrainConfig, load_checkpoint, train_policy

    market = random_market(t=120, n=3, f=2, seed=1)
    env = EnvConfig(window_size=5, episode_length=40, random_start=True, long_only=False)
    train = TrainConfig(total_timesteps=256, n_envs=2, n_steps=64, batch_size=64, n_epochs=2,
                        net_arch=[16], seed=3)
    dummy = train_policy(market, env, train, checkpoint_dir=tmp_path / "dummy")
    batched = train_policy(market, env, train.model_copy(update={"vec_env": "batched"}),
                           checkpoint_dir=tmp_path / "batched")
    assert batched.metrics == dummy.metrics
    assert batched.episode_metrics == dummy.episode_metrics and dummy.episode_metrics
    weights = [load_checkpoint(r.checkpoint_path).load_model().policy.state_dict()
               for r in (dummy, batched)]
    assert all(np.array_equal(weights[0][k].numpy(), weights[1][k].numpy()) for k in weights[0])
