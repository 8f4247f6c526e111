from datetime import date

import pandas as pd
import pytest

from tt_platform.config.run_config import DataConfig
from tt_platform.pipeline.corporate_actions import import_actions, read_actions_file
from tt_platform.data.sources.factory import source_for
from tt_platform.pipeline.market_data import ingest_window
from tt_platform.store.corporate_actions import read_corporate_actions
from tt_platform.store.prices import read_bars


def test_quandl_sample_events_are_stored_once(shared_data, store_engine):
    path = shared_data / "corporate_actions" / "zipline_quandl_wiki" / "QUANDL_SAMPLE_TABLE.csv"
    import_actions(store_engine, path, "quandl")
    import_actions(store_engine, path, "quandl")  # idempotent
    stored = read_corporate_actions(store_engine, ["AAPL"])
    splits = stored[stored["action_type"] == "split"]
    assert len(splits) == 1 and splits["value"].iloc[0] == pytest.approx(7.0)
    assert splits["ex_date"].iloc[0] == pd.Timestamp("2014-06-09", tz="UTC")
    assert (stored["action_type"] == "cash_dividend").sum() == 4


def test_lean_needs_a_symbol(shared_data):
    with pytest.raises(ValueError, match="pass --symbol"):
        read_actions_file(shared_data / "corporate_actions" / "lean_factor_files" / "aapl.csv", "lean")


def test_adjusted_toggle_applies_stored_splits_to_raw_csv_bars(tmp_path, store_engine):
    raw = pd.DataFrame(
        {
            "date": ["2021-03-01", "2021-03-02", "2021-03-03", "2021-03-04"],
            "open": [100.0, 102.0, 51.0, 52.0],
            "high": [101.0, 103.0, 52.0, 53.0],
            "low": [99.0, 101.0, 50.0, 51.0],
            "close": [100.0, 102.0, 51.5, 52.5],
            "volume": [1000, 1000, 2000, 2000],
        }
    )
    raw.to_csv(tmp_path / "AAA.csv", index=False)
    (tmp_path / "actions.csv").write_text("symbol,ex_date,action_type,value\nAAA,2021-03-03,split,2\n")
    import_actions(store_engine, tmp_path / "actions.csv", "csv")
    for adjusted in (False, True):
        data = DataConfig(source="csv", csv_dir=tmp_path, start=date(2021, 3, 1), end=date(2021, 3, 4), adjusted=adjusted)
        ingest_window(store_engine, source_for(data), data, ["AAA"], data.start, data.end)
    unadjusted = read_bars(store_engine, ["AAA"], adjusted=False)["close"].tolist()
    adjusted = read_bars(store_engine, ["AAA"], adjusted=True)["close"].tolist()
    assert unadjusted == [100.0, 102.0, 51.5, 52.5]
    assert adjusted == pytest.approx([50.0, 51.0, 51.5, 52.5])


def test_adjusted_series_has_one_basis_whatever_the_ingest_windows(tmp_path, store_engine):
    dates = pd.bdate_range("2020-01-02", "2020-01-10")
    close = [100.0, 101.0, 102.0, 51.0, 51.5, 52.0, 52.5]  # 2:1 split on 2020-01-07
    raw = pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "open": close, "high": close, "low": close, "close": close, "volume": 10})
    raw.to_csv(tmp_path / "AAA.csv", index=False)
    (tmp_path / "actions.csv").write_text("symbol,ex_date,action_type,value\nAAA,2020-01-07,split,2\n")
    import_actions(store_engine, tmp_path / "actions.csv", "csv")
    data = DataConfig(source="csv", csv_dir=tmp_path, start=date(2020, 1, 2), end=date(2020, 1, 10), adjusted=True)
    for start, end in ((date(2020, 1, 2), date(2020, 1, 6)), (date(2020, 1, 7), date(2020, 1, 10))):
        ingest_window(store_engine, source_for(data), data, ["AAA"], start, end)
    adjusted = read_bars(store_engine, ["AAA"], adjusted=True)["close"].tolist()
    assert adjusted == pytest.approx([50.0, 50.5, 51.0, 51.0, 51.5, 52.0, 52.5])
