from datetime import date

import dagster as dg
import pytest

from tt_platform.config.run_config import DataConfig
from tt_platform.data.sessions import last_completed_session
from tt_platform.data.sources.csv import CsvBarSource
from tt_platform.data.sources.synthetic import SyntheticBarSource
from tt_platform.defs.market_data.resources import BarSourceResource, MarketClockResource
from tt_platform.defs.platform.lineage import handle_from_metadata, handle_metadata
from tt_platform.pipeline.handles import PolicyHandle, WatchlistSnapshot
from tt_platform.settings import PlatformSettings


def test_the_clock_pins_a_past_session_and_never_a_future_one():
    assert MarketClockResource(as_of="2021-03-31").last_session() == date(2021, 3, 31)
    assert MarketClockResource(as_of="2999-01-01").last_session() == last_completed_session()
    with pytest.raises(ValueError, match="market_clock.as_of: '31/03/2021' is not a date"):
        MarketClockResource(as_of="31/03/2021").last_session()


def test_the_source_resource_builds_one_class_per_source(tmp_path):
    settings = PlatformSettings(TT_HOME=str(tmp_path))
    assert isinstance(BarSourceResource().build(DataConfig(source="synthetic"), settings), SyntheticBarSource)
    assert isinstance(BarSourceResource().build(DataConfig(source="csv", csv_dir=tmp_path), settings), CsvBarSource)
    ib = BarSourceResource(ib_port=4199, max_open_requests=10).ib_config(settings)
    assert (ib.host, ib.port, ib.client_id, ib.max_open_requests) == ("127.0.0.1", 4199, 17, 10)


def test_handles_round_trip_through_materialization_metadata():
    for handle in (WatchlistSnapshot("abc", ("SPY", "QQQ"), "run config"), PolicyHandle("ppo-1-s42", "cfg", "fs", "data")):
        metadata = {k: v if isinstance(v, dg.MetadataValue) else dg.MetadataValue.text(v) for k, v in handle_metadata(handle).items()}
        assert handle_from_metadata(dg.AssetKey("x"), metadata) == handle
    with pytest.raises(dg.Failure, match="carries no 'handle' metadata; materialize trained_policy again"):
        handle_from_metadata(dg.AssetKey("trained_policy"), {})
