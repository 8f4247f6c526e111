"""What the store must look like after a fault: compared with a clean run, key by key.

A clean run is the same ingest with nothing going wrong; its rows are computed once per
scenario and test run (``clean_run``). After a fault and its rerun the stored rows must be
exactly those (no bar lost, none extra, no value different), no key may appear twice, and no
(symbol, month) may hold part of what the clean run holds there.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import pandas as pd
import sqlalchemy as sa

from tt_platform.store.engine import create_store_engine

_CLEAN_RUNS: dict[Hashable, pd.DataFrame] = {}


def clean_run(scenario: Hashable, produce: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """The rows of a clean run of ``scenario`` (``produce`` runs it the first time asked)."""
    if scenario not in _CLEAN_RUNS:
        rows = produce()
        assert len(rows), f"the clean run of {scenario} stored nothing"
        _CLEAN_RUNS[scenario] = rows
    return _CLEAN_RUNS[scenario].copy()


def duplicate_keys(url: str, table: sa.Table) -> int:
    """Keys (the table's primary key columns) stored more than once."""
    keys = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
    engine = create_store_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(
                f"SELECT count(*) FROM (SELECT 1 FROM {table.name} GROUP BY {keys} HAVING count(*) > 1) AS twice"
            )).scalar_one()
    finally:
        engine.dispose()


def _keys(frame: pd.DataFrame) -> set[tuple]:
    return set(zip(frame["symbol"], frame["ts"]))


def bars_lost(stored: pd.DataFrame, clean: pd.DataFrame) -> int:
    """Bars of the clean run that are not stored."""
    return len(_keys(clean) - _keys(stored))


def assert_part_of_clean_run(stored: pd.DataFrame, clean: pd.DataFrame) -> None:
    """What a stopped run stored is the clean run's bars on whole days: nothing else, no value
    different, no day half there."""
    extra = _keys(stored) - _keys(clean)
    assert not extra, f"{len(extra)} bars a clean run does not store, e.g. {sorted(extra)[:3]}"
    assert partial_months(stored, clean, "%Y-%m-%d") == []
    same_keys = clean.merge(stored[["symbol", "ts"]], on=["symbol", "ts"])
    pd.testing.assert_frame_equal(stored.reset_index(drop=True), same_keys.reset_index(drop=True))


def assert_clean_run_rows(stored: pd.DataFrame, clean: pd.DataFrame) -> None:
    """``stored`` holds exactly the clean run's bars: none lost, none extra, none twice, same values."""
    lost, extra = _keys(clean) - _keys(stored), _keys(stored) - _keys(clean)
    assert not lost, f"{len(lost)} bars of the clean run are lost, e.g. {sorted(lost)[:3]}"
    assert not extra, f"{len(extra)} bars a clean run does not store, e.g. {sorted(extra)[:3]}"
    assert not stored.duplicated(["symbol", "ts"]).any(), "a bar is stored twice"
    pd.testing.assert_frame_equal(stored.reset_index(drop=True), clean.reset_index(drop=True))


def partial_months(stored: pd.DataFrame, clean: pd.DataFrame, period: str = "%Y-%m") -> list[tuple[str, str, int, int]]:
    """(symbol, month, stored bars, clean bars) where a month holds some but not all of the clean
    run's bars: a half-written partition. ``period`` "%Y-%m-%d" looks at days instead."""
    def counts(frame: pd.DataFrame) -> pd.Series:
        month = frame["ts"].dt.strftime(period)
        return frame.groupby([frame["symbol"], month]).size()

    have, want = counts(stored), counts(clean)
    both = pd.concat([have.rename("stored"), want.rename("clean")], axis=1).fillna(0).astype(int)
    half = both[(both["stored"] > 0) & (both["stored"] != both["clean"])]
    return [(symbol, month, int(row.stored), int(row.clean)) for (symbol, month), row in half.iterrows()]


def stored_features(url: str) -> pd.DataFrame:
    """Every stored feature row, wide (hash, symbol, ts, one column per feature; NaN where not
    valid), sorted."""
    from tt_platform.store.features import read_features_wide

    engine = create_store_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            hashes = conn.execute(sa.text("SELECT DISTINCT feature_set_hash FROM tt_feature_values")).scalars().all()
        frames = [read_features_wide(engine, h).assign(feature_set_hash=h) for h in sorted(hashes)]
    finally:
        engine.dispose()
    if not frames:
        return pd.DataFrame(columns=["feature_set_hash", "symbol", "ts"])
    return pd.concat(frames, ignore_index=True).sort_values(["feature_set_hash", "symbol", "ts"]).reset_index(drop=True)
