"""Look-ahead guard: changing anything after time t never changes any feature at or before t.

For every feature of the full set (cross-sectional ones included), on generated and real data:
bars after a cut are rescaled, spiked in volume, deleted, joined by bars at new timestamps and
by a symbol that lists after the cut; raw values, normalized values and masks at or before the
cut must stay bit-for-bit identical.
"""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tt_platform.data.bars import normalize_bars
from tt_platform.features.compute import compute_features
from tt_platform.features.sets import full_feature_set

from .helpers import load_market_lab, random_walk_bars

FEATURES = full_feature_set()


def perturb_after(bars: pd.DataFrame, cut: pd.Timestamp, seed: int, drop: float, symbols: list[str], extra: bool, new_symbol: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = bars.copy()
    later = (out["ts"] > cut) & out["symbol"].isin(symbols)
    n = int(later.sum())
    factor = np.exp(rng.normal(0, 0.2, n))
    for column in ("open", "high", "low", "close"):
        out.loc[later, column] = out.loc[later, column].to_numpy() * factor
    out.loc[later, "volume"] = np.round(out.loc[later, "volume"].to_numpy() * np.exp(rng.normal(0, 1.5, n)))
    after = out.index[out["ts"] > cut]
    if drop and len(after):
        out = out.drop(rng.choice(after, int(len(after) * drop), replace=False))
    additions = []
    if extra and (out["ts"] > cut).any():
        row = out[out["ts"] > cut].sample(1, random_state=seed % 2**31).copy()
        row["ts"] = row["ts"] + pd.Timedelta(hours=12)  # a timestamp no symbol had
        additions.append(row)
    if new_symbol:
        late = out[(out["symbol"] == out["symbol"].iloc[0]) & (out["ts"] > cut)].copy()
        late["symbol"] = "NEWCO"
        additions.append(late)
    if additions:
        out = pd.concat([out, *additions], ignore_index=True)
    return normalize_bars(out, origin="perturbed")


def assert_unchanged_up_to(before, after, cut: pd.Timestamp) -> None:
    rows_a = before.timestamps <= cut
    rows_b = after.timestamps <= cut
    assert before.timestamps[rows_a].equals(after.timestamps[rows_b])
    assert after.feature_names == before.feature_names
    for symbol in set(before.symbols) | set(after.symbols):
        if symbol not in before.symbols or symbol not in after.symbols:
            only = before if symbol in before.symbols else after
            rows = rows_a if only is before else rows_b
            assert not only.present[rows, only.symbols.index(symbol)].any(), symbol
            continue
        i, j = before.symbols.index(symbol), after.symbols.index(symbol)
        np.testing.assert_array_equal(before.raw[rows_a, i], after.raw[rows_b, j], err_msg=f"raw {symbol}")
        np.testing.assert_array_equal(before.values[rows_a, i], after.values[rows_b, j], err_msg=f"values {symbol}")
        np.testing.assert_array_equal(before.mask[rows_a, i], after.mask[rows_b, j], err_msg=f"mask {symbol}")


def perturbations(symbols: list[str], n_rows: int):
    return st.tuples(
        st.integers(0, n_rows - 2),
        st.integers(0, 2**32 - 1),
        st.sampled_from([0.0, 0.1, 0.5]),
        st.lists(st.sampled_from(symbols), min_size=1, unique=True),
        st.booleans(),
        st.booleans(),
    )


def check(bars, original, perturbation, benchmark):
    cut_index, seed, drop, symbols, extra, new_symbol = perturbation
    cut = original.timestamps[cut_index]
    changed = perturb_after(bars, cut, seed, drop, symbols, extra, new_symbol)
    assert_unchanged_up_to(original, compute_features(changed, FEATURES, benchmark_symbol=benchmark), cut)


GENERATED_SYMBOLS = ["SPY", "AAA", "BBB", "CCC"]
GENERATED = random_walk_bars(GENERATED_SYMBOLS, 260, seed=5)
# ragged: a few missing bars so the per-symbol layout is exercised
GENERATED = GENERATED.drop(GENERATED.sample(frac=0.05, random_state=1).index).reset_index(drop=True)


@pytest.mark.parametrize("benchmark", ["SPY", "ABSENT"])  # ABSENT: equal-weight fallback
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(perturbation=perturbations(GENERATED_SYMBOLS, 260))
def test_no_lookahead_on_generated_bars(benchmark, perturbation):
    original = compute_features(GENERATED, FEATURES, benchmark_symbol=benchmark)
    check(GENERATED, original, perturbation, benchmark)


REAL_SYMBOLS = ["SPY", "QQQ", "AAPL", "XLE", "TLT"]


@pytest.fixture(scope="module")
def real_bars(shared_data):
    return load_market_lab(shared_data, REAL_SYMBOLS, "2016-01-01", "2017-06-30")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(perturbation=perturbations(REAL_SYMBOLS, 370))
def test_no_lookahead_on_real_bars(real_bars, perturbation):
    original = compute_features(real_bars, FEATURES)
    assert original.benchmark == "SPY" and len(original.timestamps) >= 370
    check(real_bars, original, perturbation, "SPY")


def test_the_guard_detects_a_leak():
    """A centred rolling mean reads the future; the same check must catch it."""
    from tt_platform.features import ops

    bars = random_walk_bars(["AAA"], 60, seed=2)
    close = bars["close"].to_numpy()
    leaky = pd.Series(close).rolling(5, center=True).mean().to_numpy()
    changed = perturb_after(bars, bars["ts"].iloc[30], 1, 0.0, ["AAA"], False, False)
    leaky_changed = pd.Series(changed["close"].to_numpy()).rolling(5, center=True).mean().to_numpy()
    assert not np.array_equal(leaky[:31], leaky_changed[:31], equal_nan=True)
    causal = ops.rolling_mean(close[:, None], 5)[:31]
    causal_changed = ops.rolling_mean(changed["close"].to_numpy()[:, None], 5)[:31]
    np.testing.assert_array_equal(causal, causal_changed)
