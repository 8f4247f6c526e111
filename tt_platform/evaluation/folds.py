"""Walk-forward folds: plan chronological train / validation / test slices over a bar index,
name them as stable Dagster partitions, stitch the per-fold out-of-sample equity curves into one
walk-forward curve and summarise several seeds per fold as a spread.

Pure functions of a ``pd.DatetimeIndex`` and a ``WalkForwardConfig``; nothing here touches data,
models or Dagster.

Fold geometry (see ``tt_platform.config.walk_forward`` for the schemes). Fold positions are
anchored at the first bar: fold ``k`` tests from bar ``lead_in + k * step``, where ``lead_in``
is ``train_bars + purge_bars`` (plus ``validation_bars + purge_bars`` with a validation slice).
So appending bars never moves an existing fold; it only lengthens a partial last fold or adds
new ones. The last test slice may run short of ``test_bars`` when the data ends: it is kept when
it holds at least half of ``test_bars`` (and at least 2 bars, the fewest that give a return),
since dropping it would leave the most recent bars never tested; a shorter remainder is
dropped. ``max_folds`` keeps the latest folds, and they keep the index they have in the whole
walk.

Partition keys are ``f{index:02d}_{test start}`` (``f03_2020-01-02``; intraday bars add the
UTC time, ``f03_2020-01-02T1430``). The index alone (``fold-03``) would also survive appended
data, but the test start makes a key say which bars it scores, and a key from another fold
geometry (other sizes) cannot be mistaken for it. Both parts depend only on the bars up to the
fold's test start, so keys stay the same as data is appended; they change when history is
added at the front (every fold moves) or the sizes change (another plan). A ``single`` split
sized by fractions moves with the data and so, rightly, gets a new key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from tt_platform.config.walk_forward import WalkForwardConfig

SPREAD_STATISTICS = ("n", "mean", "std", "min", "max", "median")


@dataclass(frozen=True)
class BarRange:
    """Bars ``first`` .. ``last`` (inclusive positions in the planned index) and their stamps."""

    first: int
    last: int
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def n_bars(self) -> int:
        return self.last - self.first + 1

    @property
    def positions(self) -> slice:
        """A slice selecting these bars from the planned index (or any array aligned with it)."""
        return slice(self.first, self.last + 1)


@dataclass(frozen=True)
class Fold:
    """One fold: train (and validate) on its past, score only on its own test slice."""

    index: int  # position in the whole walk, kept when max_folds drops earlier folds
    train: BarRange
    validation: BarRange | None
    test: BarRange

    @property
    def name(self) -> str:
        return f"fold-{self.index:02d}"

    @property
    def partition_key(self) -> str:
        return f"f{self.index:02d}_{_stamp_text(self.test.start)}"

    @property
    def purge_bars(self) -> int:
        """Bars between the last training/validation bar and the first test bar."""
        fitted = self.validation or self.train
        return self.test.first - fitted.last - 1


class _Layout(NamedTuple):
    """A fold's slices as inclusive (first, last) positions, before stamps are attached."""

    train: tuple[int, int]
    validation: tuple[int, int] | None
    test: tuple[int, int]


def plan_folds(timestamps: pd.DatetimeIndex, config: WalkForwardConfig) -> list[Fold]:
    """The folds of ``config`` over ``timestamps`` (the bars, strictly increasing), in time order.

    Test slices never overlap; every training and validation bar lies at least
    ``config.purge_bars`` bars before its fold's first test bar. A ``ValueError`` names the
    numbers when the bars are too few for even one fold.
    """
    stamps = _checked_timestamps(timestamps)
    if config.scheme == "single" and config.fractions is not None:
        layouts = [_fraction_split(len(stamps), config)]
    else:
        layouts = _walk_layouts(len(stamps), config)
        if config.scheme == "single":
            layouts = layouts[:1]
    indexed = list(enumerate(layouts))
    if config.max_folds is not None:
        indexed = indexed[-config.max_folds:]  # the latest folds: the regimes a policy will meet
    return [_fold(index, layout, stamps) for index, layout in indexed]


def fold_partition_keys(folds: Sequence[Fold]) -> list[str]:
    """Dagster partition keys of ``folds``, in order (see the module docstring for the scheme)."""
    keys = [fold.partition_key for fold in folds]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"fold partition key {repeated[0]} appears more than once: the folds "
                         "come from more than one plan")
    return keys


def stitch_out_of_sample(curves: Sequence[pd.Series]) -> pd.Series:
    """One walk-forward equity curve from the folds' out-of-sample equity curves, in time order.

    Each curve is rescaled to start where the previous one ended, so the stitched curve
    compounds the folds' returns (its total return is the product of theirs). Between two folds
    the curve is flat: each fold starts its evaluation afresh, holding nothing. Curves must be
    in time order and must not overlap (a bar scored twice would count twice).
    """
    if not curves:
        raise ValueError("no out-of-sample curves to stitch")
    pieces: list[pd.Series] = []
    for position, curve in enumerate(curves):
        _check_curve(position, curve)
        if pieces:
            _check_follows(position, curve, previous=pieces[-1])
            curve = curve / curve.iloc[0] * pieces[-1].iloc[-1]
        pieces.append(curve.astype(np.float64))
    stitched = pd.concat(pieces)
    stitched.name = "walk_forward"
    return stitched


def seed_spread(
    per_seed_metrics: Mapping[int, Mapping[str, float | None]],
) -> dict[str, dict[str, float | None]]:
    """Per metric, its spread over seeds: n (seeds with a value), mean, std (sample, ddof 1),
    min, max and median. Undefined values (None, NaN) are left out of the statistics, and a
    statistic with too few values is None, following the metrics' None-not-NaN convention.
    Every seed must report the same metrics."""
    if not per_seed_metrics:
        raise ValueError("no seeds to summarise")
    names = _common_metric_names(per_seed_metrics)
    return {name: _spread([metrics[name] for metrics in per_seed_metrics.values()]) for name in names}


# ----------------------------------------------------------------------------- planning


def _checked_timestamps(timestamps: pd.DatetimeIndex) -> pd.DatetimeIndex:
    if not isinstance(timestamps, pd.DatetimeIndex):
        raise TypeError(f"expected a pd.DatetimeIndex of bars, got {type(timestamps).__name__}")
    if not (timestamps.is_monotonic_increasing and timestamps.is_unique):
        raise ValueError("bar timestamps must be strictly increasing (sorted, no duplicates)")
    return timestamps


def _min_test_bars(test_bars: int) -> int:
    """Fewest bars a last, partial test slice may hold and still be kept."""
    return max(2, math.ceil(test_bars / 2))


def _lead_in(config: WalkForwardConfig) -> int:
    """Bars before the first test slice: train, purge and, with validation, validation and purge."""
    validation = config.validation_bars + config.purge_bars if config.validation_bars else 0
    return config.train_bars + config.purge_bars + validation


def _walk_layouts(n_bars: int, config: WalkForwardConfig) -> list[_Layout]:
    lead_in, min_test = _lead_in(config), _min_test_bars(config.test_bars)
    if n_bars - lead_in < min_test:
        raise ValueError(_too_short_message(n_bars, config, lead_in, min_test))
    layouts = []
    for test_first in range(lead_in, n_bars - min_test + 1, config.step):
        test = (test_first, min(test_first + config.test_bars, n_bars) - 1)
        train, validation = _fitted_slices(test_first, config)
        layouts.append(_Layout(train, validation, test))
    return layouts


def _fitted_slices(
    test_first: int, config: WalkForwardConfig,
) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """Train and validation slices ending ``purge_bars`` before ``test_first``."""
    validation = None
    fitted_last = test_first - config.purge_bars - 1
    if config.validation_bars:
        validation = (fitted_last - config.validation_bars + 1, fitted_last)
        fitted_last = validation[0] - config.purge_bars - 1
    # rolling: a constant window; expanding (and single): anchored at the first bar
    train_first = fitted_last - config.train_bars + 1 if config.scheme == "rolling" else 0
    return (train_first, fitted_last), validation


def _too_short_message(n_bars: int, config: WalkForwardConfig, lead_in: int, min_test: int) -> str:
    parts = f"train_bars {config.train_bars} + purge_bars {config.purge_bars}"
    if config.validation_bars:
        parts += f" + validation_bars {config.validation_bars} + purge_bars {config.purge_bars}"
    return (f"too few bars for one fold: {n_bars} bars, but a {config.scheme} fold needs "
            f"{lead_in + min_test} ({parts} = {lead_in} before the test, then at least "
            f"{min_test} of test_bars {config.test_bars})")


def _fraction_split(n_bars: int, config: WalkForwardConfig) -> _Layout:
    """The ``single`` split sized by shares: the latest bars test, training takes the rest."""
    fractions, purge = config.fractions, config.purge_bars
    test_len, validation_len = _share(n_bars, fractions.test), _share(n_bars, fractions.validation)
    test = (n_bars - test_len, n_bars - 1)
    fitted_last = test[0] - purge - 1
    validation = None
    if fractions.validation:
        validation = (fitted_last - validation_len + 1, fitted_last)
        fitted_last = validation[0] - purge - 1
    train_len = fitted_last + 1
    if test_len < 2 or (fractions.validation and validation_len < 1) or train_len < config.min_train_bars:
        raise ValueError(
            f"too few bars for the single split: {n_bars} bars give test {test_len} "
            f"(test {fractions.test}, at least 2), validation {validation_len} (validation "
            f"{fractions.validation}), purge_bars {purge} per gap and {max(train_len, 0)} to "
            f"train (min_train_bars {config.min_train_bars})")
    return _Layout((0, fitted_last), validation, test)


def _share(n_bars: int, fraction: float) -> int:
    return int(math.floor(n_bars * fraction + 0.5))  # half up, not to even: sizes do not jitter


def _fold(index: int, layout: _Layout, stamps: pd.DatetimeIndex) -> Fold:
    def bar_range(bounds: tuple[int, int] | None) -> BarRange | None:
        if bounds is None:
            return None
        first, last = bounds
        return BarRange(first, last, stamps[first], stamps[last])

    return Fold(index, bar_range(layout.train), bar_range(layout.validation), bar_range(layout.test))


def _stamp_text(stamp: pd.Timestamp) -> str:
    """A bar stamp as key text: the date, plus the UTC time for intraday bars (no colons, so a
    key is also a safe file name)."""
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC")
    if stamp == stamp.normalize():
        return f"{stamp:%Y-%m-%d}"
    return f"{stamp:%Y-%m-%dT%H%M}"


# ----------------------------------------------------------------------------- stitching


def _check_curve(position: int, curve: pd.Series) -> None:
    if len(curve) == 0:
        raise ValueError(f"out-of-sample curve {position} is empty")
    if not (curve.index.is_monotonic_increasing and curve.index.is_unique):
        raise ValueError(f"out-of-sample curve {position} is not in time order (its index must "
                         "be strictly increasing)")
    values = curve.to_numpy(dtype=np.float64)
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise ValueError(f"out-of-sample curve {position} holds equity that is not a positive "
                         "finite number; it cannot be rescaled")


def _check_follows(position: int, curve: pd.Series, previous: pd.Series) -> None:
    if curve.index[0] <= previous.index[-1]:
        raise ValueError(
            f"out-of-sample curve {position} starts at {curve.index[0]}, not after curve "
            f"{position - 1} ends at {previous.index[-1]}: curves must be in time order and "
            "must not overlap")


# ----------------------------------------------------------------------------- seeds


def _common_metric_names(per_seed_metrics: Mapping[int, Mapping[str, float | None]]) -> list[str]:
    seeds = list(per_seed_metrics)
    names = list(per_seed_metrics[seeds[0]])
    for seed in seeds[1:]:
        if set(per_seed_metrics[seed]) != set(names):
            missing = sorted(set(names) ^ set(per_seed_metrics[seed]))
            raise ValueError(f"seed {seed} and seed {seeds[0]} report different metrics "
                             f"(differing: {', '.join(missing)})")
    return names


def _spread(values: list[float | None]) -> dict[str, float | None]:
    defined = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if len(defined) == 0:
        return {"n": 0} | {stat: None for stat in SPREAD_STATISTICS[1:]}
    return {
        "n": len(defined),
        "mean": float(defined.mean()),
        "std": float(defined.std(ddof=1)) if len(defined) > 1 else None,
        "min": float(defined.min()),
        "max": float(defined.max()),
        "median": float(np.median(defined)),
    }
