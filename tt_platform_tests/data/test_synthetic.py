import numpy as np
import pandas as pd
import pytest

from tt_platform.data.bars import BAR_COLUMNS
from tt_platform.data.synthetic import generate_bars, market_regimes


def test_shape_and_contract():
    bars = generate_bars(["spy", "AAA"], "2021-01-01", "2021-03-31")
    assert list(bars.columns) == BAR_COLUMNS
    assert str(bars["ts"].dtype) == "datetime64[ns, UTC]"
    assert set(bars["symbol"]) == {"SPY", "AAA"}
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    # XNYS sessions only: no weekends, 2021-01-18 (MLK day) closed
    days = bars.loc[bars.symbol == "SPY", "ts"].dt.date
    assert pd.Timestamp("2021-01-18").date() not in set(days)
    assert all(pd.Timestamp(d).dayofweek < 5 for d in days)


def test_deterministic_and_independent_of_universe_and_range():
    full = generate_bars(["AAA", "BBB", "CCC"], "2020-01-01", "2021-12-31", seed=3)
    narrow = generate_bars(["BBB"], "2021-06-01", "2021-06-30", seed=3)
    merged = narrow.merge(full, on=["symbol", "ts"], suffixes=("", "_full"))
    assert len(merged) == len(narrow) > 15
    assert np.allclose(merged["close"], merged["close_full"])
    other_seed = generate_bars(["BBB"], "2021-06-01", "2021-06-30", seed=4)
    assert not np.allclose(other_seed["close"], narrow["close"])


def test_assets_are_correlated_and_regimes_vary():
    bars = generate_bars(["A1", "A2", "A3", "A4"], "2015-01-01", "2021-12-31", seed=1)
    returns = bars.pivot(index="ts", columns="symbol", values="close").pct_change().dropna()
    corr = returns.corr().to_numpy()[np.triu_indices(4, 1)]
    assert (corr > 0.2).all()
    regimes = market_regimes("2015-01-01", "2021-12-31", seed=1)
    assert regimes.nunique() >= 2
    stressed = regimes.reindex(returns.index) == 2
    calm = regimes.reindex(returns.index) == 0
    if stressed.any() and calm.any():
        assert returns[stressed].std().mean() > returns[calm].std().mean()


def test_intraday_bars_sit_inside_the_session():
    bars = generate_bars(["AAA"], "2021-12-01", "2021-12-02", interval="1h")
    local = bars["ts"].dt.tz_convert("America/New_York")
    assert local.dt.time.min() >= pd.Timestamp("09:30").time()
    assert local.dt.time.max() < pd.Timestamp("16:00").time()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"start": "1990-01-01", "end": "1990-02-01"}, "synthetic data starts"),
        ({"start": "2021-02-01", "end": "2021-01-01"}, "is before start"),
        ({"start": "2021-01-01", "end": "2021-02-01", "interval": "2d"}, "unsupported interval"),
    ],
)
def test_bad_requests_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_bars(["AAA"], **kwargs)
