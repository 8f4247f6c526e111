import pandas as pd
import pytest

from tt_platform.data.corporate_actions.validation import InvalidActionsError
from tt_platform.store.corporate_actions import read_corporate_actions, write_corporate_actions
from tt_platform.store.registry import (
    WatchlistConflictError,
    latest_watchlist,
    read_instruments,
    read_watchlist,
    record_watchlist,
    upsert_instruments,
)


def test_watchlist_snapshots_are_recorded_once_and_conflicts_refused(store_engine):
    assert record_watchlist(store_engine, "h1", ["spy", "QQQ"], "config") is True
    assert record_watchlist(store_engine, "h1", ["SPY", "QQQ"], "config") is False
    with pytest.raises(WatchlistConflictError, match="h1"):
        record_watchlist(store_engine, "h1", ["SPY"], "config")
    assert read_watchlist(store_engine, "h1") == ["SPY", "QQQ"]
    assert read_watchlist(store_engine, "unknown") is None
    record_watchlist(store_engine, "h2", ["IWM"], "config")
    assert latest_watchlist(store_engine) == ("h2", ["IWM"])
    with pytest.raises(ValueError, match="duplicate symbols"):
        record_watchlist(store_engine, "h3", ["A", "a"], "config")


def test_instruments_upsert_only_the_given_columns(store_engine):
    upsert_instruments(
        store_engine,
        pd.DataFrame(
            {"symbol": ["aapl", "XYZ"], "con_id": [265598, None], "exchange": ["SMART", None],
             "unresolved_reason": [None, "no security definition"]}
        ),
    )
    upsert_instruments(store_engine, pd.DataFrame({"symbol": ["XYZ"], "active": [False]}))
    out = read_instruments(store_engine).set_index("symbol")
    assert out.loc["AAPL", "con_id"] == 265598 and out.loc["AAPL", "exchange"] == "SMART"
    assert out.loc["XYZ", "unresolved_reason"] == "no security definition"  # untouched by the 2nd call
    assert bool(out.loc["XYZ", "active"]) is False
    assert read_instruments(store_engine, active_only=True)["symbol"].tolist() == ["AAPL"]


def test_corporate_actions_round_trip_from_real_files(store_engine, shared_data):
    raw = pd.read_csv(shared_data / "corporate_actions" / "derived_lean_corporate_actions.csv")
    actions = pd.DataFrame(
        {
            "symbol": raw["symbol"],
            "ex_date": pd.to_datetime(raw["ex_date"]).dt.tz_localize("UTC"),
            "action_type": raw["type"],
            "value": raw["value"],
            "source": raw["source"],
        }
    )
    # The derived file repeats some events (e.g. BAC 1998-10-01, before the ticker changed
    # hands): the key refuses them instead of keeping an arbitrary one.
    with pytest.raises(InvalidActionsError, match=r"symbol BAC, ex_date 1998-10-01.* 3 rows of the batch share"):
        write_corporate_actions(store_engine, actions)
    aapl_only = actions[actions["symbol"] == "AAPL"]
    assert write_corporate_actions(store_engine, aapl_only) == len(aapl_only) == 39
    aapl = read_corporate_actions(store_engine, "AAPL", start="2014-01-01", end="2014-12-31")
    splits = aapl[aapl["action_type"] == "split"]
    assert splits["ex_date"].tolist() == [pd.Timestamp("2014-06-09", tz="UTC")]
    assert splits["value"].tolist() == [7.0]
    assert (aapl["action_type"] == "cash_dividend").sum() == 4
