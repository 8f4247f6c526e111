"""A trained policy applied to the latest completed bar: the features the training pipeline
computes, the observation the training env builds, the action scheme it maps actions with.

The runner keeps a rolling window of bars (enough for the feature set's warm-up, the
observation window and the action scheme's volatility lookback). On each decision it computes
the features over that window with ``compute_features``, aligns them with ``MarketData`` and
builds the env's ``EpisodeState`` and ``WindowObserver`` at the last bar, with the session's
current weights as the position row. Nothing after the decision bar exists in the window, so
a decision cannot look ahead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tt_platform.data.bars import BAR_COLUMNS, normalize_bars
from tt_platform.env.market import MarketData
from tt_platform.features.compute import compute_features
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
        self._bars = pd.DataFrame(columns=BAR_COLUMNS)

    @property
    def min_bars(self) -> int:
        return self.policy.env_config.window_size + 1

    @property
    def bars(self) -> pd.DataFrame:
        return self._bars

    def last_bar_time(self) -> pd.Timestamp | None:
        return None if self._bars.empty else pd.Timestamp(self._bars["ts"].iloc[-1])

    def extend(self, bars: pd.DataFrame) -> int:
        """Add completed bars (canonical columns) of the policy's symbols; a bar already held
        (same symbol and ts) is replaced by the newer one. Returns the bars now held."""
        if bars is None or bars.empty:
            return len(self._bars)
        bars = normalize_bars(bars[BAR_COLUMNS], origin="live bars")
        bars = bars[bars["symbol"].isin(self.symbols)]
        merged = pd.concat([self._bars, bars], ignore_index=True) if not self._bars.empty else bars
        merged = merged.drop_duplicates(["symbol", "ts"], keep="last").sort_values(["ts", "symbol"])
        stamps = merged["ts"].drop_duplicates()
        if len(stamps) > self.history_bars:
            merged = merged[merged["ts"] >= stamps.iloc[-self.history_bars]]
        self._bars = merged.reset_index(drop=True)
        return len(self._bars)

    def market(self) -> MarketData:
        """The window as ``MarketData`` in the policy's symbol order."""
        absent = sorted(set(self.symbols) - set(self._bars["symbol"]))
        if absent:
            raise ValueError(f"no bars yet for {absent}: the warm start did not cover them")
        matrix = compute_features(self._bars, self.policy.feature_set)
        if list(matrix.symbols) != self.symbols:
            matrix = matrix.select_symbols(self.symbols)
        return _aligned_market(self._bars, matrix)

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


def _aligned_market(bars: pd.DataFrame, matrix: Any) -> MarketData:
    """``MarketData.from_frames`` for bars already normalized and on the matrix's grid (the
    runner's own window): the same arrays without re-validating and pivoting the frame, which
    is most of a decision's time."""
    timestamps = pd.DatetimeIndex(matrix.timestamps)
    symbols = list(matrix.symbols)
    rows = timestamps.searchsorted(pd.DatetimeIndex(bars["ts"]))
    column = {symbol: i for i, symbol in enumerate(symbols)}
    cols = bars["symbol"].map(column).to_numpy()
    keep = ~pd.isna(cols)
    rows, cols = rows[keep], cols[keep].astype(np.int64)
    shape = (len(timestamps), len(symbols))
    raw_close = np.full(shape, np.nan)
    raw_open = np.full(shape, np.nan)
    raw_close[rows, cols] = bars["close"].to_numpy(dtype=np.float64)[keep]
    raw_open[rows, cols] = bars["open"].to_numpy(dtype=np.float64)[keep]
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
