"""The feature sets the platform ships: a small one for demos and the full research set."""

from __future__ import annotations

from typing import Any

from tt_platform.features.spec import FeatureSet, FeatureSpec


def _spec(name: str, function: str, **params: Any) -> FeatureSpec:
    return FeatureSpec(name=name, function=function, params=params)


def basic_feature_set() -> FeatureSet:
    """Returns over 1/5/20 bars, 1-bar log return and 20-bar volatility."""
    return FeatureSet(
        name="basic",
        version="1",
        features=(
            _spec("ret_1", "return", window=1),
            _spec("ret_5", "return", window=5),
            _spec("ret_20", "return", window=20),
            _spec("log_ret_1", "log_return", window=1),
            _spec("vol_20", "volatility", window=20),
        ),
    )


def full_feature_set() -> FeatureSet:
    """Every feature group: price, volume, cross-sectional and regime (36 columns)."""
    price = (
        _spec("ret_1", "return", window=1),
        _spec("ret_5", "return", window=5),
        _spec("ret_20", "return", window=20),
        _spec("log_ret_1", "log_return", window=1),
        _spec("log_ret_5", "log_return", window=5),
        _spec("sma_dev_10", "sma_deviation", window=10),
        _spec("sma_dev_20", "sma_deviation", window=20),
        _spec("sma_dev_50", "sma_deviation", window=50),
        _spec("vol_5", "volatility", window=5),
        _spec("vol_20", "volatility", window=20),
        _spec("vol_60", "volatility", window=60),
        _spec("atr_pct_14", "atr_pct", period=14),
        _spec("true_range_pct", "true_range_pct"),
        _spec("gap_pct", "gap_pct"),
        _spec("range_compression_5_20", "range_compression", short=5, long=20),
        _spec("close_location", "close_location"),
        _spec("dist_high_20", "distance_from_high", window=20),
        _spec("dist_low_20", "distance_from_low", window=20),
        _spec("rsi_14", "rsi", period=14),
    )
    volume = (
        _spec("volume_z_20", "volume_zscore", window=20),
        _spec("volume_z_60", "volume_zscore", window=60),
        _spec("volume_ratio_20", "volume_ratio", window=20),
        _spec("volume_spike_20", "volume_spike", window=20, threshold=2.0),
    )
    cross_sectional = (
        _spec("rs_bench_20", "relative_strength_benchmark", window=20),
        _spec("rs_bench_60", "relative_strength_benchmark", window=60),
        _spec("rs_median_20", "relative_strength_median", window=20),
        _spec("rs_median_60", "relative_strength_median", window=60),
        _spec("mom_rank_20", "momentum_rank", window=20),
        _spec("mom_rank_60", "momentum_rank", window=60),
        _spec("mom_rank_120", "momentum_rank", window=120),
    )
    regime = (
        _spec("vol_ratio_20_120", "volatility_ratio", short=20, long=120),
        _spec("vol_regime", "volatility_regime", short=20, long=120, low=0.8, high=1.25),
        _spec("adx_14", "adx", period=14),
        _spec("di_spread_14", "di_spread", period=14),
        _spec("ema_slope_20", "ema_slope", period=20, lag=5),
        _spec("trend_label", "trend_label", ema_period=20, lag=5, adx_period=14, adx_threshold=20.0),
    )
    return FeatureSet(name="full", version="1", features=price + volume + cross_sectional + regime)


FEATURE_SETS = {"basic": basic_feature_set, "full": full_feature_set}


def get_feature_set(name: str) -> FeatureSet:
    """A shipped feature set by name (``basic`` or ``full``), e.g. from a run config."""
    try:
        return FEATURE_SETS[name]()
    except KeyError:
        raise KeyError(f"unknown feature set {name!r}; shipped: {sorted(FEATURE_SETS)}") from None
