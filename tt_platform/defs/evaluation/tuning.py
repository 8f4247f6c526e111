"""Optuna tuning workers as a Dagster job: every run of ``tuning_worker_job`` is one more worker
in the study that ``tt tune`` runs for the same run config.

The study lives in the platform's PostgreSQL (schema ``tt_optuna``) and its name is a hash of
what the trials' values depend on (``tt_platform.pipeline.tuning.study_name``), so runs of this
job launched with the same run config join one study, whichever run launcher starts them and on
whichever machine: launch N runs (Launchpad, ``dagster job launch``) for N workers.
"""

from dataclasses import dataclass

import dagster as dg
from pydantic import Field

from tt_platform.defs.market_data.resources import MarketClockResource
from tt_platform.defs.platform.resources import PlatformResource, RunConfigResource
from tt_platform.pipeline.tuning import (
    storage_url_for,
    study_name,
    study_state,
    tune_worker,
    tuning_config,
)
from tt_platform.store.engine import safe_url

TUNING_KIND_TAG = "tt/kind"
TUNING_KIND = "tuning"
DEFAULT_TRIALS = 10


class TuningWorkerConfig(dg.Config):
    """How long this worker searches; what it searches comes from the run config
    (``resources.run_config.config``: ``evaluation.tuning`` and the walk-forward's folds)."""

    trials: int | None = Field(
        default=DEFAULT_TRIALS,
        description="Trials this worker runs (at least 1). Null: until timeout_seconds, or until the run is "
        "terminated (a trial cut short is marked failed by Optuna's heartbeat).",
    )
    timeout_seconds: float | None = Field(
        default=None,
        description="Seconds after which this worker starts no new trial (the running one finishes). Null: no limit.",
    )


@dataclass(frozen=True)
class TuningWorkerResult:
    """What one worker did, and the study as it stood when the worker finished."""

    study_name: str
    storage: str  # the storage URL without its password
    trials_run: int  # trials this worker ran
    completed_trials: int  # COMPLETE trials in the study, from every worker
    recorded_trials: int  # trials with a validation result: what the deflated Sharpe counts
    best_value: float | None  # the study's best mean validation Sharpe so far
    best_trial: int | None


def _trials(n: int) -> str:
    return f"{n} trial" if n == 1 else f"{n} trials"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _check(config: TuningWorkerConfig) -> None:
    if config.trials is not None and config.trials < 1:
        raise dg.Failure(description=f"tuning_worker: trials must be at least 1 (or null), got {config.trials}")
    if config.timeout_seconds is not None and not config.timeout_seconds > 0:
        raise dg.Failure(
            description=f"tuning_worker: timeout_seconds must be above 0 (or null), got {config.timeout_seconds}"
        )


@dg.op(
    description="One Optuna worker: joins the study of the run config (created when it is the first) in the "
    "platform database and runs trials, each scored on the walk-forward's validation windows only.",
)
def tuning_worker(
    context: dg.OpExecutionContext,
    config: TuningWorkerConfig,
    platform: PlatformResource,
    run_config: RunConfigResource,
    market_clock: MarketClockResource,
) -> dg.Output[TuningWorkerResult]:
    _check(config)
    try:
        run = run_config.load(last_session=market_clock.last_session())
        engine = platform.engine()
        tuning = tuning_config(run)
        name = study_name(run, tuning)
        url = storage_url_for(engine.url)  # carries the password: only safe_url(url) leaves this function
        context.log.info(
            f"tuning worker joins study {name} in {safe_url(url)}: "
            f"{'no trial limit' if config.trials is None else _trials(config.trials)}"
            f"{'' if config.timeout_seconds is None else f', at most {config.timeout_seconds:g} s'}"
        )
        ran = tune_worker(engine, run, platform.settings, n_trials=config.trials, timeout=config.timeout_seconds,
                          storage_url=url, tuning=tuning)
        state = study_state(url, name)
        completed, recorded = state.completed_trials, state.recorded_trials
        best_value, best_trial = state.best_value, state.best_trial
    except (ValueError, LookupError) as exc:  # RunConfigError and StoreConfigError are ValueErrors
        raise dg.Failure(description=f"tuning_worker: {_one_line(exc)}") from exc
    result = TuningWorkerResult(
        study_name=name, storage=safe_url(url), trials_run=ran, completed_trials=completed,
        recorded_trials=recorded, best_value=best_value, best_trial=best_trial,
    )
    best = ("no completed trial yet" if best_value is None
            else f"best trial {best_trial}, mean validation Sharpe {best_value:.3f}")
    context.log.info(
        f"study {name}: this worker ran {_trials(ran)}; the study holds {completed} completed, {recorded} counted "
        f"by the walk-forward's deflated Sharpe; {best}"
    )
    metadata: dict[str, object] = {
        "study_name": name,
        "storage": result.storage,
        "trials_run": ran,
        "completed_trials": completed,
        "recorded_trials": recorded,
    }
    if best_value is not None:
        metadata["best_value"] = round(best_value, 6)
        metadata["best_trial"] = best_trial
    return dg.Output(result, metadata=metadata)


@dg.job(
    name="tuning_worker_job",
    description="One Optuna tuning worker for the run config's study (the study tt tune runs): launch N runs of "
    "this job - from the Launchpad, or with `dagster job launch -w workspace.yaml -j tuning_worker_job -c "
    "launch.yaml [-c worker.yaml]` (launch.yaml from tt launch-config) - and each run is one more worker adding "
    "trials to the same study in the platform database (schema tt_optuna). Every worker runs on whichever run "
    "launcher the instance uses. ops.tuning_worker.config sets trials (default 10; null: until timeout_seconds "
    "or termination) and timeout_seconds per worker; resources.run_config.config is the run config (as for "
    "walk_forward_job): its evaluation.tuning and walk-forward validation windows define the search.",
    tags={TUNING_KIND_TAG: TUNING_KIND},
)
def tuning_worker_job() -> None:
    tuning_worker()
