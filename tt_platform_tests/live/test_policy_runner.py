"""The policy runner: a real trained policy over a rolling window of bars gives the target weights
the training env would give at the same bar -- same features, same observation, same action
scheme -- never looks past the bar it decides on, and keeps the window it needs and no more."""

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tt_platform.env.components import WindowObserver
from tt_platform.env.factory import make_action_scheme
from tt_platform.env.market import MarketData
from tt_platform.env.state import EpisodeState
from tt_platform.features.compute import compute_features
from tt_platform.live.policy_runner import HISTORY_MARGIN, PolicyRunner
from tt_platform.live.policy_source import verify_policy
from tt_platform.store.engine import create_store_engine
from tt_platform.store.policies import get_policy
from tt_platform_tests.fixtures.db import truncate_all
from tt_platform_tests.live.policy_factory import (
    SYMBOLS,
    minute_bars,
    run_config,
    train_tiny_policy,
)

# minutes per year of 6.5-hour sessions: how MarketData annualises minute-bar volatility
MINUTES_PER_YEAR = 252 * 6.5 * 60


@pytest.fixture(scope="module")
def policies(tmp_path_factory, embedded_postgres, schema_registry):
    """The factory's policy (volatility-targeted actions) and one with discrete actions, each
    trained once for the module and verified as a session verifies it."""
    engine = create_store_engine(schema_registry.migrated(embedded_postgres.url()), poolclass=sa.pool.NullPool)
    folder = tmp_path_factory.mktemp("policies")
    verified = {}
    try:
        truncate_all(engine)
        for scheme, config in (("vol_target", None), ("discrete", run_config(**{"env.action_scheme": "discrete"}))):
            trained = train_tiny_policy(engine, folder, policy_id=f"ppo-tiny-{scheme}-s7", store_bars=False,
                                        config=config)
            policy = verify_policy(get_policy(engine, trained.policy_id), trained.policy_id)
            verified[scheme] = (policy, policy.load_model())
    finally:
        engine.dispose()
    return verified


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    """The bars the policy was trained on: three sessions of minute bars of three symbols."""
    return minute_bars()


@pytest.fixture(scope="module")
def stamps(bars) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(bars["ts"].drop_duplicates().sort_values())


def runner(policies, scheme: str = "vol_target", **kwargs) -> PolicyRunner:
    policy, model = policies[scheme]
    return PolicyRunner(policy, model, **kwargs)


def up_to(bars: pd.DataFrame, t: pd.Timestamp) -> pd.DataFrame:
    return bars[bars["ts"] <= t]


def perturb_after(bars: pd.DataFrame, t: pd.Timestamp, seed: int = 1) -> pd.DataFrame:
    """``bars`` with every bar after ``t`` moved at random (prices scaled per bar, volume too)."""
    changed = bars.copy()
    later = changed["ts"] > t
    rng = np.random.default_rng(seed)
    factor = rng.uniform(0.5, 1.5, int(later.sum()))
    for column in ("open", "high", "low", "close"):
        changed.loc[later, column] = changed.loc[later, column] * factor
    changed.loc[later, "volume"] = changed.loc[later, "volume"] * rng.uniform(0.1, 10.0, int(later.sum()))
    return changed


def training_env_output(policy, model, bars: pd.DataFrame, t: pd.Timestamp, weights: np.ndarray):
    """What the training env computes at bar ``t`` over the whole history in ``bars`` (features
    over all of it, as the pipeline stores them): the action and its target weights."""
    env = policy.env_config
    market = MarketData.from_frames(bars, compute_features(bars, policy.feature_set))
    state = EpisodeState(market, env)
    state.t = market.timestamps.get_loc(t)
    state.weights = np.asarray(weights, dtype=np.float64)
    observation = WindowObserver(state, window=env.window_size, flat=env.observation == "flat",
                                 include_positions=env.include_positions, clip=env.obs_clip).observe(None)
    action, _ = model.predict(observation, deterministic=True)
    return np.asarray(action, dtype=np.float64).reshape(-1), make_action_scheme(state, env).target_weights(action)


def realised_volatility(bars: pd.DataFrame, t: pd.Timestamp, lookback: int) -> np.ndarray:
    """Annualised volatility of the last ``lookback`` one-minute log returns up to ``t``, per symbol."""
    closes = up_to(bars, t).pivot(index="ts", columns="symbol", values="close")[list(SYMBOLS)]
    returns = np.log(closes).diff().iloc[-lookback:]
    return returns.std(ddof=1).to_numpy() * np.sqrt(MINUTES_PER_YEAR)


# ---------------------------------------------------------------------------- the weights
def test_target_weights_follow_the_volatility_targeted_action_scheme(policies, bars, stamps):
    policy, _ = policies["vol_target"]
    env = policy.env_config
    held = runner(policies)
    t = stamps[400]
    held.extend(up_to(bars, t))
    output = held.evaluate(np.zeros(len(SYMBOLS)))
    assert output.bar_time == t
    assert output.target_weights.shape == output.action.shape == (len(SYMBOLS),)
    # weight_i = clip(a_i, -1, 1) x risk_target / max(vol_i, vol_floor) / N, vol from the closes alone
    scale = env.risk_target / np.maximum(realised_volatility(bars, t, env.vol_lookback), env.vol_floor) / len(SYMBOLS)
    np.testing.assert_allclose(output.target_weights, np.clip(output.action, -1, 1) * scale, rtol=1e-9)
    last = up_to(bars, t).groupby("symbol")["close"].last()
    np.testing.assert_array_equal(output.prices, last[list(SYMBOLS)].to_numpy())
    assert output.tradable.all() and output.features_valid == 1.0


def test_target_weights_follow_the_discrete_action_scheme(policies, bars, stamps):
    policy, _ = policies["discrete"]
    held = runner(policies, "discrete")
    for t in stamps[300:306]:
        held.extend(up_to(bars, t))
        output = held.evaluate(np.zeros(len(SYMBOLS)))
        assert output.target_weights.shape == (len(SYMBOLS),)
        # long-only: each symbol flat (0) or long one equal share of the leverage cap
        assert set(output.action) <= {0.0, 1.0}
        np.testing.assert_array_equal(output.target_weights, output.action * policy.env_config.leverage_cap / 3)


def test_the_same_bars_give_the_same_decision(policies, bars, stamps):
    t = stamps[500]
    first, second = runner(policies), runner(policies)
    first.extend(up_to(bars, t))
    # the same bars in another order and in pieces
    window = up_to(bars, t).sample(frac=1.0, random_state=3)
    for piece in np.array_split(np.arange(len(window)), 7):
        second.extend(window.iloc[piece])
    weights = np.array([0.1, 0.0, 0.2])
    outputs = [first.evaluate(weights), first.evaluate(weights), second.evaluate(weights)]
    for output in outputs[1:]:
        np.testing.assert_array_equal(output.action, outputs[0].action)
        np.testing.assert_array_equal(output.target_weights, outputs[0].target_weights)
        assert output.bar_time == outputs[0].bar_time == t


def test_the_weights_held_now_are_part_of_the_observation(policies, bars, stamps):
    held = runner(policies)
    held.extend(up_to(bars, stamps[500]))
    flat, invested = held.evaluate(np.zeros(3)), held.evaluate(np.array([0.3, 0.3, 0.3]))
    assert not np.array_equal(flat.action, invested.action)


# ---------------------------------------------------------------------------- no look-ahead
def test_the_decision_at_a_bar_ignores_every_later_bar(policies, bars, stamps):
    policy, model = policies["vol_target"]
    t = stamps[450]
    weights = np.array([0.05, 0.1, 0.0])
    live = runner(policies)
    live.extend(up_to(bars, t))
    decided = live.evaluate(weights)

    moved = perturb_after(bars, t)
    assert (moved["close"] != bars["close"]).sum() > 1000  # the future really is different
    # the training env at t over the whole history, with the true and with a different future
    for history in (bars, moved):
        action, target = training_env_output(policy, model, history, t, weights)
        np.testing.assert_allclose(decided.action, action, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(decided.target_weights, target, rtol=1e-5, atol=1e-9)

    # once later bars arrive a runner decides on the last of them, from what it holds: the
    # training env's decision at that bar
    other = runner(policies)
    other.extend(up_to(moved, t))
    later = stamps[455]
    other.extend(moved[(moved["ts"] > t) & (moved["ts"] <= later)])
    moved_on = other.evaluate(weights)
    assert moved_on.bar_time == later == other.last_bar_time()
    assert other.bars["ts"].max() == later
    action, target = training_env_output(policy, model, moved, later, weights)
    np.testing.assert_allclose(moved_on.target_weights, target, rtol=1e-5, atol=1e-9)


def test_past_bars_arriving_again_change_nothing(policies, bars, stamps):
    t = stamps[600]
    held = runner(policies)
    held.extend(up_to(bars, t))
    window = held.bars.copy()
    before = held.evaluate(np.zeros(3))
    # the last few bars sent again, and bars older than the window
    assert held.extend(bars[(bars["ts"] > stamps[590]) & (bars["ts"] <= t)]) == len(window)
    assert held.extend(bars[bars["ts"] <= stamps[100]]) == len(window)
    pd.testing.assert_frame_equal(held.bars, window)
    after = held.evaluate(np.zeros(3))
    np.testing.assert_array_equal(after.target_weights, before.target_weights)
    assert after.bar_time == t


def test_bar_by_bar_equals_the_window_at_once(policies, bars, stamps):
    stepping = runner(policies)
    stepping.extend(up_to(bars, stamps[300]))
    for t in stamps[301:311]:
        stepping.extend(bars[bars["ts"] == t])
        fresh = runner(policies)
        fresh.extend(up_to(bars, t))
        pd.testing.assert_frame_equal(stepping.bars, fresh.bars)
        np.testing.assert_array_equal(stepping.evaluate(np.zeros(3)).target_weights,
                                      fresh.evaluate(np.zeros(3)).target_weights)


# ---------------------------------------------------------------------------- the window
def test_extend_drops_duplicates_and_keeps_the_latest_version_of_a_bar(policies, bars, stamps):
    held = runner(policies)
    chunk = up_to(bars, stamps[50])
    assert held.extend(chunk) == len(chunk) == 51 * 3
    assert held.extend(chunk) == len(chunk)
    assert not held.bars.duplicated(["symbol", "ts"]).any()
    # a corrected bar replaces the one held
    last_bbb = chunk[(chunk["ts"] == stamps[50]) & (chunk["symbol"] == "BBB")]
    corrected = last_bbb.assign(close=last_bbb["close"] * 1.01, high=last_bbb["high"] * 1.02)
    assert held.extend(corrected) == len(chunk)
    row = held.bars[(held.bars["ts"] == stamps[50]) & (held.bars["symbol"] == "BBB")]
    assert len(row) == 1 and row["close"].iloc[0] == corrected["close"].iloc[0]
    # bars of symbols the policy does not trade are not kept
    stranger = chunk[chunk["symbol"] == "AAA"].assign(symbol="ZZZ")
    assert held.extend(stranger) == len(chunk) and set(held.bars["symbol"]) == set(SYMBOLS)
    assert held.extend(bars.iloc[:0]) == len(chunk)


def test_extend_keeps_only_the_last_history_bars_stamps(policies, bars, stamps):
    policy, _ = policies["vol_target"]
    held = runner(policies)
    needed = max(policy.feature_set.warmup_bars + policy.env_config.window_size, policy.env_config.vol_lookback + 1)
    assert held.history_bars == needed + HISTORY_MARGIN
    held.extend(up_to(bars, stamps[299]))
    assert list(held.bars["ts"].drop_duplicates()) == list(stamps[300 - held.history_bars:300])
    assert held.last_bar_time() == stamps[299]
    small = runner(policies, history_bars=30)
    for start in range(0, 120, 40):
        small.extend(bars[(bars["ts"] >= stamps[start]) & (bars["ts"] < stamps[start + 40])])
        assert small.bars["ts"].nunique() <= 30
    assert list(small.bars["ts"].drop_duplicates()) == list(stamps[90:120])
    assert (small.bars.groupby("ts").size() == 3).all()


def test_live_features_equal_the_training_features_once_the_window_is_long_enough(policies, bars, stamps):
    policy, _ = policies["vol_target"]
    window = policy.env_config.window_size
    stored = compute_features(bars, policy.feature_set)  # over the whole history, as the pipeline does
    t = stamps[700]
    row = stored.timestamps.get_loc(t)
    for history_bars in (None, policy.feature_set.warmup_bars + window):
        held = runner(policies, history_bars=history_bars)
        held.extend(up_to(bars, t))
        live = held.market()
        assert list(live.symbols) == list(SYMBOLS) and list(live.feature_names) == stored.feature_names
        offset = row - (live.n_steps - 1)
        assert list(live.timestamps) == list(stored.timestamps[offset:row + 1])
        both = live.feature_mask & stored.mask[offset:row + 1]
        np.testing.assert_allclose(live.features[both], stored.values[offset:row + 1][both], rtol=1e-5, atol=1e-6)
        # every feature the observation sees is valid, as in training
        assert live.feature_mask[-window:].all() and stored.mask[row - window + 1:row + 1].all()
        # the window's own warm-up is its only difference from the stored features: each feature
        # is valid from its warm-up on
        rows = np.arange(live.n_steps)
        for f, spec in enumerate(policy.feature_set.features):
            expected = np.repeat((rows >= policy.feature_set.feature_warmup(spec))[:, None], len(SYMBOLS), axis=1)
            np.testing.assert_array_equal(live.feature_mask[:, :, f], expected)
    # one bar fewer and the observation's oldest bar lacks its slowest feature
    short = runner(policies, history_bars=policy.feature_set.warmup_bars + window - 1)
    short.extend(up_to(bars, t))
    observed = short.market().feature_mask[-window:]
    assert not observed[0].all() and observed[1:].all()
    assert short.evaluate(np.zeros(3)).features_valid == 1.0  # the decision bar itself is complete


def test_too_little_history_is_refused_naming_what_is_missing(policies, bars, stamps):
    held = runner(policies)
    held.extend(up_to(bars, stamps[3]))
    with pytest.raises(ValueError, match=r"4 bars held; the policy's window needs 6"):
        held.evaluate(np.zeros(3))
    partial = runner(policies)
    partial.extend(up_to(bars, stamps[40])[lambda f: f["symbol"] != "CCC"])
    with pytest.raises(ValueError, match=r"no bars yet for \['CCC'\]"):
        partial.evaluate(np.zeros(3))
    assert runner(policies).last_bar_time() is None


def test_last_closes_are_each_symbols_newest_close_held(policies, bars):
    held = runner(policies)
    assert np.isnan(held.last_closes()).all()  # nothing held yet
    # a symbol missing from the newest bars keeps its own last close
    window = bars[~((bars["symbol"] == "BBB") & (bars["ts"] > bars["ts"].max() - pd.Timedelta(minutes=3)))]
    held.extend(window.sample(frac=1.0, random_state=3))
    expected = window.sort_values("ts").groupby("symbol")["close"].last()
    assert held.last_closes().tolist() == [float(expected[s]) for s in held.symbols]
