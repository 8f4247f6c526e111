"""Before anything connects, the session's config is checked against the verified policy: the
universe (symbols or a watchlist file) and the interval must be the policy's own."""

from __future__ import annotations

import pytest

from tt_platform.live.config import LiveConfigError, parse_live_config
from tt_platform.live.launch import prepare
from tt_platform.settings import PlatformSettings
from tt_platform_tests.live.policy_factory import train_tiny_policy


@pytest.fixture
def policy(store_engine, tmp_path):
    return train_tiny_policy(store_engine, tmp_path / "policies")


def _prepare(store_engine, tmp_path, policy, **section):
    config = parse_live_config({"policy": f"policy:{policy.policy_id}", **section})
    return prepare(config, settings=PlatformSettings(TT_HOME=str(tmp_path / "home")), store=store_engine, tracker=None)


@pytest.mark.parametrize("store_backend", ["embedded"], indirect=True)
def test_the_universe_and_interval_must_be_the_policys(store_engine, tmp_path, policy):
    prepared = _prepare(store_engine, tmp_path, policy, symbols=["CCC", "AAA", "BBB"], interval="1min")
    assert prepared.policy.symbols == ("AAA", "BBB", "CCC") and prepared.report_dir == tmp_path / "home" / "reports" / "live"
    with pytest.raises(LiveConfigError, match=r"symbols: policy ppo-tiny-live-s7 trades \['AAA', 'BBB', 'CCC'\]; "
                                              r"the config lists extra \['SPY'\] and lacks \['CCC'\]"):
        _prepare(store_engine, tmp_path, policy, symbols=["AAA", "BBB", "SPY"])
    watchlist = tmp_path / "watchlist.csv"
    watchlist.write_text("symbol\nAAA\nBBB\n")
    with pytest.raises(LiveConfigError, match=rf"watchlist {watchlist}: .* lacks \['CCC'\]"):
        _prepare(store_engine, tmp_path, policy, watchlist=str(watchlist))
    with pytest.raises(LiveConfigError, match="interval: policy ppo-tiny-live-s7 was trained on 1min bars, the config "
                                              "asks for 5min"):
        _prepare(store_engine, tmp_path, policy, interval="5min")
    with pytest.raises(LiveConfigError, match="warm_start_bars: 20 bars leave the policy's observations partly empty"):
        _prepare(store_engine, tmp_path, policy, warm_start_bars=20)
    with pytest.raises(LiveConfigError, match=r"watchlist: .*missing\.csv"):
        _prepare(store_engine, tmp_path, policy, watchlist=str(tmp_path / "missing.csv"))


def test_symbols_and_a_watchlist_together_are_refused():
    with pytest.raises(LiveConfigError, match="watchlist: Value error, give symbols or a watchlist, not both"):
        parse_live_config({"symbols": ["AAA"], "watchlist": "w.csv"})
