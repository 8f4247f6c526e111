"""Hyperparameter search with Optuna, judged only on the walk-forward's validation folds.

``tt tune`` samples ``training`` keys (``evaluation.tuning.search_space``, see
``tt_platform.config.tuning``), trains every fold of the walk-forward plan on its training
window and scores the policy on that fold's validation window: bars after the training window
(and its purge) and before the fold's own purge and test slice. The test slices are never read:
the episode's market ends with the validation window's last bar, so not even the environment
can look past it. A trial's value is the mean validation Sharpe (annualised) over folds, each
fold the mean over the walk-forward's seeds; a fold whose Sharpe is undefined (equity never
moved) scores ``evaluation.tuning.undefined_sharpe`` (default -10), so a policy that stays in
cash never looks good. Per fold and seed the validation metrics go into the trial's user
attributes (``validation``), with the values trained with (``params_applied``).

Scale-out: the study lives in the platform's PostgreSQL, in its own schema (``tt_optuna``, or
``<schema>_optuna`` when the platform's URL pins a search_path): Optuna keeps its Alembic
history in a table named ``alembic_version``, which Dagster already uses in the platform's
schema. Every process that runs ``tt tune`` with the same config against the same database
joins the same study (its name is a hash of what the trials' values depend on, without the
tuned keys), so workers on any machine that reaches the database add trials to it; a Dagster
run launcher can start them (``tune_worker``). ``run_tuning(..., workers=n)`` starts ``n - 1``
such processes here. Trials of a worker that dies are marked failed by the heartbeat.

No MLflow run per trial (there would be folds x seeds x trials of them): the study is the
record of the search, and every trained policy is registered in ``tt_policy`` with its lineage.
Training is ``train(..., reuse=True)``: a walk-forward run with the chosen values then finds the
tuning's fold policies already trained.

Every trial that produced a validation result (COMPLETE, and PRUNED after at least one fold)
was looked at, so the walk-forward report adds ``recorded_trials`` to the deflated Sharpe's
number of trials.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
import os
import re
import socket
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from tt_platform.config.run_config import RunConfig, RunConfigError, _watchlist_identity
from tt_platform.config.tuning import TuningConfig
from tt_platform.env.factory import make_env
from tt_platform.env.rollout import policy_from_model, rollout
from tt_platform.evaluation.folds import Fold
from tt_platform.evaluation.metrics import trading_metrics
from tt_platform.pipeline.training import LoadedMarket, train
from tt_platform.pipeline.walk_forward import WalkForwardPlan, plan_walk_forward
from tt_platform.pipeline.walk_forward import plan_market as walk_forward_plan_market
from tt_platform.settings import PlatformSettings
from tt_platform.store.engine import (
    connection_failure,
    create_store_engine,
    database_url,
    normalize_url,
    safe_url,
)
from tt_platform.training.checkpoint import load_model

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

OPTUNA_SCHEMA = "tt_optuna"
_SCHEMA_SUFFIX = "_optuna"
_MAX_IDENTIFIER = 63  # PostgreSQL truncates longer names
_STORAGE_LOCK_KEY = 0x74744F50  # "ttOP": serialises creating the schema and Optuna's tables
HEARTBEAT_SECONDS = 60  # a RUNNING trial without a heartbeat for 2 x this is marked FAIL
PRUNER_STARTUP_TRIALS = 5

# training keys that do not change what a policy learns (or that tuning overrides per fold):
# left out of the study's identity, so changing them joins the same study
_RUNTIME_TRAINING_KEYS = ("seed", "device", "torch_threads", "checkpoint_every", "eval_episode", "vec_env")
_VALIDATION_METRICS = ("sharpe", "total_return", "annual_volatility", "max_drawdown", "turnover", "exposure")

# trial user attributes
ATTR_PARAMS = "params_applied"  # the training values trained with (after PPO's batch rule)
ATTR_VALIDATION = "validation"  # fold -> seed -> validation metrics
ATTR_FOLD_SHARPE = "validation_sharpe"  # fold -> its score (mean over seeds, undefined scored low)
ATTR_VALIDATED_FOLDS = "validated_folds"  # folds scored so far: > 0 means the trial counts
ATTR_POLICIES = "policy_ids"  # fold -> seed -> policy id
ATTR_WORKER = "worker"
ATTR_PLAN = "plan_key"
ATTR_INVALID = "invalid"


@dataclass(frozen=True)
class TuningResult:
    study_name: str
    storage: str  # the storage URL without its password
    plan_key: str
    best_params: dict[str, Any]  # training key -> value of the best trial (as trained with)
    best_value: float | None  # its mean validation Sharpe; None before any trial completed
    best_trial: int | None
    completed_trials: int  # COMPLETE trials in the study, from every worker
    recorded_trials: int  # trials with a validation result: what the deflated Sharpe counts
    trials_run: int  # trials this call ran, in all its processes

    @property
    def overrides(self) -> dict[str, Any]:
        """The best values as run-config overrides (``training.learning_rate``: ...)."""
        return {f"training.{key}": value for key, value in self.best_params.items()}


# ----------------------------------------------------------------------------- identity


def tuning_config(config: RunConfig) -> TuningConfig:
    """``config.evaluation.tuning`` when the run config has it, else the defaults."""
    tuning = getattr(config.evaluation, "tuning", None)
    return tuning if isinstance(tuning, TuningConfig) else TuningConfig()


def study_name(config: RunConfig, tuning: TuningConfig | None = None) -> str:
    """``tune-<config name>-<12 hex>``: the same for every config whose trials are judged alike.

    The hash covers the universe, the data range (``data.end`` as written), the env, the
    training section without the tuned keys and runtime keys (and without the seed: the
    walk-forward's seeds train every fold), the walk-forward's fold layout and seeds, the search
    space and the score of an undefined Sharpe. A config with the chosen values filled in thus
    names the study that chose them."""
    tuning = tuning or tuning_config(config)
    written = config.as_written()
    skipped = set(tuning.space.keys) | set(_RUNTIME_TRAINING_KEYS)
    universe = dict(written["universe"])
    if config.universe.watchlist is not None:
        universe["watchlist"] = _watchlist_identity(config.universe.watchlist)
    payload = {
        "universe": universe,
        "data": {k: v for k, v in written["data"].items() if k not in ("csv_dir", "symbols")},
        "env": written["env"],
        "training": {k: v for k, v in written["training"].items() if k not in skipped},
        "walk_forward": config.evaluation.walk_forward.key_payload(),
        "search_space": tuning.space.payload(),
        "undefined_sharpe": tuning.undefined_sharpe,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
    return f"tune-{config.name}-{digest}"


# ----------------------------------------------------------------------------- storage

_SEARCH_PATH = re.compile(r"(?:-c\s*|--)search_path=(\S+)")


def _options(url: URL) -> str:
    value = url.query.get("options")
    if isinstance(value, tuple):
        value = " ".join(value)
    return value or ""


def _first_schema(url: URL) -> str | None:
    """The first schema of the URL's libpq ``options`` search_path (None: not set)."""
    match = _SEARCH_PATH.search(_options(url))
    if not match:
        return None
    for entry in match.group(1).split(","):
        entry = entry.strip().strip('"')
        if entry and not entry.startswith("$"):
            return entry
    return None


def _optuna_schema(platform_schema: str | None) -> str:
    if not platform_schema or platform_schema == "public":
        return OPTUNA_SCHEMA
    name = f"{platform_schema}{_SCHEMA_SUFFIX}"
    if len(name) > _MAX_IDENTIFIER:
        digest = hashlib.sha256(platform_schema.encode()).hexdigest()[:8]
        name = f"{platform_schema[:_MAX_IDENTIFIER - len(_SCHEMA_SUFFIX) - 9]}_{digest}{_SCHEMA_SUFFIX}"
    return name


def storage_url_for(platform_url: str | URL, schema: str | None = None) -> str:
    """Optuna's storage URL on the database of ``platform_url`` (psycopg2), with every
    connection's search_path set to the study schema: ``schema``, else ``tt_optuna`` (or
    ``<schema>_optuna`` when ``platform_url`` pins a search_path to ``<schema>``).

    Carries the password: log it only through ``safe_url``."""
    parsed = normalize_url(platform_url)
    schema = schema or _optuna_schema(_first_schema(parsed))
    others = _SEARCH_PATH.sub("", _options(parsed)).strip()
    options = f"{others} -csearch_path={schema}".strip()
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


def optuna_storage_url(settings: PlatformSettings) -> str:
    """The platform database (``TT_DB_URL`` or the embedded server) as Optuna's storage URL
    (``postgresql+psycopg2://...``, study schema ``tt_optuna``). Carries the password."""
    return storage_url_for(database_url(settings))


def _storage_url(url: str) -> str:
    """A PostgreSQL URL in any spelling as psycopg2's; other Optuna storages as given."""
    try:
        backend = make_url(url).get_backend_name()
    except sa.exc.ArgumentError:
        raise ValueError("cannot parse the Optuna storage URL") from None
    return normalize_url(url).render_as_string(hide_password=False) if backend in ("postgres", "postgresql") else url


def _is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def _open_storage(url: str, *, create: bool) -> optuna.storages.RDBStorage | None:
    """Optuna's RDB storage on ``url``. On PostgreSQL its schema and tables are created when
    missing (with ``create``; else None is returned), under an advisory lock so that workers
    starting together do not race each other."""
    import optuna

    url = _storage_url(url)
    if not _is_postgres(url):
        if not create and not _has_optuna_tables(url):
            return None
        return _rdb_storage(url, create=create)
    schema = _first_schema(make_url(url))
    engine = create_store_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(sa.text("SELECT pg_advisory_lock(:key, hashtext(:schema))"),
                         {"key": _STORAGE_LOCK_KEY, "schema": schema or ""})
            try:
                if schema is not None and not _schema_exists(conn, schema):
                    if not create:
                        return None
                    conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
                if not create and not sa.inspect(conn).has_table("studies", schema=schema):
                    return None
                return _rdb_storage(url, create=create)
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key, hashtext(:schema))"),
                             {"key": _STORAGE_LOCK_KEY, "schema": schema or ""})
    except sa.exc.OperationalError as exc:
        raise connection_failure(url, exc) from None
    except optuna.exceptions.StorageInternalError as exc:
        raise RuntimeError(f"Optuna storage {safe_url(url)}: {exc}") from None
    finally:
        engine.dispose()


def _has_optuna_tables(url: str) -> bool:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return sa.inspect(engine).has_table("studies")
    finally:
        engine.dispose()


def _schema_exists(conn: sa.Connection, schema: str) -> bool:
    found = conn.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :name"), {"name": schema}).first()
    return found is not None


def _rdb_storage(url: str, *, create: bool) -> optuna.storages.RDBStorage:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat_interval
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs={"pool_pre_ping": True},
            heartbeat_interval=HEARTBEAT_SECONDS if create else None,
            skip_table_creation=not create,
        )


def _close(storage: optuna.storages.RDBStorage | None) -> None:
    if storage is not None:
        storage.remove_session()
        storage.engine.dispose()


# ----------------------------------------------------------------------------- the objective


def validation_folds(plan: WalkForwardPlan) -> tuple[Fold, ...]:
    """The plan's folds, each with a validation window; a ValueError saying what to set if not."""
    missing = [fold.partition_key for fold in plan.folds if fold.validation is None]
    if missing:
        raise ValueError(
            f"tuning scores trials on the walk-forward's validation windows, never its test folds, "
            f"but {len(missing)} of the {len(plan.folds)} folds of plan {plan.plan_key} have none: "
            "set evaluation.walk_forward.validation_bars above 0 (bars between each fold's training "
            "and test slices; for a single split sized by shares, fractions.validation)"
        )
    return plan.folds


def plan_market(engine: Engine, config: RunConfig, plan: WalkForwardPlan) -> LoadedMarket:
    """The bars and features ``plan`` was made on; ValueError when they changed since."""
    return walk_forward_plan_market(engine, config, plan, remedy="start the tuning again")


def validation_episode_metrics(loaded: LoadedMarket, fold: Fold, env_config, model_path: str) -> dict[str, float | None]:
    """The policy at ``model_path`` over the fold's validation window, as ``evaluate_fold`` runs
    a test slice: deterministic, from the window's first bar, no stops. The market ends with
    the window's last bar, so no later bar (purge, test) can reach the episode."""
    validation = fold.validation
    if validation is None:
        raise ValueError(f"fold {fold.partition_key} has no validation window")
    market = loaded.market.take(slice(0, validation.last + 1))
    episode = rollout(make_env(market, env_config), policy_from_model(load_model(model_path), deterministic=True),
                      options={"start_index": validation.first})
    periods = float(env_config.periods_per_year or market.periods_per_year)
    exposure = pd.Series(np.abs(episode.target_weights).sum(axis=1))
    metrics = trading_metrics(episode.equity_curve(), exposure, pd.Series(episode.turnover), periods_per_year=periods)
    metrics["first_bar"] = str(episode.start_timestamp)  # type: ignore[assignment]
    metrics["last_bar"] = str(episode.timestamps[-1]) if len(episode.timestamps) else None  # type: ignore[assignment]
    return metrics


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def objective(
    trial: optuna.trial.BaseTrial,
    engine: Engine,
    config: RunConfig,
    settings: PlatformSettings,
    plan: WalkForwardPlan,
    *,
    tuning: TuningConfig | None = None,
    loaded: LoadedMarket | None = None,
    worker_id: str | None = None,
) -> float:
    """One trial: sample the search space, train every fold of ``plan`` on its training window
    (for each of the plan's seeds), score the policies on the fold's validation window only.

    Returns the mean over folds of the fold's mean validation Sharpe over seeds (an undefined
    Sharpe scores ``tuning.undefined_sharpe``). After each fold the running mean is reported, and
    with ``tuning.prune`` a trial below the median of earlier ones stops there (PRUNED). A
    sampled combination the run config refuses is pruned before any training (not counted)."""
    import optuna

    tuning = tuning or tuning_config(config)
    folds = validation_folds(plan)
    loaded = loaded or plan_market(engine, config, plan)
    params = tuning.space.sample(trial, config.training)
    trial.set_user_attr(ATTR_PARAMS, params)
    trial.set_user_attr(ATTR_PLAN, plan.plan_key)
    if worker_id:
        trial.set_user_attr(ATTR_WORKER, worker_id)
    try:
        trial_config = config.with_overrides(**{f"training.{key}": value for key, value in params.items()})
    except RunConfigError as exc:
        trial.set_user_attr(ATTR_INVALID, str(exc))
        raise optuna.TrialPruned(f"the sampled values make an invalid config: {exc}") from None
    env_config = trial_config.env.whole_period(stops=False)
    details: dict[str, dict[str, dict[str, Any]]] = {}
    policies: dict[str, dict[str, str]] = {}
    scores: dict[str, float] = {}
    running = tuning.undefined_sharpe
    for step, fold in enumerate(folds):
        key = fold.partition_key
        details[key], policies[key] = {}, {}
        sharpes = []
        for seed in plan.seeds:
            seeded = trial_config.with_overrides(**{"training.seed": seed})
            record = train(
                engine, seeded, settings, tracker=None, loaded=loaded, rows=fold.train.positions,
                run_name=f"tune trial {trial.number} {key} seed {seed}", reuse=True,
            )
            metrics = validation_episode_metrics(loaded, fold, env_config, record.model_path)
            details[key][str(seed)] = {name: _finite(metrics.get(name)) for name in _VALIDATION_METRICS}
            policies[key][str(seed)] = record.policy_id
            sharpe = _finite(metrics.get("sharpe"))
            sharpes.append(tuning.undefined_sharpe if sharpe is None else sharpe)
        scores[key] = float(np.mean(sharpes))
        running = float(np.mean(list(scores.values())))
        trial.set_user_attr(ATTR_VALIDATION, details)
        trial.set_user_attr(ATTR_POLICIES, policies)
        trial.set_user_attr(ATTR_FOLD_SHARPE, scores)
        trial.set_user_attr(ATTR_VALIDATED_FOLDS, step + 1)
        trial.report(running, step)
        if step < len(folds) - 1 and trial.should_prune():
            raise optuna.TrialPruned(f"validation Sharpe {running:.3f} after {step + 1} folds is below the median")
    return running


# ----------------------------------------------------------------------------- running a study


def _sampler(seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.TPESampler(seed=seed)


def _pruner(tuning: TuningConfig) -> optuna.pruners.BasePruner:
    import optuna

    if not tuning.prune:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=0)


def sampler_seed(config: RunConfig, trials_before: int, worker_index: int, worker: str = "") -> int:
    """``training.seed`` for the first process on an empty study (a lone run is reproducible);
    any other process gets its own seed, so workers joining at once never propose the same
    values in TPE's random start-up trials."""
    if trials_before == 0 and worker_index == 0:
        return config.training.seed
    text = f"{config.training.seed}|{trials_before}|{worker_index}|{worker}"
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def _open_study(storage, name: str, config: RunConfig, tuning: TuningConfig, seed: int) -> optuna.Study:
    import optuna

    study = optuna.create_study(
        study_name=name, storage=storage, load_if_exists=True, direction="maximize",
        sampler=_sampler(seed), pruner=_pruner(tuning),
    )
    if "config_name" not in study.user_attrs:
        study.set_user_attr("config_name", config.name)
        study.set_user_attr("search_space", tuning.space.payload())
        study.set_user_attr("walk_forward", config.evaluation.walk_forward.key_payload())
    return study


def _trials_in(storage, name: str) -> int:
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return 0
    return len(storage.get_all_trials(study_id, deepcopy=False))


def _work(storage, engine: Engine, config: RunConfig, settings: PlatformSettings, plan: WalkForwardPlan,
          tuning: TuningConfig, name: str, *, n_trials: int | None, timeout: float | None, seed: int,
          worker_id: str) -> None:
    study = _open_study(storage, name, config, tuning, seed)
    loaded = plan_market(engine, config, plan)
    log.info("worker %s: study %s, %s trials, sampler seed %d", worker_id, name,
             "unlimited" if n_trials is None else n_trials, seed)
    study.optimize(
        lambda trial: objective(trial, engine, config, settings, plan, tuning=tuning, loaded=loaded, worker_id=worker_id),
        n_trials=n_trials, timeout=timeout, gc_after_trial=True,
    )


def _worker_id(index: int | None = None, tag: str | None = None) -> str:
    tag = tag or uuid.uuid4().hex[:8]
    suffix = f":{index}" if index is not None else ""
    return f"{socket.gethostname()}:{os.getpid()}:{tag}{suffix}"


def _split(n_trials: int, workers: int) -> list[int]:
    return [n_trials // workers + (1 if i < n_trials % workers else 0) for i in range(workers)]


def run_tuning(
    engine: Engine,
    config: RunConfig,
    settings: PlatformSettings,
    *,
    n_trials: int,
    workers: int = 1,
    timeout: float | None = None,
    storage_url: str | None = None,
    tuning: TuningConfig | None = None,
) -> TuningResult:
    """Create (or join) the config's study and run ``n_trials`` trials, split over ``workers``
    processes: this one and ``workers - 1`` started here (each its own Python process with its
    own database connections). ``timeout`` (seconds) stops every process's loop after the
    trial it is in. ``storage_url`` defaults to the database ``engine`` is on (schema
    ``tt_optuna``). Returns the study's best trial and counts, including trials of workers
    elsewhere (see ``worker_command``)."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    tuning = tuning or tuning_config(config)
    plan = plan_walk_forward(engine, config)
    validation_folds(plan)
    url = _storage_url(storage_url or storage_url_for(engine.url))
    name = study_name(config, tuning)
    log.info("tuning study %s in %s", name, safe_url(url))
    storage = _open_storage(url, create=True)
    try:
        _open_study(storage, name, config, tuning, config.training.seed)  # before workers race to
        before = _trials_in(storage, name)
        tag = uuid.uuid4().hex[:8]
        ids = [_worker_id(index, tag) for index in range(workers)]
        shares = _split(n_trials, workers)
        context = multiprocessing.get_context("spawn")  # torch and open connections do not fork
        processes = []
        engine_url = engine.url.render_as_string(hide_password=False)  # to the children by pipe, never argv
        for index in range(1, workers):
            if shares[index] == 0:
                continue
            process = context.Process(
                target=_spawned_worker, name=f"tt-tune-{index}",
                args=(engine_url, config, settings, plan, url, tuning, name, shares[index], timeout,
                      sampler_seed(config, before, index, ids[index]), ids[index]),
            )
            process.start()
            processes.append(process)
        try:
            _work(storage, engine, config, settings, plan, tuning, name, n_trials=shares[0], timeout=timeout,
                  seed=sampler_seed(config, before, 0, ids[0]), worker_id=ids[0])
        except BaseException:
            for process in processes:
                process.terminate()
            raise
        finally:
            for process in processes:
                process.join()
        failed = [p.name for p in processes if p.exitcode != 0]
        if failed:
            raise RuntimeError(f"tuning workers {', '.join(failed)} failed (see their output above); "
                               f"study {name} keeps every trial they finished")
        return _result(storage, name, url, plan, ids)
    finally:
        _close(storage)


def _spawned_worker(engine_url, config, settings, plan, storage_url, tuning, name, n_trials, timeout, seed, worker_id) -> None:
    engine = create_store_engine(engine_url)
    storage = _open_storage(storage_url, create=True)
    try:
        _work(storage, engine, config, settings, plan, tuning, name, n_trials=n_trials, timeout=timeout,
              seed=seed, worker_id=worker_id)
    finally:
        _close(storage)
        engine.dispose()


def tune_worker(
    engine: Engine,
    config: RunConfig,
    settings: PlatformSettings,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    storage_url: str | None = None,
    tuning: TuningConfig | None = None,
) -> int:
    """Join the config's study (creating it when this worker is the first) and run trials until
    ``n_trials`` or ``timeout`` (both None: until stopped). For a worker on another machine or
    started by a Dagster run launcher. Returns how many trials it ran."""
    tuning = tuning or tuning_config(config)
    plan = plan_walk_forward(engine, config)
    validation_folds(plan)
    url = _storage_url(storage_url or storage_url_for(engine.url))
    name = study_name(config, tuning)
    storage = _open_storage(url, create=True)
    try:
        worker_id = _worker_id()
        seed = sampler_seed(config, _trials_in(storage, name), 1, worker_id)
        _work(storage, engine, config, settings, plan, tuning, name, n_trials=n_trials, timeout=timeout,
              seed=seed, worker_id=worker_id)
        return _count(storage, name, lambda t: t.user_attrs.get(ATTR_WORKER) == worker_id)
    finally:
        _close(storage)


def worker_command(config_path: str | None, n_trials: int | None = None, *, storage: bool = False) -> str:
    """The command that adds a worker to the study of ``config_path`` (None: the built-in
    config), on any machine whose ``TT_DB_URL`` names the same database (and with the same code
    and data); ``storage``: the study is in a storage given with ``--storage``."""
    command = "tt tune" if config_path is None else f"tt tune --config {config_path}"
    if n_trials is not None:
        command += f" --trials {n_trials}"
    if storage:
        command += " --storage <the same storage URL>"
    return command


# ----------------------------------------------------------------------------- reading a study


def _count(storage, name: str, keep) -> int:
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return 0
    return sum(1 for trial in storage.get_all_trials(study_id, deepcopy=False) if keep(trial))


def _counts_as_trial(trial) -> bool:
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return trial.state in states and int(trial.user_attrs.get(ATTR_VALIDATED_FOLDS, 0)) > 0


def _result(storage, name: str, url: str, plan: WalkForwardPlan, worker_ids: Sequence[str]) -> TuningResult:
    import optuna

    study_id = storage.get_study_id_from_name(name)
    trials = storage.get_all_trials(study_id, deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    best = max(complete, key=lambda t: (t.value, -t.number)) if complete else None
    ids = set(worker_ids)
    return TuningResult(
        study_name=name,
        storage=safe_url(url),
        plan_key=plan.plan_key,
        best_params=dict(best.user_attrs.get(ATTR_PARAMS, best.params)) if best else {},
        best_value=float(best.value) if best else None,
        best_trial=best.number if best else None,
        completed_trials=len(complete),
        recorded_trials=sum(1 for t in trials if _counts_as_trial(t)),
        trials_run=sum(1 for t in trials if t.user_attrs.get(ATTR_WORKER) in ids),
    )


@dataclass(frozen=True)
class StudyState:
    """A study as it stands: COMPLETE trials, trials the deflated Sharpe counts, the best so far."""

    completed_trials: int = 0
    recorded_trials: int = 0
    best_value: float | None = None
    best_trial: int | None = None


def study_state(storage_url: str, study_name: str) -> StudyState:
    """One read of ``study_name``'s trials (an empty state when the storage has no such study)."""
    import optuna

    storage = _open_storage(storage_url, create=False)
    if storage is None:
        return StudyState()
    try:
        try:
            study_id = storage.get_study_id_from_name(study_name)
        except KeyError:
            return StudyState()
        trials = storage.get_all_trials(study_id, deepcopy=False)
    finally:
        _close(storage)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    best = max(complete, key=lambda t: (t.value, -t.number)) if complete else None
    return StudyState(
        completed_trials=len(complete),
        recorded_trials=sum(1 for t in trials if _counts_as_trial(t)),
        best_value=float(best.value) if best else None,
        best_trial=best.number if best else None,
    )


def recorded_trials(storage_url: str, study_name: str) -> int:
    """How many trials of ``study_name`` produced a validation result: COMPLETE ones, and PRUNED
    ones that scored at least one fold (their values were looked at, so they count as trials of
    the deflated Sharpe). Failed, running and invalid (pruned before training) trials do not.
    0 when the storage holds no such study (or no Optuna schema or tables): none is created."""
    storage = _open_storage(storage_url, create=False)
    if storage is None:
        return 0
    try:
        return _count(storage, study_name, _counts_as_trial)
    finally:
        _close(storage)


def tuning_trials_for(engine: Engine, config: RunConfig, *, storage_url: str | None = None,
                      tuning: TuningConfig | None = None) -> int:
    """``recorded_trials`` of the study that tuned ``config`` (its tuned keys set to anything),
    in the storage ``tt tune`` uses by default on the database of ``engine``: the number the
    walk-forward report adds to the deflated Sharpe's trials. 0 when it was never tuned."""
    return recorded_trials(storage_url or storage_url_for(engine.url), study_name(config, tuning))
