"""A trained policy applied to the latest completed bar: the features the training pipeline
computes, the observation the training env builds, the action scheme it maps actions with.

The runner keeps a rolling window of bars (enough for the feature set's warm-up, the
observation window and the action scheme's volatility lookback). On each decision it computes
the features over that window as ``compute_features`` does, aligns them with ``MarketData`` and
builds the env's ``EpisodeState`` and ``WindowObserver`` at the last bar, with the session's
current weights as the position row. Nothing after the decision bar exists in the window, so
a decision cannot look ahead.

The window is held as arrays sorted by (time, symbol) -- stamps, symbol codes, OHLCV -- because
a decision is on the path from bar close to orders: a new bar set is appended and the oldest
stamps cut off without re-sorting or re-validating what is held, and the features' ``BarPanel``
is laid out from the arrays directly (the frame ``bars`` is built only when asked for).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tt_platform.data.bars import BAR_COLUMNS, normalize_bars
from tt_platform.env.market import MarketData
from tt_platform.features.compute import compute_panel_features
from tt_platform.features.panel import BarPanel
from tt_platform.live.policy_source import VerifiedPolicy

# bars kept beyond the strict minimum: z-score windows settle on more than their length
HISTORY_MARGIN = 20


@dataclass(frozen=True)
class PolicyOutput:
    """One evaluation of the policy at ``bar_time``."""

    bar_time: pd.Timestamp
    action: np.ndarray
    target_weights: np.ndarray  # one per symbol, in the policy's symbol order
    prices: np.ndarray  # last close per symbol (forward-filled)
    tradable: np.ndarray  # the symbol has a bar at bar_time
    features_valid: float  # share of valid features at bar_time


class PolicyRunner:
    """Runs ``policy`` (its loaded ``model``) over a rolling window of ``history_bars`` bars."""

    def __init__(self, policy: VerifiedPolicy, model: Any, *, history_bars: int | None = None) -> None:
        self.policy = policy
        self.model = model
        self.symbols = list(policy.symbols)
        env = policy.env_config
        # warmup_bars already counts the z-score window
        needed = max(policy.feature_set.warmup_bars + env.window_size, env.vol_lookback + 1)
        self.history_bars = int(history_bars or needed + HISTORY_MARGIN)
        # codes number the symbols in sorted order, so (stamp, code) order is (ts, symbol) order;
        # only canonical (upper-case) names can match a bar, as after normalize_bars
        self._names = sorted(self.symbols)
        self._code = {symbol: i for i, symbol in enumerate(self._names) if symbol == symbol.upper()}
        self._name_array = pd.Series(self._names, dtype=object).astype(str).array  # the dtype normalize_bars gives
        self._column = np.array([self.symbols.index(symbol) for symbol in self._names], dtype=np.int64)
        self._ts = np.empty(0, dtype=np.int64)  # ns since the epoch, UTC
        self._codes = np.empty(0, dtype=np.int64)
        self._values = np.empty((0, len(_VALUE_COLUMNS)), dtype=np.float64)
        self._frame: pd.DataFrame | None = pd.DataFrame(columns=BAR_COLUMNS)

    @property
    def min_bars(self) -> int:
        return self.policy.env_config.window_size + 1

    @property
    def bars(self) -> pd.DataFrame:
        """The window held, sorted by (ts, symbol), in canonical columns and dtypes."""
        if self._frame is None:
            columns = {"symbol": self._name_array.take(self._codes), "ts": pd.DatetimeIndex(self._ts, dtype=_UTC_NS)}
            columns |= {name: self._values[:, i] for i, name in enumerate(_VALUE_COLUMNS)}
            self._frame = pd.DataFrame(columns)[BAR_COLUMNS]
        return self._frame

    def last_bar_time(self) -> pd.Timestamp | None:
        return None if not len(self._ts) else pd.Timestamp(int(self._ts[-1]), tz="UTC")

    def last_closes(self) -> np.ndarray:
        """Each symbol's last close held, in the policy's symbol order (NaN before its first bar)."""
        closes = np.full(len(self.symbols), np.nan)
        if len(self._codes):
            # the window is sorted by time: each code's last row is its newest bar
            codes, first_from_end = np.unique(self._codes[::-1], return_index=True)
            rows = len(self._codes) - 1 - first_from_end
            closes[self._column[codes]] = self._values[rows, _VALUE_COLUMNS.index("close")]
        return closes

    def extend(self, bars: pd.DataFrame) -> int:
        """Add completed bars (canonical columns) of the policy's symbols; a bar already held
        (same symbol and ts) is replaced by the newer one. Returns the bars now held."""
        if bars is None or bars.empty:
            return len(self._ts)
        ts, codes, values = self._canonical(bars[BAR_COLUMNS])
        if not len(ts):
            return len(self._ts)
        if not len(self._ts) or ts[0] > self._ts[-1]:
            # the live case: a newer bar set, already sorted and unique -- appended as it is
            ts = np.concatenate([self._ts, ts])
            codes = np.concatenate([self._codes, codes])
            values = np.concatenate([self._values, values])
        else:
            ts, codes, values = _merge_newest(self._ts, self._codes, self._values, ts, codes, values)
        first_stamps = np.flatnonzero(np.diff(ts, prepend=ts[0] - 1))
        if len(first_stamps) > self.history_bars:
            cut = first_stamps[-self.history_bars]
            ts, codes, values = ts[cut:], codes[cut:], values[cut:]
        self._ts, self._codes, self._values = ts, codes, values
        self._frame = None
        return len(self._ts)

    def _canonical(self, bars: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``bars`` as arrays sorted by (ts, symbol), of the policy's symbols only. Bars already
        canonical and valid are read as they are; anything else goes through ``normalize_bars``,
        which coerces it or raises naming the problem."""
        arrays = _canonical_arrays(bars, self._code)
        if arrays is None:
            normalized = normalize_bars(bars, origin="live bars")
            arrays = _canonical_arrays(normalized, self._code, policy_only=True)
            if arrays is None:
                raise ValueError("live bars: a bar without a timestamp")
        return arrays

    def market(self) -> MarketData:
        """The window as ``MarketData`` in the policy's symbol order."""
        held = np.bincount(self._codes, minlength=len(self._names)) > 0
        absent = sorted(name for name, present in zip(self._names, held, strict=True) if not present)
        if absent:
            raise ValueError(f"no bars yet for {absent}: the warm start did not cover them")
        # the panel straight from the arrays held: they are sorted and checked already
        panel = BarPanel.from_arrays(self._ts, self._codes, self._names, self._values)
        matrix = compute_panel_features(panel, self.policy.feature_set)
        if list(matrix.symbols) != self.symbols:
            matrix = matrix.select_symbols(self.symbols)
        return self._aligned_market(matrix)

    def evaluate(self, current_weights: np.ndarray) -> PolicyOutput:
        """The policy's target weights at the last bar held, given the weights held now."""
        # Imported here: the env package pulls in gymnasium and tensortrade.
        from tt_platform.env.components import WindowObserver
        from tt_platform.env.factory import make_action_scheme
        from tt_platform.env.state import EpisodeState

        market = self.market()
        env = self.policy.env_config
        if market.n_steps < self.min_bars:
            raise ValueError(f"{market.n_steps} bars held; the policy's window needs {self.min_bars}")
        state = EpisodeState(market, env)
        state.t = market.n_steps - 1
        state.weights = np.asarray(current_weights, dtype=np.float64)
        observer = WindowObserver(state, window=env.window_size, flat=env.observation == "flat",
                                  include_positions=env.include_positions, clip=env.obs_clip)
        observation = observer.observe(None)
        action, _ = self.model.predict(observation, deterministic=True)
        weights = np.asarray(make_action_scheme(state, env).target_weights(action), dtype=np.float64)
        t = market.n_steps - 1
        return PolicyOutput(
            bar_time=market.timestamps[t], action=np.asarray(action, dtype=np.float64).reshape(-1),
            target_weights=weights, prices=state.mark_prices[t].copy(), tradable=market.tradable[t].copy(),
            features_valid=float(market.feature_mask[t].mean()) if market.feature_mask.size else 0.0)

    def _aligned_market(self, matrix: Any) -> MarketData:
        """``MarketData.from_frames`` for the window on the matrix's own grid, from the arrays
        held: the same values without re-validating and pivoting the frame."""
        timestamps = pd.DatetimeIndex(matrix.timestamps)
        symbols = list(matrix.symbols)
        rows = np.searchsorted(timestamps.as_unit("ns").asi8, self._ts)
        cols = self._column[self._codes]
        shape = (len(timestamps), len(symbols))
        raw_close = np.full(shape, np.nan)
        raw_open = np.full(shape, np.nan)
        raw_close[rows, cols] = self._values[:, _CLOSE]
        raw_open[rows, cols] = self._values[:, _OPEN]
        tradable = ~np.isnan(raw_close)
        # forward fill from the past only, as from_frames does
        index = np.where(tradable, np.arange(shape[0])[:, None], 0)
        np.maximum.accumulate(index, axis=0, out=index)
        close = raw_close[index, np.arange(shape[1])[None, :]]
        close[~np.maximum.accumulate(tradable, axis=0)] = np.nan
        open_ = np.where(tradable, raw_open, close)
        return MarketData(
            timestamps=timestamps, symbols=symbols, close=close, open=open_, tradable=tradable,
            features=np.asarray(matrix.values, dtype=np.float32), feature_mask=np.asarray(matrix.mask, dtype=bool),
            feature_names=list(matrix.feature_names), feature_set_hash=getattr(matrix, "feature_set_hash", None))


_VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
_OPEN, _CLOSE = _VALUE_COLUMNS.index("open"), _VALUE_COLUMNS.index("close")


def _canonical_arrays(bars: pd.DataFrame, code: dict[str, int], *, policy_only: bool = False
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(ns stamps, symbol codes, OHLCV) of ``bars`` sorted by (ts, symbol), when ``bars`` is
    canonical and valid as ``normalize_bars`` would leave it (upper-case symbols, tz-aware stamps,
    finite values, prices > 0, one bar per symbol and stamp), else None. Bars of other symbols
    make it None too, unless ``policy_only``: they are then dropped."""
    stamps = bars["ts"]
    if not isinstance(stamps.dtype, pd.DatetimeTZDtype):
        return None
    ts = stamps.array.as_unit("ns").asi8
    if (ts == _NAT).any():
        return None
    names = bars["symbol"].to_numpy(dtype=object)
    codes = np.fromiter((code.get(name, -1) if type(name) is str else -2 for name in names),
                        dtype=np.int64, count=len(names))
    if policy_only:
        keep = codes >= 0
        ts, codes, bars = ts[keep], codes[keep], bars[keep]
    elif (codes < 0).any():
        return None
    if any(bars[c].dtype.kind not in "fiu" for c in _VALUE_COLUMNS):
        return None
    try:
        values = np.column_stack([bars[c].to_numpy(dtype=np.float64) for c in _VALUE_COLUMNS])
    except (TypeError, ValueError):  # a nullable column holding NA
        return None
    if not (np.isfinite(values).all() and (values[:, :_VALUE_COLUMNS.index("volume")] > 0).all()):
        return None
    order = np.lexsort((codes, ts))
    ts, codes, values = ts[order], codes[order], values[order]
    if ((ts[1:] == ts[:-1]) & (codes[1:] == codes[:-1])).any():
        return None
    return ts, codes, values


_NAT = np.iinfo(np.int64).min
_UTC_NS = pd.DatetimeTZDtype("ns", "UTC")


def _merge_newest(ts: np.ndarray, codes: np.ndarray, values: np.ndarray, new_ts: np.ndarray,
                  new_codes: np.ndarray, new_values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held and new bars in (ts, symbol) order, one per symbol and stamp: the new one where both
    have it."""
    all_ts = np.concatenate([ts, new_ts])
    all_codes = np.concatenate([codes, new_codes])
    order = np.lexsort((np.arange(len(all_ts)), all_codes, all_ts))
    all_ts, all_codes = all_ts[order], all_codes[order]
    # the last of each (stamp, code) run is the newest
    last = np.ones(len(all_ts), dtype=bool)
    last[:-1] = (all_ts[1:] != all_ts[:-1]) | (all_codes[1:] != all_codes[:-1])
    values = np.concatenate([values, new_values])[order]
    return all_ts[last], all_codes[last], values[last]
