"""``tt compare``: trained policies side by side, from the MLflow tracking store.

Training runs carry their in-sample metrics (``sharpe``, ``total_return``, ``max_drawdown``, ...
from the trainer's final deterministic rollout) and, once a walk-forward has judged them, the
out-of-sample ones next to them (``oos_sharpe``, ``oos_total_return``, ..., and the baselines'
``oos_buy_and_hold_sharpe`` etc., ``pipeline.walk_forward``). A walk-forward's own run (tag
``tt.kind = walk_forward``) is the parent of its fold x seed runs; compared as
``kind="walk_forward"`` it shows each metric as logged on the parent or else the mean over its
children.

Runs are read through an explicit ``MlflowClient`` on the store ``resolve_backend`` maps the URI
to -- the same store ``MlflowTracker`` writes -- not through ``mlflow.search_runs``, which
reads the process-wide tracking URI (see ``training.tracking``). Only FINISHED runs count.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from tt_platform.settings import mask_url_password

CompareKind = Literal["training", "walk_forward"]

KIND_TAG = "tt.kind"
PLAN_TAG = "tt.walk_forward_plan"
FOLD_TAG = "tt.fold"
SEED_TAG = "tt.seed"
PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
POLICY_PARAM = "lineage.policy_id"  # the trainer logs its lineage as params
SEED_PARAMS = ("lineage.seed", "train.seed")
SORT_METRIC = "oos_sharpe"
# in-sample next to out-of-sample, then the baselines a policy has to beat
DEFAULT_METRICS = (
    "sharpe", "oos_sharpe",
    "total_return", "oos_total_return",
    "max_drawdown", "oos_max_drawdown",
    "oos_buy_and_hold_sharpe", "oos_equal_weight_sharpe", "oos_risk_matched_sharpe",
)
TRAINING_COLUMNS = ("run_name", "policy_id", "fold", "seed")
WALK_FORWARD_COLUMNS = ("run_name", "plan", "folds", "runs", "gate")
GATE_TAG = "tt.gate"  # "passed" | "failed", set on the parent once the walk-forward is judged
SEARCH_PAGE = 1000
MISSING = "\u2014"  # em dash
PERCENT_NAMES = re.compile(r"return|drawdown|volatility|cagr|hit_rate|win_ratio|time_invested|_pct$")


def compare_runs(tracking_uri: str, experiment: str, *, walk_forward: str | None = None,
                 policies: Sequence[str] | None = None, metrics: Sequence[str] | None = None,
                 limit: int = 20, kind: CompareKind = "training") -> pd.DataFrame:
    """One row per finished training run (``kind="training"``) or walk-forward
    (``kind="walk_forward"``) of ``experiment``, best ``oos_sharpe`` first (runs without it
    last, newest first among equals), at most ``limit`` rows; indexed by run id.

    walk_forward: a plan key (or its first characters): only that walk-forward's runs.
    policies: only the training runs of these policy ids (each must have one).
    metrics: the MLflow metric names to show, in order (default ``DEFAULT_METRICS``); a metric
        a run never logged is NaN.

    Columns: ``TRAINING_COLUMNS`` (run name, policy id, fold and seed, missing where a run has
    none) or ``WALK_FORWARD_COLUMNS`` (run name, plan key, number of folds and fold runs, the
    gate's verdict once judged), then the metrics. ValueError naming the experiment and the store (password masked) when
    either does not exist or no run matches.
    """
    if kind not in ("training", "walk_forward"):
        raise ValueError(f"kind must be 'training' or 'walk_forward', got {kind!r}")
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if kind == "walk_forward" and policies:
        raise ValueError("policies select training runs; they do not apply to kind='walk_forward'")
    if walk_forward is not None and not _is_plan_key(walk_forward):
        raise ValueError(f"walk-forward plan key {walk_forward!r} must be letters, digits, '-' or '_'")
    metrics = list(DEFAULT_METRICS if metrics is None else metrics)
    if not metrics:
        raise ValueError("metrics: name at least one MLflow metric")
    where = mask_url_password(tracking_uri)

    client = _client(tracking_uri)
    try:
        found = client.get_experiment_by_name(experiment)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the store, one line
        raise ValueError(f"cannot read the MLflow tracking store {where}: {_scrubbed(exc, tracking_uri)}") from None
    if found is None or found.lifecycle_stage != "active":
        known = _experiment_names(client)
        hint = f" (experiments there: {', '.join(known)})" if known else " (it has no experiments yet)"
        raise ValueError(f"no MLflow experiment {experiment!r} in the tracking store {where}{hint}")

    filters = ["attributes.status = 'FINISHED'"]
    if walk_forward is not None:
        filters.append(f"tags.`{PLAN_TAG}` LIKE '{walk_forward}%'")
    runs = _search(client, found.experiment_id, " and ".join(filters))
    parents = [r for r in runs if r.data.tags.get(KIND_TAG) == "walk_forward"]
    trained = [r for r in runs if r.data.tags.get(KIND_TAG) != "walk_forward"]

    if kind == "training":
        if policies:
            wanted = set(policies)
            trained = [r for r in trained if r.data.params.get(POLICY_PARAM) in wanted]
            have = {r.data.params.get(POLICY_PARAM) for r in trained}
            missing = [p for p in policies if p not in have]
            if missing:
                raise ValueError(f"no finished run of policy {', '.join(map(repr, missing))} in MLflow experiment "
                                 f"{experiment!r} at {where}" + _scope(walk_forward))
        rows = [_training_row(r, metrics) for r in trained]
    else:
        children: dict[str, list] = {}
        for run in trained:
            children.setdefault(run.data.tags.get(PARENT_TAG, ""), []).append(run)
        rows = [_walk_forward_row(r, children.get(r.info.run_id, []), metrics) for r in parents]
    if not rows:
        what = "walk-forward runs" if kind == "walk_forward" else "training runs"
        raise ValueError(f"no finished {what} in MLflow experiment {experiment!r} at {where}" + _scope(walk_forward))

    columns = list(TRAINING_COLUMNS if kind == "training" else WALK_FORWARD_COLUMNS)
    frame = pd.DataFrame(rows)
    frame = frame.sort_values(["_sort", "_start"], ascending=[False, False], na_position="last", kind="stable")
    frame = frame.set_index("run_id")
    frame.index.name = "run_id"
    out = frame[columns].copy()
    for name in ("seed", "folds", "runs"):
        if name in out:
            out[name] = out[name].astype("Int64")
    for name in metrics:
        out[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return out.head(limit)


def _is_plan_key(text: str) -> bool:
    return bool(text) and all(c.isalnum() or c in "-_" for c in text)


def _scope(walk_forward: str | None) -> str:
    return f" for walk-forward {walk_forward!r}" if walk_forward else ""


def _client(tracking_uri: str):
    from mlflow.tracking import MlflowClient

    from tt_platform.training.tracking import resolve_backend

    parsed = urlparse(tracking_uri)
    if parsed.scheme in ("", "file"):
        folder = Path(unquote(parsed.path) if parsed.scheme == "file" else tracking_uri).expanduser()
        if not (folder / "mlflow.db").is_file():
            # resolve_backend would create an empty store there: nothing was ever tracked
            raise ValueError(f"no MLflow tracking store at {tracking_uri} (no {folder / 'mlflow.db'}); "
                             "training runs are tracked there once a policy is trained")
    elif parsed.scheme == "sqlite":
        path = unquote(parsed.path)[1:]  # sqlite:///relative, sqlite:////absolute
        if path and path != ":memory:" and not Path(path).is_file():
            raise ValueError(f"no MLflow tracking store at {tracking_uri} (the file does not exist)")
    store = resolve_backend(tracking_uri).store_uri
    return MlflowClient(tracking_uri=store, registry_uri=store)


def _scrubbed(exc: BaseException, tracking_uri: str) -> str:
    """An error's first line, without the URI's password should the driver have quoted it."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    password = urlparse(tracking_uri).password
    if password:
        text = text.replace(password, "***")
    return text[:300]


def _experiment_names(client) -> list[str]:
    try:
        return sorted(e.name for e in client.search_experiments())
    except Exception:  # noqa: BLE001 - a hint only
        return []


def _search(client, experiment_id: str, filter_string: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=filter_string, max_results=SEARCH_PAGE,
                                  page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _base_row(run, metrics: Iterable[str]) -> dict[str, object]:
    values = run.data.metrics
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name or run.data.tags.get(RUN_NAME_TAG),
        "_start": run.info.start_time or 0,
    } | {name: values.get(name, math.nan) for name in metrics}


def _training_row(run, metrics: list[str]) -> dict[str, object]:
    tags, params = run.data.tags, run.data.params
    seed = tags.get(SEED_TAG) or next((params[p] for p in SEED_PARAMS if p in params), None)
    row = _base_row(run, metrics) | {
        "policy_id": params.get(POLICY_PARAM),
        "fold": tags.get(FOLD_TAG),
        "seed": int(seed) if seed is not None and str(seed).lstrip("-").isdigit() else None,
    }
    row["_sort"] = run.data.metrics.get(SORT_METRIC, math.nan)
    return row


def _walk_forward_row(run, children: list, metrics: list[str]) -> dict[str, object]:
    row = _base_row(run, metrics) | {
        "plan": run.data.tags.get(PLAN_TAG),
        "folds": len({c.data.tags.get(FOLD_TAG) for c in children if c.data.tags.get(FOLD_TAG)}),
        "runs": len(children),
        "gate": run.data.tags.get(GATE_TAG),
    }
    for name in {*metrics, SORT_METRIC}:
        own = run.data.metrics.get(name)
        if own is not None and math.isfinite(own):
            row[name] = own
            continue
        values = [c.data.metrics[name] for c in children
                  if name in c.data.metrics and math.isfinite(c.data.metrics[name])]
        row[name] = float(np.mean(values)) if values else math.nan
    row["_sort"] = row[SORT_METRIC]
    return row


# ---------------------------------------------------------------------------- the terminal table
def percent_columns(columns: Iterable[object]) -> list[str]:
    """The columns that hold fractions best read as percentages, by name: returns, drawdowns,
    volatility, rates and ratios of counts, ``*_pct``."""
    return [str(c) for c in columns if PERCENT_NAMES.search(str(c))]


def format_table(frame: pd.DataFrame, *, percent: Sequence[str] | None = None, max_text: int = 40,
                 index: bool = False) -> str:
    """``frame`` as a fixed-width text table: a header, a rule, one line per row.

    Numbers are right-aligned with the same decimals down a column (about four significant
    digits for the column's largest value, at most three decimals; integers without decimals,
    thousands separated); the columns in ``percent`` (default: ``percent_columns``) are shown as
    percentages (0.1234 -> 12.3%); missing values (None, NaN, <NA>) as an em dash; text is
    left-aligned and cut at ``max_text`` characters; booleans are yes/no. ``index`` adds the
    index as the first column.
    """
    if index:
        frame = frame.reset_index()
    if percent is None:
        percent = percent_columns(frame.columns)
    headers = [str(c) for c in frame.columns]
    cells: list[list[str]] = []
    numeric: list[bool] = []
    for name in frame.columns:
        column = frame[name]
        is_number = _is_numeric(column)
        numeric.append(is_number)
        if is_number:
            cells.append(_format_numbers(column, percent=str(name) in set(map(str, percent))))
        else:
            cells.append([_format_text(v, max_text) for v in column])
    widths = [max([len(h)] + [len(c) for c in col]) for h, col in zip(headers, cells, strict=True)]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    lines = [line(headers), "  ".join("-" * w for w in widths)]
    lines += [line([col[i] for col in cells]) for i in range(len(frame))]
    return "\n".join(lines)


def _is_numeric(column: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(column):
        return False
    if pd.api.types.is_numeric_dtype(column):
        return True
    values = [v for v in column if not _missing(v)]
    return bool(values) and all(isinstance(v, (int, float, np.integer, np.floating))
                                and not isinstance(v, bool) for v in values)


def _is_integral(column: pd.Series) -> bool:
    """Integer dtypes, or Python/numpy integers among missing values in an object column (a
    float column of whole numbers keeps its decimals: 1.0 is a ratio, not a count)."""
    if pd.api.types.is_integer_dtype(column):
        return True
    if column.dtype != object:
        return False
    values = [v for v in column if not _missing(v)]
    return bool(values) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)


def _missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _format_text(value: object, max_text: int) -> str:
    if _missing(value):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    text = " ".join(str(value).split())
    return text if len(text) <= max_text else text[:max_text - 1] + "\u2026"


def _format_numbers(column: pd.Series, *, percent: bool) -> list[str]:
    values = [None if _missing(v) else float(v) for v in column]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    scale = 100.0 if percent else 1.0
    suffix = "%" if percent else ""
    if _is_integral(column) and not percent:
        decimals = 0
    else:
        largest = max((abs(v) * scale for v in finite), default=0.0)
        # about four significant digits for the largest value (three for percentages), never
        # more than 3 decimals (2 for percentages)
        digits, most = (2, 2) if percent else (3, 3)
        decimals = most if largest == 0.0 else int(min(most, max(0, digits - math.floor(math.log10(largest)))))
    out = []
    for v in values:
        if v is None:
            out.append(MISSING)
        elif not math.isfinite(v):
            out.append("inf" if v > 0 else "-inf")
        else:
            out.append(f"{v * scale:,.{decimals}f}{suffix}")
    return out
