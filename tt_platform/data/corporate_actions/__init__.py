"""Corporate actions: the events table, vendor builders, the backward-adjustment engine and
Lean's factor and map files."""

from tt_platform.data.corporate_actions.actions import (
    ACTION_COLUMNS,
    ACTION_TYPES,
    CorporateActionError,
    actions_from_quandl_wiki,
    actions_from_zipline_csvdir,
    consolidate_actions,
    empty_actions,
    normalize_actions,
    read_actions_csv,
)
from tt_platform.data.corporate_actions.adjust import (
    MODES,
    AdjustmentMode,
    adjust_bars,
    adjustment_factors,
    select_feed,
    undo_split_adjustment,
)
from tt_platform.data.corporate_actions.lean import (
    LeanHistory,
    actions_from_lean_factor_file,
    lean_factor_price,
    map_segments,
    read_lean_factor_file,
    read_lean_map_file,
    resolve_lean_history,
    ticker_in_effect,
)

__all__ = [
    "ACTION_COLUMNS",
    "ACTION_TYPES",
    "MODES",
    "AdjustmentMode",
    "CorporateActionError",
    "LeanHistory",
    "actions_from_lean_factor_file",
    "actions_from_quandl_wiki",
    "actions_from_zipline_csvdir",
    "adjust_bars",
    "adjustment_factors",
    "consolidate_actions",
    "empty_actions",
    "lean_factor_price",
    "map_segments",
    "normalize_actions",
    "read_actions_csv",
    "read_lean_factor_file",
    "read_lean_map_file",
    "resolve_lean_history",
    "select_feed",
    "ticker_in_effect",
    "undo_split_adjustment",
]
