from datetime import date

import pandas as pd

from tt_platform.config.run_config import DataConfig
from tt_platform.data.synthetic import generate_bars
from tt_platform.data.sources.factory import source_for
from tt_platform.pipeline.market_data import ingest_window
from tt_platform.store.prices import read_bars


def write_csv_with_hole(folder, symbol: str, hole: str) -> pd.DataFrame:
    bars = generate_bars([symbol], "2021-03-01", "2021-03-31", seed=2)
    kept = bars[bars["ts"] != pd.Timestamp(hole, tz="UTC")]
    frame = kept.assign(date=kept["ts"].dt.strftime("%Y-%m-%d"))[["date", "open", "high", "low", "close", "volume"]]
    frame.to_csv(folder / f"{symbol}.csv", index=False)
    return bars


def test_csv_ingest_is_idempotent_and_skip_leaves_the_hole(tmp_path, store_engine):
    write_csv_with_hole(tmp_path, "AAA", "2021-03-10")
    data = DataConfig(source="csv", csv_dir=tmp_path, start=date(2021, 3, 1), end=date(2021, 3, 31))
    first = ingest_window(store_engine, source_for(data), data, ["AAA"], data.start, data.end)
    second = ingest_window(store_engine, source_for(data), data, ["AAA"], data.start, data.end)
    stored = read_bars(store_engine, ["AAA"])
    assert first == second == len(stored) == 22  # 23 sessions less the hole
    assert pd.Timestamp("2021-03-10", tz="UTC") not in set(stored["ts"])


def test_ffill_policy_stores_a_flat_bar_for_the_missing_session(tmp_path, store_engine):
    original = write_csv_with_hole(tmp_path, "AAA", "2021-03-10")
    data = DataConfig(source="csv", csv_dir=tmp_path, start=date(2021, 3, 1), end=date(2021, 3, 31), missing_bars="ffill")
    ingest_window(store_engine, source_for(data), data, ["AAA"], data.start, data.end)
    stored = read_bars(store_engine, ["AAA"]).set_index("ts")
    assert len(stored) == 23
    filled = stored.loc[pd.Timestamp("2021-03-10", tz="UTC")]
    previous_close = original.set_index("ts").loc[pd.Timestamp("2021-03-09", tz="UTC"), "close"]
    assert filled["volume"] == 0
    assert filled["open"] == filled["high"] == filled["low"] == filled["close"] == previous_close


def test_a_shorter_source_leaves_no_stale_rows(tmp_path, store_engine):
    bars = generate_bars(["AAA"], "2021-03-01", "2021-03-31", seed=2)
    frame = bars.assign(date=bars["ts"].dt.strftime("%Y-%m-%d"))[["date", "open", "high", "low", "close", "volume"]]
    frame.to_csv(tmp_path / "AAA.csv", index=False)
    data = DataConfig(source="csv", csv_dir=tmp_path, start=date(2021, 3, 1), end=date(2021, 3, 31))
    ingest_window(store_engine, source_for(data), data, ["AAA"], data.start, data.end)
    frame.iloc[:-5].to_csv(tmp_path / "AAA.csv", index=False)  # the vendor withdrew the last week
    ingest_window(store_engine, source_for(data), data, ["AAA"], data.start, data.end)
    assert len(read_bars(store_engine, ["AAA"])) == 18


def test_features_are_stored_long_and_cached_wide(tmp_path, store_engine):
    from tt_platform.features.cache import FeatureCache
    from tt_platform.features.sets import basic_feature_set
    from tt_platform.pipeline.features import build_features, load_feature_matrix

    data = DataConfig(source="synthetic", start=date(2021, 1, 4), end=date(2021, 6, 30))
    ingest_window(store_engine, source_for(data), data, ["AAA", "BBB"], date(2020, 9, 1), data.end)
    cache = FeatureCache(tmp_path / "cache")
    feature_set = basic_feature_set()
    first = build_features(store_engine, ["AAA", "BBB"], data.start, data.end, interval="1d", adjusted=False,
                           feature_set=feature_set, cache=cache)
    again = build_features(store_engine, ["AAA", "BBB"], data.start, data.end, interval="1d", adjusted=False,
                           feature_set=feature_set, cache=cache)
    assert (cache.misses, cache.hits) == (1, 1)
    assert first == again and first.rows > 0
    matrix = load_feature_matrix(store_engine, ["AAA", "BBB"], data.start, data.end, feature_set)
    assert matrix.feature_set_hash == feature_set.hash
    assert matrix.values.shape[1:] == (2, len(matrix.feature_names))
    assert matrix.mask.all()  # the warmup came from history before the window: every value is valid
