"""Out-of-sample evaluation of a trained policy against baselines, on the shared execution core."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine

from tt_platform.config.run_config import RunConfig
from tt_platform.core.costs import CostModel
from tt_platform.env.factory import make_env
from tt_platform.env.rollout import EpisodeRecord, policy_from_model, rollout
from tt_platform.evaluation.baselines import cash, equal_weight_buy_and_hold
from tt_platform.evaluation.metrics import performance_summary
from tt_platform.evaluation.report import EvaluationResult, write_report
from tt_platform.features.drift import drift_report
from tt_platform.pipeline.training import PolicyRecord, drift_baseline_path, load_market
from tt_platform.training.metrics import record_metrics
from tt_platform.settings import PlatformSettings
from tt_platform.store.episodes import write_episode
from tt_platform.training.checkpoint import load_model
from tt_platform.training.episodes import episode_frames


@dataclass(frozen=True)
class EvaluationOutcome:
    report_path: Path
    episode_id: str
    metrics: dict[str, dict[str, float]]
    test_start: str
    test_end: str
    drift: pd.DataFrame | None = None

    @property
    def drifted_features(self) -> list[str]:
        return [] if self.drift is None else sorted(self.drift.loc[self.drift["drift"], "feature"].astype(str))

    @property
    def excess_sharpe(self) -> float | None:
        policy, baseline = self.metrics["policy"]["sharpe"], self.metrics["buy_and_hold"]["sharpe"]
        return None if policy is None or baseline is None else policy - baseline


def first_test_index(market, policy: PolicyRecord) -> int:
    """The first bar after the policy's training data: out of sample whatever was ingested since."""
    if not policy.train_end:
        raise ValueError(f"policy {policy.policy_id} does not record where its training data ended")
    cut = int(market.timestamps.searchsorted(pd.Timestamp(policy.train_end), side="right"))
    if cut > market.n_steps - 2:
        raise ValueError(
            f"policy {policy.policy_id} was trained until {policy.train_end}: the stored data leaves "
            f"{market.n_steps - cut} bar(s) after that, too few to evaluate"
        )
    return cut


def evaluate(engine: Engine, config: RunConfig, policy: PolicyRecord, settings: PlatformSettings) -> EvaluationOutcome:
    # the universe the policy was trained on: its observation and action spaces depend on it
    loaded = load_market(engine, config, symbols=policy.symbols or None)
    market = loaded.market
    cut = first_test_index(market, policy)
    # the bars before the cut are observation history only; decisions start at the cut. The
    # drawdown stopper is a training device: evaluation runs the whole out-of-sample period so
    # the policy and its baselines are measured over the same bars.
    env_config = config.env.whole_period(stops=False)
    env = make_env(market, env_config)
    model = load_model(policy.model_path)
    record: EpisodeRecord = rollout(env, policy_from_model(model, deterministic=True), options={"start_index": cut})
    policy_equity = record.equity_curve()
    start_index = int(market.timestamps.get_loc(policy_equity.index[0]))
    costs = CostModel(env_config.commission_bps, env_config.slippage_bps, env_config.min_commission)
    curves = {
        "policy": policy_equity,
        "buy_and_hold": equal_weight_buy_and_hold(
            market.timestamps,
            list(market.symbols),
            market.close,
            start_index,
            initial_cash=env_config.initial_cash,
            cost_model=costs,
            gross=min(1.0, env_config.leverage_cap),
        ),
        "cash": cash(market.timestamps, start_index, initial_cash=env_config.initial_cash),
    }
    metrics = {name: performance_summary(curve, record.periods_per_year) for name, curve in curves.items()}
    episode = record_metrics(record)
    metrics["policy"] |= {k: episode[k] for k in ("turnover", "exposure_utilisation", "total_cost")}
    drift = feature_drift(settings, policy.policy_id, loaded.matrix, market.timestamps[cut])
    episode_id = f"eval-{policy.policy_id}-{policy_equity.index[0]:%Y%m%d}-{policy_equity.index[-1]:%Y%m%d}"
    frames = episode_frames(
        record,
        episode_id=episode_id,
        policy_id=policy.policy_id,
        kind="eval",
        seed=policy.seed,
        config={"run_config_hash": config.config_hash},
        metrics=metrics["policy"],
    )
    write_episode(engine, frames.episode, frames.actions, frames.rewards, frames.equity, frames.target_weights)
    # weights are booked at the decision bar, one bar before the mark that shows their result
    decided_at = pd.DatetimeIndex([record.start_timestamp]).append(record.timestamps[:-1])
    weights = pd.DataFrame(record.target_weights, index=decided_at, columns=record.symbols)
    result = EvaluationResult(
        policy_id=policy.policy_id,
        equity=curves,
        metrics=metrics,
        weights=weights,
        lineage={
            "policy_id": policy.policy_id,
            "mlflow_run_id": policy.mlflow_run_id or "",
            "feature_set_hash": policy.feature_set_hash,
            "data_snapshot_hash": policy.data_snapshot_hash,
            "config_hash": policy.config_hash,
            "seed": str(policy.seed),
            "trained_until": policy.train_end,
        },
        period=(str(policy_equity.index[0].date()), str(policy_equity.index[-1].date())),
    )
    path = write_report(result, settings.reports_dir / f"{policy.policy_id}.html")
    return EvaluationOutcome(path, episode_id, metrics, result.period[0], result.period[1], drift)


def feature_drift(settings: PlatformSettings, policy_id: str, matrix, test_start: pd.Timestamp) -> pd.DataFrame | None:
    """Out-of-sample feature drift against the policy's training baseline (None without one)."""
    path = drift_baseline_path(settings, policy_id)
    if not path.is_file():
        return None
    return drift_report(json.loads(path.read_text()), matrix.slice_time(test_start, None))


def attach_report(tracker, policy: PolicyRecord, report_path: Path) -> str | None:
    """Put the report on the MLflow run that trained ``policy``, next to its in-sample numbers;
    returns the URL of the run's artifacts (None when the policy has no MLflow run)."""
    from tt_platform.training.tracking import TrackedRun

    if tracker is None or not policy.mlflow_run_id:
        return None
    run = TrackedRun(tracker, policy.mlflow_run_id, tracker.client.get_run(policy.mlflow_run_id).info.experiment_id)
    run.log_artifact(report_path, "evaluation")
    return f"{run.ui_url}/artifacts"
