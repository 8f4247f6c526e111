import logging
import threading
import time

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tt_platform.store.query import read_frame
from tt_platform.store.schema import action, episode, prices, quality_results
from tt_platform.store.upsert import UpsertError, upsert_frame
from tt_platform_tests.store.bars_factory import random_bars

KEY = ["instrument", "interval", "adjusted", "ts"]


def price_rows(n=50, symbols=("AAA", "BBB"), seed=0) -> pd.DataFrame:
    rows = random_bars(symbols, n, seed=seed).rename(columns={"symbol": "instrument"})
    return rows.assign(interval="1d", adjusted=False, source="test")


def stored(engine, table=prices, order=("instrument", "ts")) -> pd.DataFrame:
    return read_frame(engine, sa.select(*table.columns).order_by(*[table.c[c] for c in order]))


def test_upsert_twice_gives_the_same_rows_and_the_rerun_writes_nothing(store_engine):
    rows = price_rows()
    assert upsert_frame(store_engine, prices, rows, KEY) == len(rows)
    first = stored(store_engine)
    assert upsert_frame(store_engine, "tt_prices", rows, KEY) == 0
    again = stored(store_engine)
    pd.testing.assert_frame_equal(first, again)  # ingested_at included: nothing rewritten
    assert len(again) == len(rows)


def test_conflicting_rows_are_updated_and_their_ingested_at_refreshed(store_engine):
    rows = price_rows()
    upsert_frame(store_engine, prices, rows, KEY)
    before = stored(store_engine).set_index(["instrument", "ts"])
    changed = rows.copy()
    changed.loc[[0, 7], "close"] = [1.25, 2.5]
    changed.loc[3, "source"] = "vendor-fix"
    assert upsert_frame(store_engine, prices, changed, KEY) == 3
    after = stored(store_engine).set_index(["instrument", "ts"])
    keys = [tuple(changed.loc[i, ["instrument", "ts"]]) for i in (0, 3, 7)]
    assert after.loc[keys[0], "close"] == 1.25 and after.loc[keys[2], "close"] == 2.5
    assert after.loc[keys[1], "source"] == "vendor-fix"
    refreshed = after["ingested_at"] > before["ingested_at"]
    assert sorted(refreshed[refreshed].index) == sorted(keys)


def test_update_columns_limit_what_changes_and_empty_means_insert_only(store_engine):
    rows = price_rows(n=5, symbols=("AAA",))
    upsert_frame(store_engine, prices, rows, KEY)
    edited = rows.assign(open=rows["open"] + 1, close=rows["close"] + 1)
    upsert_frame(store_engine, prices, edited, KEY, update_columns=["close"])
    out = stored(store_engine)
    np.testing.assert_array_equal(out["open"], rows["open"])
    np.testing.assert_array_equal(out["close"], edited["close"])
    extra = price_rows(n=6, symbols=("AAA",)).assign(close=-1.0)
    assert upsert_frame(store_engine, prices, extra, KEY, update_columns=[]) == 1  # only the new 6th bar
    out = stored(store_engine)
    assert (out["close"] == -1.0).sum() == 1 and len(out) == 6


def _bad_batches():
    rows = price_rows(n=20)
    null_close = rows.copy()
    null_close.loc[12, "close"] = np.nan
    text_in_float = rows.astype({"open": object})
    text_in_float.loc[5, "open"] = "abc"
    duplicated = pd.concat([rows, rows.iloc[[3]]], ignore_index=True)
    return {
        "null in NOT NULL": (null_close, r"NOT NULL column 'close' at row 12"),
        "text in a float column": (text_in_float, r"tt_prices\.open: expected a number, got 'abc' at row 5"),
        "duplicate keys": (duplicated, r"2 rows sharing a key"),
    }


@pytest.mark.parametrize("case", list(_bad_batches()))
def test_a_bad_batch_raises_and_leaves_the_table_unchanged(store_engine, case):
    upsert_frame(store_engine, prices, price_rows(n=20).assign(close=1.0), KEY)
    before = stored(store_engine)
    frame, message = _bad_batches()[case]
    with pytest.raises(UpsertError, match=message):
        upsert_frame(store_engine, prices, frame, KEY)
    pd.testing.assert_frame_equal(stored(store_engine), before)


def test_a_batch_refused_by_the_database_half_way_writes_nothing(store_engine):
    now = pd.Timestamp("2024-01-02", tz="UTC")
    upsert_frame(store_engine, episode, pd.DataFrame([{"episode_id": "e1", "kind": "eval", "started_at": now}]), ["episode_id"])
    steps = pd.DataFrame(
        {
            "episode_id": ["e1"] * 999 + ["missing-episode"],
            "step": range(1000),
            "ts": now,
            "instrument": "AAA",
            "action": 0.5,
        }
    )
    with pytest.raises(UpsertError, match="nothing written.*foreign key"):
        upsert_frame(store_engine, action, steps, ["episode_id", "step", "instrument"], chunk_rows=100)
    with store_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(action)).scalar() == 0


def test_with_a_connection_a_failed_upsert_only_undoes_itself(store_engine):
    good, bad = price_rows(n=3, symbols=("AAA",)), price_rows(n=3, symbols=("BBB",))
    bad.loc[1, "volume"] = None
    with store_engine.begin() as conn:
        assert upsert_frame(conn, prices, good, KEY) == 3
        with pytest.raises(UpsertError):
            upsert_frame(conn, prices, bad, KEY)
        # the caller's transaction is still usable after the failure
        assert conn.execute(sa.select(sa.func.count()).select_from(prices)).scalar() == 3
    assert stored(store_engine)["instrument"].unique().tolist() == ["AAA"]


def test_timestamps_round_trip_as_the_same_instants(store_engine):
    local = pd.Series(
        pd.to_datetime(
            ["2021-03-14 01:59:59.999999", "2021-03-14 03:00:00.000001", "1999-12-31 19:00:00"], format="ISO8601"
        ).tz_localize("America/New_York")
    )
    rows = pd.DataFrame(
        {"instrument": ["X", "X", "X"], "interval": "1m", "adjusted": True, "ts": local,
         "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 0.0, "source": "tz"}
    )
    upsert_frame(store_engine, prices, rows, KEY)
    out = stored(store_engine)
    assert str(out["ts"].dtype) == "datetime64[ns, UTC]"
    assert out["ts"].tolist() == sorted(local.dt.tz_convert("UTC").tolist())
    with store_engine.connect() as conn:
        utc_text = conn.exec_driver_sql(
            "SELECT to_char(min(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM tt_prices"
        ).scalar()
    assert utc_text == "2000-01-01 00:00:00.000000"


def test_json_booleans_nulls_and_unicode_round_trip(store_engine):
    rows = pd.DataFrame(
        {
            "check_name": ["gaps", "gaps", "ohlc"],
            "instrument": ["ÄÖÜ", "*", "AAA"],
            "partition_key": "2024-01-02",
            "adjusted": False,
            "passed": [True, False, True],
            "severity": ["warn", "error", "info"],
            "value": [np.nan, 3.0, 0.0],
            "details": [{"missing": ["2024-01-01"], "ratio": np.float64(0.5)}, None, {"nested": {"ok": True}}],
        }
    )
    assert upsert_frame(store_engine, quality_results, rows, ["check_name", "instrument", "partition_key", "adjusted"]) == 3
    out = stored(store_engine, quality_results, order=("check_name", "instrument")).set_index("instrument")
    assert out.loc["ÄÖÜ", "details"] == {"missing": ["2024-01-01"], "ratio": 0.5}
    assert out.loc["*", "details"] is None and out.loc["AAA", "details"] == {"nested": {"ok": True}}
    assert out["passed"].tolist() == [False, True, True]  # ordered by instrument: *, AAA, ÄÖÜ
    assert np.isnan(out.loc["ÄÖÜ", "value"]) and out.loc["*", "value"] == 3.0
    # unchanged JSON compares equal: the rerun writes nothing
    assert upsert_frame(store_engine, quality_results, rows, ["check_name", "instrument", "partition_key", "adjusted"]) == 0


def test_many_chunks_and_many_layouts_are_all_written(store_engine):
    rows = price_rows(n=400, symbols=[f"S{i:02d}" for i in range(30)])
    rows["source"] = [f"src-{i}" for i in range(len(rows))]  # one layout per row: row-wise encoding
    assert upsert_frame(store_engine, prices, rows, KEY, chunk_rows=1_000) == len(rows)
    out = stored(store_engine)
    pd.testing.assert_frame_equal(
        out.drop(columns="ingested_at").reset_index(drop=True),
        rows[out.columns.drop("ingested_at")].reset_index(drop=True),
        check_dtype=False,
    )


@pytest.mark.parametrize(
    ("mutate", "keys", "message"),
    [
        (lambda f: f.assign(colour="red"), KEY, r"columns \['colour'\] are not in the table"),
        (lambda f: f, ["instrument", "ts"], "neither the primary key nor a unique constraint"),
        (lambda f: f.drop(columns="source"), KEY, r"required columns \['source'\] are missing"),
        (lambda f: f.drop(columns="ts"), KEY, r"key columns \['ts'\] are missing"),
    ],
)
def test_frames_that_do_not_fit_the_table_are_refused_before_any_io(mutate, keys, message):
    with pytest.raises(UpsertError, match=message):
        upsert_frame(None, prices, mutate(price_rows(n=2)), keys)  # no engine needed to refuse


def test_empty_frame_writes_nothing(store_engine):
    assert upsert_frame(store_engine, prices, price_rows(n=2).iloc[0:0], KEY) == 0


def test_a_concurrent_insert_of_the_same_key_falls_back_to_on_conflict(store_engine, caplog):
    caplog.set_level(logging.INFO, logger="tt_platform.store.upsert")
    first, second = price_rows(n=3, symbols=("AAA",)), price_rows(n=3, symbols=("AAA",)).assign(close=42.0)
    outcome = {}

    def later_writer():
        outcome["written"] = upsert_frame(store_engine, prices, second, KEY)

    with store_engine.connect() as holder:
        holder.begin()
        upsert_frame(holder, prices, first, KEY)  # inserted, not yet committed
        holder_pid = holder.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        thread = threading.Thread(target=later_writer)
        thread.start()
        with store_engine.connect() as watcher:  # wait until the later writer blocks on our keys
            for _ in range(500):
                waiting = watcher.execute(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))"),
                    {"holder": holder_pid},
                ).scalar()
                watcher.rollback()  # activity is snapshotted per transaction
                if waiting:
                    break
                time.sleep(0.02)
            activity = watcher.exec_driver_sql(
                "SELECT pid, state, wait_event_type, wait_event, left(query, 50) FROM pg_stat_activity "
                "WHERE datname = current_database()"
            ).all()
        assert waiting, f"the second writer never waited for the first: {outcome} {activity}"
        holder.commit()
    thread.join(timeout=60)
    assert outcome["written"] == 3  # all three rows updated through the fallback
    assert (stored(store_engine)["close"] == 42.0).all()
    assert "concurrent insert" in caplog.text
