"""Walk-forward evaluation: plan folds, train (or reuse) a policy per fold and seed, judge each
only on its own out-of-sample slice, then stitch, test for luck and decide.

The Dagster layer (``defs/evaluation/walk_forward.py``) calls these steps one asset at a time;
``tt walk-forward`` runs them through Dagster. Everything a step needs from an earlier one
travels in the dataclasses below, so a fold is evaluated with exactly the policies its fold
trained and the plan it belongs to.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from tt_platform.config.run_config import RunConfig
from tt_platform.env.factory import make_env
from tt_platform.env.rollout import EpisodeRecord, policy_from_model, rollout
from tt_platform.evaluation.backtest import Backtester, BarPanel
from tt_platform.evaluation.baselines import cash, rule_based_baselines
from tt_platform.evaluation.folds import Fold, plan_folds, seed_spread, stitch_out_of_sample
from tt_platform.evaluation.gate import GateVerdict, judge
from tt_platform.evaluation.metrics import returns_from_equity, trading_metrics
from tt_platform.evaluation.significance import SharpeEstimate, deflated_sharpe_ratio
from tt_platform.pipeline.training import LoadedMarket, PolicyRecord, load_market, train
from tt_platform.settings import PlatformSettings
from tt_platform.store.episodes import write_episode
from tt_platform.training.checkpoint import code_version, load_model
from tt_platform.training.episodes import episode_frames
from tt_platform.training.tracking import MlflowTracker, TrackedRun

BASELINES = ("buy_and_hold", "equal_weight", "risk_matched", "momentum", "cash")
# what the gate compares with (momentum is reported, not required to be beaten)
GATE_BASELINES = ("buy_and_hold", "equal_weight", "risk_matched", "cash")
# metrics logged to MLflow and shown in tables, under their out-of-sample names
OOS_METRICS = ("sharpe", "sortino", "cagr", "total_return", "annual_volatility", "max_drawdown", "calmar",
               "hit_rate", "win_ratio", "profit_factor", "turnover", "exposure", "time_invested")


@dataclass(frozen=True)
class WalkForwardPlan:
    """The folds of one walk-forward: which bars each fold trains and tests on, for which seeds,
    on which universe, and the MLflow run the fold runs hang under."""

    plan_key: str  # config (all seeds) + feature set + data: two plans with one key are the same
    name: str
    config_hash: str
    feature_set_hash: str
    data_snapshot_hash: str
    symbols: tuple[str, ...]
    watchlist_hash: str
    folds: tuple[Fold, ...]
    seeds: tuple[int, ...]
    mlflow_run_id: str | None = None
    mlflow_run_url: str | None = None

    def fold(self, partition_key: str) -> Fold:
        for fold in self.folds:
            if fold.partition_key == partition_key:
                return fold
        raise LookupError(
            f"fold {partition_key!r} is not in walk-forward plan {self.plan_key} "
            f"(its folds: {', '.join(f.partition_key for f in self.folds)}); materialize walk_forward_plan again"
        )


@dataclass(frozen=True)
class FoldPolicies:
    plan_key: str
    fold_key: str
    policy_ids: dict[int, str]  # seed -> policy id
    mlflow_run_ids: dict[int, str | None] = field(default_factory=dict)
    reused: tuple[int, ...] = ()  # seeds whose policy was already trained on the same data


@dataclass(frozen=True)
class FoldEvaluation:
    """One fold's out-of-sample slice: the policy of every seed and every baseline, on the same bars."""

    plan_key: str
    fold_key: str
    test_period: tuple[str, str]
    policy_curves: dict[int, pd.Series]  # seed -> equity over the test slice
    baseline_curves: dict[str, pd.Series]
    policy_metrics: dict[int, dict[str, float | None]]
    baseline_metrics: dict[str, dict[str, float | None]]
    weights: dict[int, pd.DataFrame]  # seed -> target weights (decision bar x symbol)
    costs: dict[int, dict[str, float]]  # seed -> commission and slippage (currency)
    policy_ids: dict[int, str] = field(default_factory=dict)
    mlflow_run_ids: dict[int, str | None] = field(default_factory=dict)  # seed -> training run


def _market_config(config: RunConfig, seed: int) -> RunConfig:
    return config.with_overrides(**{"training.seed": seed})


def plan_walk_forward(
    engine: Engine,
    config: RunConfig,
    *,
    symbols: Sequence[str] | None = None,
    watchlist_hash: str | None = None,
    tracker: MlflowTracker | None = None,
) -> WalkForwardPlan:
    """Fold the stored bars of the run's range by ``evaluation.walk_forward`` and open the
    walk-forward's MLflow run (the parent of every fold and seed run)."""
    loaded = load_market(engine, config, symbols=symbols, watchlist_hash=watchlist_hash)
    walk = config.evaluation.walk_forward
    folds = tuple(plan_folds(loaded.market.timestamps, walk))
    data_hash = loaded.market.data_hash()
    # the seeds are the plan's, not one run's: hash the config without its training seed, and
    # the walk-forward's layout (which the config hash leaves to the policies' data hashes)
    config_hash = _market_config(config, 0).config_hash
    identity = f"{config_hash}|{walk.key()}|{loaded.matrix.feature_set_hash}|{data_hash}"
    plan_key = hashlib.sha256(identity.encode()).hexdigest()[:12]
    run_id = run_url = None
    if tracker is not None:
        run_id, run_url = _open_parent_run(tracker, config, plan_key, folds, loaded, data_hash)
    return WalkForwardPlan(
        plan_key=plan_key,
        name=config.name,
        config_hash=config_hash,
        feature_set_hash=loaded.matrix.feature_set_hash,
        data_snapshot_hash=data_hash,
        symbols=tuple(loaded.market.symbols),
        watchlist_hash=loaded.watchlist_hash,
        folds=folds,
        seeds=tuple(walk.seeds),
        mlflow_run_id=run_id,
        mlflow_run_url=run_url,
    )


def _open_parent_run(tracker, config, plan_key, folds, loaded, data_hash) -> tuple[str, str]:
    """One MLflow run per walk-forward plan (found again by its plan key, never duplicated)."""
    existing = tracker.client.search_runs(
        [tracker.experiment_id], filter_string=f"tags.`tt.walk_forward_plan` = '{plan_key}'", max_results=1
    )
    if existing:
        run = existing[0]
        return run.info.run_id, f"{tracker.ui_url}/#/experiments/{tracker.experiment_id}/runs/{run.info.run_id}"
    walk = config.evaluation.walk_forward
    with tracker.start_run(run_name=f"walk-forward {config.name} {plan_key}",
                           tags={"tt.walk_forward_plan": plan_key, "tt.kind": "walk_forward"}) as run:
        run.log_params({
            "walk_forward": walk.model_dump(mode="json"),
            "gate": config.evaluation.gate.model_dump(mode="json"),
            "train": config.training.model_dump(mode="json", exclude={"seed"}),
            "env": config.env.model_dump(mode="json"),
            "feature_set_hash": loaded.matrix.feature_set_hash,
            "data_snapshot_hash": data_hash,
            "symbols": ",".join(loaded.market.symbols),
            "folds": len(folds),
            "code_version": code_version(),
        })
        run.log_dict([_fold_row(f) for f in folds], "folds.json")
    # the parent stays open in the UI as FINISHED; fold runs attach to it as children
    return run.run_id, run.ui_url


def _fold_row(fold: Fold) -> dict[str, object]:
    row: dict[str, object] = {
        "fold": fold.partition_key,
        "train": f"{fold.train.start.date()}..{fold.train.end.date()}",
        "train_bars": fold.train.n_bars,
        "test": f"{fold.test.start.date()}..{fold.test.end.date()}",
        "test_bars": fold.test.n_bars,
    }
    if fold.validation is not None:
        row["validation"] = f"{fold.validation.start.date()}..{fold.validation.end.date()}"
    return row


def fold_table(plan: WalkForwardPlan) -> pd.DataFrame:
    return pd.DataFrame([_fold_row(f) for f in plan.folds])


def train_fold(
    engine: Engine,
    config: RunConfig,
    settings: PlatformSettings,
    plan: WalkForwardPlan,
    fold_key: str,
    *,
    tracker: MlflowTracker | None,
    progress: bool = False,
) -> FoldPolicies:
    """A policy per seed on the fold's training bars, or the one already trained on them."""
    fold = plan.fold(fold_key)
    loaded = plan_market(engine, config, plan)
    ids: dict[int, str] = {}
    runs: dict[int, str | None] = {}
    reused: list[int] = []
    for seed in plan.seeds:
        seeded = _market_config(config, seed)
        child = None if tracker is None or plan.mlflow_run_id is None else tracker.child_of(
            plan.mlflow_run_id, {"tt.fold": fold_key, "tt.seed": seed, "tt.walk_forward_plan": plan.plan_key}
        )
        record = train(
            engine, seeded, settings, tracker=child, progress=progress, loaded=loaded,
            rows=fold.train.positions, run_name=f"{fold_key} seed {seed}", reuse=True,
        )
        ids[seed], runs[seed] = record.policy_id, record.mlflow_run_id
        if record.reused:
            reused.append(seed)
    return FoldPolicies(plan.plan_key, fold_key, ids, runs, tuple(reused))


def plan_market(
    engine: Engine, config: RunConfig, plan: WalkForwardPlan, *, remedy: str = "materialize walk_forward_plan again"
) -> LoadedMarket:
    """The bars and features ``plan`` was made on; ValueError (ending with ``remedy``) when they changed since."""
    loaded = load_market(engine, config, symbols=list(plan.symbols), watchlist_hash=plan.watchlist_hash)
    if loaded.market.data_hash() != plan.data_snapshot_hash:
        raise ValueError(
            f"the stored bars or features changed since walk-forward plan {plan.plan_key} was made "
            f"(data {loaded.market.data_hash()} != {plan.data_snapshot_hash}); {remedy}"
        )
    return loaded


def evaluate_fold(
    engine: Engine,
    config: RunConfig,
    plan: WalkForwardPlan,
    policies: FoldPolicies,
    policy_records: dict[int, PolicyRecord],
    *,
    tracker: MlflowTracker | None = None,
) -> FoldEvaluation:
    """Each seed's policy and every baseline over the fold's test bars, nothing else."""
    if policies.plan_key != plan.plan_key:
        raise ValueError(f"fold {policies.fold_key} was trained for plan {policies.plan_key}, not {plan.plan_key}")
    fold = plan.fold(policies.fold_key)
    loaded = plan_market(engine, config, plan)
    # the market ends with the fold's last test bar: the episode cannot run past its slice
    market = loaded.market.take(slice(0, fold.test.last + 1))
    env_config = config.env.whole_period(stops=False)
    periods = float(env_config.periods_per_year or market.periods_per_year)
    curves, metrics, weights, costs = {}, {}, {}, {}
    for seed, record in sorted(policy_records.items()):
        episode = rollout(make_env(market, env_config), policy_from_model(load_model(record.model_path), deterministic=True),
                          options={"start_index": fold.test.first})
        curves[seed] = episode.equity_curve()
        metrics[seed] = _episode_metrics(episode, periods)
        decided_at = pd.DatetimeIndex([episode.start_timestamp]).append(episode.timestamps[:-1])
        weights[seed] = pd.DataFrame(episode.target_weights, index=decided_at, columns=episode.symbols)
        costs[seed] = _cost_split(episode, env_config)
        _write_eval_episode(engine, config, record, episode, fold, metrics[seed])
    start_index = int(market.timestamps.get_loc(next(iter(curves.values())).index[0]))
    baselines = _baseline_curves(market, start_index, config, env_config, metrics)
    baseline_metrics = {name: trading_metrics(curve, periods_per_year=periods) for name, curve in baselines.items()}
    evaluation = FoldEvaluation(
        plan_key=plan.plan_key,
        fold_key=fold.partition_key,
        test_period=(str(fold.test.start.date()), str(fold.test.end.date())),
        policy_curves=curves,
        baseline_curves=baselines,
        policy_metrics=metrics,
        baseline_metrics=baseline_metrics,
        weights=weights,
        costs=costs,
        policy_ids=dict(policies.policy_ids),
        mlflow_run_ids=dict(policies.mlflow_run_ids),
    )
    if tracker is not None:
        _log_fold_to_mlflow(tracker, policies, evaluation)
    return evaluation


def _episode_metrics(episode: EpisodeRecord, periods: float) -> dict[str, float | None]:
    # exposure held during each return is what the step booked at its decision bar
    exposure = pd.Series(np.abs(episode.target_weights).sum(axis=1))
    turnover = pd.Series(episode.turnover)
    return trading_metrics(episode.equity_curve(), exposure, turnover, periods_per_year=periods)


def _cost_split(episode: EpisodeRecord, env_config) -> dict[str, float]:
    """Commission and slippage in currency: the episode books their sum per step, and both are
    linear in traded value with the bps model, so the split follows the two rates."""
    total = float(episode.cost.sum())
    rates = env_config.commission_bps + env_config.slippage_bps
    slippage = total * env_config.slippage_bps / rates if rates > 0 else 0.0
    return {"commission": total - slippage, "slippage": slippage, "total": total}


def _baseline_curves(market, start_index: int, config: RunConfig, env_config, policy_metrics) -> dict[str, pd.Series]:
    """The rule-based strategies on the same backtester, costs and risk gate as the policy,
    decisions from the fold's first test bar on (earlier bars are their history only)."""
    symbols = list(market.symbols)
    benchmark = config.evaluation.gate.benchmark.upper()
    results = rule_based_baselines(
        BarPanel.from_market(market),
        Backtester.from_env_config(env_config),
        start=start_index,
        benchmark=benchmark if benchmark in symbols else None,
        target_vol=_policy_volatility(policy_metrics),
        gross=min(1.0, env_config.leverage_cap),
    )
    flat = cash(market.timestamps, start_index, initial_cash=env_config.initial_cash)
    return {
        "buy_and_hold": results["buy_and_hold"].equity,
        "equal_weight": results["equal_weight"].equity,
        # a policy that never moved has no risk to match: the same-risk portfolio is cash
        "risk_matched": results["vol_target_equal_weight"].equity if "vol_target_equal_weight" in results else flat,
        "momentum": results["momentum"].equity,
        "cash": flat,
    }


def _policy_volatility(policy_metrics) -> float | None:
    """The seeds' median realised annual volatility: the risk-matched baseline's target."""
    vols = [m.get("annual_volatility") for m in policy_metrics.values()]
    vols = [v for v in vols if v is not None and v > 0]
    return float(np.median(vols)) if vols else None


def _periods_per_year(curve: pd.Series) -> float:
    days = (curve.index[-1] - curve.index[0]).total_seconds() / 86400.0
    return 252.0 if days <= 0 else (len(curve) - 1) / days * 365.25


def _write_eval_episode(engine, config, record: PolicyRecord, episode: EpisodeRecord, fold: Fold, metrics) -> None:
    frames = episode_frames(
        episode,
        episode_id=f"wf-{record.policy_id}-{fold.partition_key}",
        policy_id=record.policy_id,
        kind="eval",
        seed=record.seed,
        config={"run_config_hash": config.config_hash, "fold": fold.partition_key},
        metrics={k: v for k, v in metrics.items() if v is not None},
    )
    write_episode(engine, frames.episode, frames.actions, frames.rewards, frames.equity, frames.target_weights)


def _log_fold_to_mlflow(tracker: MlflowTracker, policies: FoldPolicies, evaluation: FoldEvaluation) -> None:
    """Out-of-sample metrics on each seed's training run, next to its in-sample ones."""
    for seed, run_id in policies.mlflow_run_ids.items():
        if not run_id:
            continue
        oos = {f"oos_{k}": v for k, v in evaluation.policy_metrics[seed].items() if k in OOS_METRICS}
        for name, metrics in evaluation.baseline_metrics.items():
            oos[f"oos_{name}_sharpe"] = metrics.get("sharpe")
        TrackedRun(tracker, run_id, tracker.experiment_id).log_metrics(oos)


# -- the walk-forward as a whole --------------------------------------------------------------


@dataclass(frozen=True)
class WalkForwardSummary:
    plan: WalkForwardPlan
    folds: tuple[FoldEvaluation, ...]
    stitched: dict[str, pd.Series]  # "policy (seed s)" and each baseline -> stitched equity
    metrics: dict[str, dict[str, float | None]]  # same keys -> metrics over the stitched curve
    seed_spread: dict[str, dict[str, float | None]]
    deflated: dict[str, float | None]
    n_trials: int
    verdict: GateVerdict
    primary_seed: int

    def to_json(self) -> str:
        """Byte-identical for the same inputs: sorted keys, rounded floats, no timestamps of now."""
        payload = {
            "plan_key": self.plan.plan_key,
            "name": self.plan.name,
            "code_version": code_version(),
            "config_hash": self.plan.config_hash,
            "feature_set_hash": self.plan.feature_set_hash,
            "data_snapshot_hash": self.plan.data_snapshot_hash,
            "symbols": list(self.plan.symbols),
            "seeds": list(self.plan.seeds),
            "primary_seed": self.primary_seed,
            "folds": [
                {
                    "fold": f.fold_key,
                    "test": list(f.test_period),
                    "policy_ids": {str(s): p for s, p in sorted(f.policy_ids.items())},
                    "policy": {str(s): _rounded(m) for s, m in sorted(f.policy_metrics.items())},
                    "baselines": {n: _rounded(m) for n, m in sorted(f.baseline_metrics.items())},
                }
                for f in self.folds
            ],
            "walk_forward": {n: _rounded(m) for n, m in sorted(self.metrics.items())},
            "seed_spread": {n: _rounded(m) for n, m in sorted(self.seed_spread.items())},
            "deflated_sharpe": _rounded(self.deflated),
            "n_trials": self.n_trials,
            "gate": {"passed": self.verdict.passed, "checks": [asdict(c) for c in self.verdict.checks]},
        }
        return json.dumps(payload, sort_keys=True, indent=2, allow_nan=False) + "\n"


def _rounded(values: dict) -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, float):
            out[key] = None if not math.isfinite(value) else float(f"{value:.10g}")
        elif isinstance(value, dict):
            out[key] = _rounded(value)
        else:
            out[key] = value
    return out


def summarize(plan: WalkForwardPlan, folds: Sequence[FoldEvaluation], config: RunConfig, *, extra_trials: int = 0) -> WalkForwardSummary:
    """Stitch every seed's and baseline's out-of-sample curves, test the primary seed's result
    for luck among all trials (every fold x seed, plus ``extra_trials`` from tuning), and judge it."""
    by_key = {f.fold_key: f for f in folds}
    missing = [f.partition_key for f in plan.folds if f.partition_key not in by_key]
    if missing:
        raise ValueError(f"walk-forward {plan.plan_key}: folds {missing} are not evaluated yet; materialize fold_evaluation for them")
    stale = [f.fold_key for f in folds if f.plan_key != plan.plan_key]
    if stale:
        raise ValueError(f"folds {stale} were evaluated for another walk-forward plan; materialize them again")
    ordered = [by_key[f.partition_key] for f in plan.folds]
    periods = float(config.env.periods_per_year or _periods_per_year(ordered[0].baseline_curves["cash"]))
    stitched: dict[str, pd.Series] = {}
    for seed in plan.seeds:
        stitched[f"policy (seed {seed})"] = stitch_out_of_sample([f.policy_curves[seed] for f in ordered])
    for name in BASELINES:
        stitched[name] = stitch_out_of_sample([f.baseline_curves[name] for f in ordered])
    exposure = {seed: pd.concat([_exposure(f.weights[seed]) for f in ordered]) for seed in plan.seeds}
    metrics = {}
    for name, curve in stitched.items():
        metrics[name] = trading_metrics(curve, periods_per_year=periods)
    for seed in plan.seeds:
        weights_exposure = exposure[seed]
        metrics[f"policy (seed {seed})"]["exposure"] = float(weights_exposure.mean()) if len(weights_exposure) else None
    spread = seed_spread({seed: metrics[f"policy (seed {seed})"] for seed in plan.seeds})
    primary = _median_seed(plan.seeds, metrics)
    policy_name = f"policy (seed {primary})"
    # a trial is one candidate that could have been picked: each seed (over the same stitched
    # period) and each tuning trial. Folds are not trials: together they are one evaluation.
    trial_sharpes = [metrics[f"policy (seed {seed})"].get("sharpe") for seed in plan.seeds]
    n_trials = len(plan.seeds) + extra_trials
    deflated = _deflated(stitched[policy_name], trial_sharpes, n_trials, periods)
    gate = config.evaluation.gate
    verdict = judge(
        metrics[policy_name],
        {name: metrics[name] for name in GATE_BASELINES},
        deflated_sharpe=deflated.get("dsr"),
        min_sharpe_margin=gate.min_sharpe_margin,
        min_deflated_sharpe=gate.min_deflated_sharpe,
    )
    return WalkForwardSummary(plan, tuple(ordered), stitched, metrics, spread, deflated, n_trials, verdict, primary)


def _exposure(weights: pd.DataFrame) -> pd.Series:
    return weights.abs().sum(axis=1)


def _median_seed(seeds: Sequence[int], metrics) -> int:
    """The seed whose stitched Sharpe is the median: the gate judges a typical seed, not the best."""
    ranked = sorted(seeds, key=lambda s: (metrics[f"policy (seed {s})"].get("sharpe") or -math.inf, s))
    return ranked[(len(ranked) - 1) // 2]


def _deflated(curve: pd.Series, trial_sharpes, n_trials: int, periods: float) -> dict[str, float | None]:
    """Per-period Sharpe ratios in, annualised ones alongside for reading.

    The variance of the trials' Sharpe ratios comes from the seeds' stitched Sharpe ratios when
    there are two or more; otherwise (one seed, tuning trials scored on other windows) from the
    sampling variance of a Sharpe ratio estimate, (1 + SR^2 / 2) / T: the trials are taken to
    differ by estimation noise alone, the least a search over them can gain by luck."""
    returns = returns_from_equity(curve)
    defined = [s / math.sqrt(periods) for s in trial_sharpes if s is not None and math.isfinite(s)]
    try:
        estimate = SharpeEstimate.from_returns(returns)
        if n_trials <= 1:
            result = deflated_sharpe_ratio(estimate, 1)
        elif len(defined) >= 2 and float(np.var(defined, ddof=1)) > 0:
            result = deflated_sharpe_ratio(estimate, n_trials, trial_sharpes=defined)
        else:
            noise = (1.0 + 0.5 * estimate.sharpe**2) / estimate.n_observations
            result = deflated_sharpe_ratio(estimate, n_trials, trial_sr_variance=noise)
    except ValueError as exc:
        return {"dsr": None, "psr": None, "sr0": None, "reason": str(exc)}  # type: ignore[dict-item]
    return {
        "dsr": result.dsr,
        "psr": result.psr,
        "sr0": result.sr0,
        "sr0_annualised": result.sr0 * math.sqrt(periods),
        "sharpe_per_period": result.sharpe,
        "observations": float(result.n_observations),
    }


def write_summary(summary: WalkForwardSummary, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"walk-forward-{summary.plan.plan_key}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(summary.to_json())
    tmp.replace(path)
    return path
