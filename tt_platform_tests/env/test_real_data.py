"""The env on real adjusted daily bars with the platform's own features."""

import numpy as np
import pandas as pd
import pytest

from tt_platform.data.importers import read_plain_csv
from tt_platform.env import EnvConfig, MarketData, make_env, rollout
from tt_platform.features.compute import compute_features
from tt_platform.features.sets import basic_feature_set

SYMBOLS = ["GLD", "SPY", "TLT"]  # sorted, as the feature matrix orders them


@pytest.fixture(scope="module")
def real_market(shared_data):
    folder = shared_data / "daily" / "market_lab_adjusted"
    bars = pd.concat([read_plain_csv(folder / f"{s}.csv", s) for s in SYMBOLS])
    bars = bars[(bars["ts"] >= "2018-01-01") & (bars["ts"] <= "2021-12-31")]
    matrix = compute_features(bars, basic_feature_set(), benchmark_symbol="SPY")
    return MarketData.from_frames(bars, matrix), bars


def test_equal_weight_long_rollout_matches_daily_rebalanced_returns(real_market):
    market, bars = real_market
    assert market.symbols == SYMBOLS and market.feature_set_hash
    # all three trade on NYSE days: every bar is tradable and closes are the raw closes
    assert market.tradable.all()
    spy = bars[bars["symbol"] == "SPY"].set_index("ts")["close"]
    np.testing.assert_allclose(market.close[:, 1], spy.reindex(market.timestamps).to_numpy())

    config = EnvConfig(window_size=20, action_scheme="discrete", long_only=True, leverage_cap=1.0,
                       per_symbol_cap=0.5, commission_bps=0, slippage_bps=0, max_drawdown=1.0,
                       equity_floor=0.0, episode_length=None, random_start=False)
    env = make_env(market, config)
    record = rollout(env, lambda obs: np.ones(3, dtype=np.int64))
    assert record.truncated and record.n_steps == market.n_steps - 20
    # rebalanced to 1/3 each at every close: equity grows by the mean of the symbols' returns
    returns = market.close[20:] / market.close[19:-1] - 1.0
    expected = 100_000 * np.cumprod(1.0 + returns.mean(axis=1))
    np.testing.assert_allclose(record.equity, expected, rtol=1e-9)


def test_warmup_features_are_masked_in_observations(real_market):
    market, _ = real_market
    assert not market.feature_mask[0].any()     # nothing is valid on the first bar
    env = make_env(market, EnvConfig(window_size=5, observation="tensor", random_start=False))
    obs, _ = env.reset()
    assert np.isfinite(obs).all()
    invalid = ~market.feature_mask[0:5].transpose(1, 2, 0)
    assert (obs[:, :-1, :][invalid] == 0.0).all()
