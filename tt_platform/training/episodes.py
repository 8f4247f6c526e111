"""An ``EpisodeRecord`` as the rows of the episode tables (pure; the store writes them in one
batch).

Step numbering: the equity curve has step 0 = the starting state at the first decision bar, and
step i (1..S) = the state after the i-th step, marked at ``record.timestamps[i-1]``. Actions and
target weights of step i carry the bar the decision was taken at (the previous mark), rewards the
bar they were earned at. ``started_at`` / ``ended_at`` are the episode's first and last bar.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from tt_platform.env.rollout import EpisodeRecord

EPISODE_KINDS = ("train", "eval", "backtest", "paper", "live")


class EpisodeFrames(NamedTuple):
    episode: dict[str, Any]          # one tt_episode row
    actions: pd.DataFrame            # tt_action: episode_id, step, ts, instrument, action
    rewards: pd.DataFrame            # tt_reward: episode_id, step, ts, reward, components
    equity: pd.DataFrame             # tt_equity_curve: episode_id, step, ts, equity, cash,
                                     #   gross_exposure, drawdown
    target_weights: pd.DataFrame     # tt_target_weights: episode_id, step, ts, instrument, weight


def _json_safe(value: Any) -> Any:
    """JSON-ready copy: numpy scalars to Python, NaN / infinity to None."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _per_symbol(values: np.ndarray, *, episode_id: str, steps: np.ndarray, ts: pd.DatetimeIndex,
                symbols: list[str], column: str) -> pd.DataFrame:
    n_steps, n_symbols = values.shape
    return pd.DataFrame({
        "episode_id": episode_id,
        "step": np.repeat(steps, n_symbols),
        "ts": ts.repeat(n_symbols),
        "instrument": np.tile(np.asarray(symbols, dtype=object), n_steps),
        column: values.reshape(-1).astype(np.float64),
    })


def episode_frames(record: EpisodeRecord, *, episode_id: str, policy_id: str | None, kind: str,
                   seed: int | None = None, config: dict[str, Any] | None = None,
                   metrics: dict[str, Any] | None = None) -> EpisodeFrames:
    if kind not in EPISODE_KINDS:
        raise ValueError(f"episode kind {kind!r} is not one of {EPISODE_KINDS}")
    if not episode_id:
        raise ValueError("episode_id must be a non-empty string")
    n = record.n_steps
    symbols = list(record.symbols)
    steps = np.arange(1, n + 1, dtype=np.int64)
    mark_ts = pd.DatetimeIndex(record.timestamps)
    start = pd.DatetimeIndex([record.start_timestamp])
    decision_ts = start.append(mark_ts[:-1]) if n else mark_ts

    actions = np.asarray(record.actions, dtype=np.float64).reshape(n, -1)
    if actions.shape[1] != len(symbols):
        raise ValueError(
            f"actions have {actions.shape[1]} values per step, expected one per symbol "
            f"({len(symbols)})")
    components = [
        {name: _json_safe(float(values[i])) for name, values in record.reward_components.items()}
        for i in range(n)
    ]
    equity = pd.DataFrame({
        "episode_id": episode_id,
        "step": np.arange(0, n + 1, dtype=np.int64),
        "ts": start.append(mark_ts),
        "equity": np.concatenate([[record.initial_equity], record.equity]),
        "cash": np.concatenate([[record.initial_equity], record.cash]),
        "gross_exposure": np.concatenate([[0.0], record.gross_exposure]),
        "drawdown": np.concatenate([[0.0], record.drawdown]),
    })
    episode = {
        "episode_id": episode_id,
        "policy_id": policy_id,
        "kind": kind,
        "started_at": record.start_timestamp,
        "ended_at": mark_ts[-1] if n else record.start_timestamp,
        "seed": seed,
        "config": _json_safe(config or {}),
        "metrics": _json_safe(metrics or {}),
    }
    # Round-trip check: the JSON columns must serialise (fails here, not in the database).
    json.dumps(episode["config"]), json.dumps(episode["metrics"])
    return EpisodeFrames(
        episode=episode,
        actions=_per_symbol(actions, episode_id=episode_id, steps=steps, ts=decision_ts,
                            symbols=symbols, column="action"),
        rewards=pd.DataFrame({"episode_id": episode_id, "step": steps, "ts": mark_ts,
                              "reward": np.asarray(record.rewards, dtype=np.float64),
                              "components": components}),
        equity=equity,
        target_weights=_per_symbol(np.asarray(record.target_weights).reshape(n, -1),
                                   episode_id=episode_id, steps=steps, ts=decision_ts,
                                   symbols=symbols, column="weight"),
    )


def portfolio_frames(record: EpisodeRecord, *, episode_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``tt_portfolio`` (cash, equity, leverage = gross exposure) and ``tt_holdings`` (shares and
    market value per symbol) after every step, stamped at the step's mark."""
    n = record.n_steps
    steps = np.arange(1, n + 1, dtype=np.int64)
    mark_ts = pd.DatetimeIndex(record.timestamps)
    portfolio = pd.DataFrame({
        "episode_id": episode_id, "step": steps, "ts": mark_ts, "cash": record.cash,
        "equity": record.equity, "leverage": record.gross_exposure})
    positions = np.asarray(record.positions, dtype=np.float64).reshape(n, -1)
    holdings = _per_symbol(positions, episode_id=episode_id, steps=steps, ts=mark_ts,
                           symbols=list(record.symbols), column="quantity")
    # weights are value / equity at the mark, so value = weight x equity
    holdings["market_value"] = (np.asarray(record.weights).reshape(n, -1)
                                * record.equity[:, None]).reshape(-1)
    return portfolio, holdings
