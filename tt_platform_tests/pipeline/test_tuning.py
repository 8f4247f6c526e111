"""Tuning with Optuna: trials scored only on the walk-forward's validation windows, the study
in the platform's PostgreSQL so that every run (and worker process) with the same config adds
to one study, and every scored trial counted for the deflated Sharpe."""

import shutil
from datetime import date

import numpy as np
import optuna
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tt_platform.config.run_config import DataConfig, RunConfig
from tt_platform.config.tuning import SearchParam, SearchSpace, TuningConfig
from tt_platform.data.sources.factory import source_for
from tt_platform.env.market import MarketData
from tt_platform.features.sets import basic_feature_set
from tt_platform.pipeline.features import build_features
from tt_platform.pipeline.market_data import ingest_window
from tt_platform.pipeline.training import train
from tt_platform.pipeline.tuning import (
    ATTR_PARAMS,
    ATTR_VALIDATED_FOLDS,
    ATTR_VALIDATION,
    objective,
    plan_market,
    recorded_trials,
    run_tuning,
    storage_url_for,
    study_name,
    tuning_trials_for,
    validation_episode_metrics,
)
from tt_platform.pipeline.walk_forward import plan_walk_forward
from tt_platform.settings import get_settings
from tt_platform.store.engine import create_store_engine, safe_url

SYMBOLS = ["AAA", "BBB", "SPY"]
START, END = date(2020, 1, 2), date(2021, 6, 30)
# small and quick, and n_steps 32 with batch_size 64 breaks PPO's rule (repaired to 32)
TUNING = TuningConfig(search_space=[
    SearchParam(key="learning_rate", low=1e-4, high=1e-3, log=True),
    SearchParam(key="n_steps", choices=[32, 64]),
    SearchParam(key="batch_size", choices=[16, 64]),
])
PARAMS = {"learning_rate": 3e-4, "n_steps": 64, "batch_size": 16}


def _config(name: str = "tune-test", **extra) -> RunConfig:
    return RunConfig().with_overrides(**{
        "name": name,
        "universe.symbols": SYMBOLS,
        "data.source": "synthetic",
        "data.start": START.isoformat(),
        "data.end": END.isoformat(),
        "training.feature_set": "basic",
        "training.total_timesteps": 128,
        "training.n_steps": 64,
        "training.batch_size": 32,
        "training.n_envs": 1,
        "training.eval_episode": False,
        "env.window_size": 5,
        "evaluation.walk_forward.scheme": "expanding",
        "evaluation.walk_forward.train_bars": 150,
        "evaluation.walk_forward.min_train_bars": 100,
        "evaluation.walk_forward.validation_bars": 40,
        "evaluation.walk_forward.test_bars": 60,
        "evaluation.walk_forward.purge_bars": 5,
        "evaluation.walk_forward.max_folds": 2,
        "evaluation.walk_forward.seeds": [0],
        **extra,
    })


def _drop_schema(server_url: str, schema: str) -> None:
    engine = create_store_engine(server_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        engine.dispose()


@pytest.fixture
def stored(store_engine, store_url, tmp_path, monkeypatch):
    monkeypatch.setenv("TT_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    data = DataConfig(source="synthetic", start=START, end=END)
    ingest_window(store_engine, source_for(data), data, SYMBOLS, date(2019, 6, 3), END)
    build_features(store_engine, SYMBOLS, START, END, interval="1d", adjusted=False, feature_set=basic_feature_set())
    optuna_schema = _search_path(storage_url_for(store_url))
    _drop_schema(store_url, optuna_schema)  # the session's store schema outlives a test; its studies must not
    yield store_engine
    _drop_schema(store_url, optuna_schema)
    get_settings.cache_clear()


def _search_path(url: str) -> str:
    return make_url(url).query["options"].split("search_path=")[1]


# ----------------------------------------------------------------------------- no database


def test_the_search_space_takes_only_training_keys_and_keeps_ppos_batch_rule():
    assert SearchSpace().keys == ("learning_rate", "gamma", "ent_coef", "n_steps", "batch_size")
    for bad, reason in [
        ({"key": "window_size", "low": 2, "high": 9}, "not a key of the training section"),
        ({"key": "seed", "choices": [0, 1]}, "cannot be tuned"),
        ({"key": "gamma", "low": 0.9, "high": 1.5}, "less than or equal to 1"),
        ({"key": "learning_rate", "low": 0.0, "high": 1e-3, "log": True}, "log range needs low > 0"),
        ({"key": "n_steps", "low": 8, "high": 64.5}, "whole numbers"),
        ({"key": "gamma"}, "either low and high, or choices"),
        ({"key": "n_steps", "choices": [64, 96.5]}, "whole numbers"),
        ({"key": "policy", "choices": [1, 2]}, "only numeric keys"),
    ]:
        with pytest.raises(ValueError, match=reason):
            SearchParam(**bad)
    with pytest.raises(ValueError, match="more than once"):
        TuningConfig(search_space=[SearchParam(key="gamma", low=0.9, high=0.99)] * 2)
    training = _config().training
    # n_steps 32 x 1 env cannot feed minibatches of 64: lowered to the largest choice that fits
    fitted = TUNING.space.sample(optuna.trial.FixedTrial({"learning_rate": 1e-4, "n_steps": 32, "batch_size": 64}), training)
    assert fitted == {"learning_rate": 1e-4, "n_steps": 32, "batch_size": 16}
    kept = TUNING.space.sample(optuna.trial.FixedTrial({"learning_rate": 1e-4, "n_steps": 64, "batch_size": 64}), training)
    assert kept["batch_size"] == 64
    values = SearchSpace().sample(optuna.trial.FixedTrial({"learning_rate": 1e-4, "gamma": 0.95, "ent_coef": 1e-3,
                                                            "n_steps": 64, "batch_size": 256}), training)
    assert values["batch_size"] == 64  # the largest default choice that n_steps 64 x 1 env can feed


def test_the_study_name_ignores_tuned_keys_and_seed_but_not_the_folds():
    config = _config()
    name = study_name(config, TUNING)
    assert name.startswith("tune-tune-test-")
    assert study_name(config.with_overrides(**{"training.learning_rate": 1e-3, "training.n_steps": 32,
                                               "training.seed": 9, "training.torch_threads": 2}), TUNING) == name
    assert study_name(config.with_overrides(**{"evaluation.walk_forward.validation_bars": 30}), TUNING) != name
    assert study_name(config.with_overrides(**{"training.n_epochs": 3}), TUNING) != name
    assert study_name(config, TuningConfig()) != name


def test_the_storage_is_the_platform_database_in_its_own_schema():
    url = storage_url_for("postgresql://tt:s3cret@db.example:5432/platform")
    assert url.startswith("postgresql+psycopg2://tt:s3cret@db.example:5432/platform?")
    assert _search_path(url) == "tt_optuna"
    assert "s3cret" not in safe_url(url)
    pinned = storage_url_for("postgresql+psycopg2://tt@h/db?options=-c%20lock_timeout%3D100%20-csearch_path%3Dtrading")
    assert _search_path(pinned) == "trading_optuna" and "lock_timeout=100" in make_url(pinned).query["options"]


# ----------------------------------------------------------------------------- on stored bars


def test_runs_with_the_same_config_join_one_study_and_every_trial_is_recorded(stored):
    config, settings = _config(), get_settings()
    first = run_tuning(stored, config, settings, n_trials=2, tuning=TUNING)
    assert (first.trials_run, first.completed_trials, first.recorded_trials) == (2, 2, 2)
    # a second run, as two processes (the scale-out path: workers share the database)
    second = run_tuning(stored, config, settings, n_trials=2, workers=2, tuning=TUNING)
    assert second.study_name == first.study_name == study_name(config, TUNING)
    assert (second.trials_run, second.completed_trials, second.recorded_trials) == (2, 4, 4)
    url = storage_url_for(stored.url)
    assert recorded_trials(url, second.study_name) == 4
    assert second.storage == safe_url(url)
    # Optuna's tables (and its alembic_version, which Dagster also uses) stay out of the store's schema
    assert not {"studies", "trials", "alembic_version"} & set(sa.inspect(stored).get_table_names())
    # the best values make a valid config, and that config finds the study that chose them
    assert set(second.best_params) == {"learning_rate", "n_steps", "batch_size"}
    tuned = config.with_overrides(**second.overrides)
    assert tuning_trials_for(stored, tuned, tuning=TUNING) == 4
    study = optuna.load_study(study_name=second.study_name, storage=url)
    plan = plan_walk_forward(stored, config)
    proposals = set()
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert trial.user_attrs[ATTR_VALIDATED_FOLDS] == 2
        assert set(trial.user_attrs[ATTR_VALIDATION]) == {f.partition_key for f in plan.folds}
        applied = trial.user_attrs[ATTR_PARAMS]
        assert applied["n_steps"] >= applied["batch_size"]
        proposals.add(tuple(sorted(applied.items())))
    assert len(proposals) == 4  # no worker repeated another's proposal


def test_the_objective_never_reads_a_test_bar(stored):
    config, settings = _config(), get_settings()
    plan = plan_walk_forward(stored, config)
    last_validated = max(fold.validation.end for fold in plan.folds)
    assert all(fold.test.start > fold.validation.end for fold in plan.folds)
    trial = optuna.trial.FixedTrial(PARAMS)
    before = objective(trial, stored, config, settings, plan, tuning=TUNING)

    # every bar after the last validation window (purge and test bars only) triples
    _scale_prices(stored, after=last_validated, factor=3.0)
    shutil.rmtree(settings.artifacts_dir / "policies")  # no reuse: every fold trains again
    perturbed = plan_walk_forward(stored, config)
    assert perturbed.data_snapshot_hash != plan.data_snapshot_hash and perturbed.folds == plan.folds
    again = optuna.trial.FixedTrial(PARAMS)
    assert objective(again, stored, config, settings, perturbed, tuning=TUNING) == before
    assert again.user_attrs[ATTR_VALIDATION] == trial.user_attrs[ATTR_VALIDATION]

    # the control: the same change to the last validation window does move the score
    _scale_prices(stored, after=plan.folds[-1].validation.start - pd.Timedelta(days=1), factor=0.5)
    moved = objective(optuna.trial.FixedTrial(PARAMS), stored, config, settings,
                      plan_walk_forward(stored, config), tuning=TUNING)
    assert moved != before


def test_each_fold_is_scored_on_its_validation_window_only(stored):
    config, settings = _config(), get_settings()
    plan = plan_walk_forward(stored, config)
    loaded = plan_market(stored, config, plan)
    env_config = config.env.whole_period(stops=False)
    for fold in plan.folds:
        record = train(stored, config.with_overrides(**{"training.seed": 0}), settings, tracker=None,
                       loaded=loaded, rows=fold.train.positions, reuse=True)
        metrics = validation_episode_metrics(loaded, fold, env_config, record.model_path)
        assert pd.Timestamp(metrics["first_bar"]) == fold.validation.start
        assert pd.Timestamp(metrics["last_bar"]) == fold.validation.end
        # any later bar (the fold's purge and test slice) may be anything at all
        wild = _with_prices_after(loaded, fold.validation.last, factor=10.0)
        assert validation_episode_metrics(wild, fold, env_config, record.model_path) == metrics


def test_a_walk_forward_without_validation_windows_is_refused_before_any_trial(stored):
    config = _config("no-validation", **{"evaluation.walk_forward.validation_bars": 0})
    with pytest.raises(ValueError, match="evaluation.walk_forward.validation_bars"):
        run_tuning(stored, config, get_settings(), n_trials=1, tuning=TUNING)
    plan = plan_walk_forward(stored, config)
    with pytest.raises(ValueError, match="never its test folds"):
        objective(optuna.trial.FixedTrial(PARAMS), stored, config, get_settings(), plan, tuning=TUNING)
    # nothing was created, and reading a study that does not exist creates nothing either
    url = storage_url_for(stored.url)
    assert recorded_trials(url, study_name(config, TUNING)) == 0
    assert tuning_trials_for(stored, config) == 0
    with stored.connect() as conn:
        schema = _search_path(url)
        assert conn.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}).first() is None


# ----------------------------------------------------------------------------- helpers


def _scale_prices(engine, *, after: pd.Timestamp, factor: float) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE tt_prices SET open = open * :f, high = high * :f, low = low * :f, close = close * :f "
            "WHERE ts > :after"), {"f": factor, "after": after.to_pydatetime()})
    build_features(engine, SYMBOLS, START, END, interval="1d", adjusted=False, feature_set=basic_feature_set())


def _with_prices_after(loaded, last: int, factor: float):
    market = loaded.market
    close, open_ = market.close.copy(), market.open.copy()
    close[last + 1:] *= factor
    open_[last + 1:] *= factor
    features = market.features.copy()
    features[last + 1:] = np.float32(123.0)
    wild = MarketData(timestamps=market.timestamps, symbols=market.symbols, close=close, open=open_,
                      features=features, feature_mask=market.feature_mask, feature_names=market.feature_names,
                      tradable=market.tradable, feature_set_hash=market.feature_set_hash,
                      periods_per_year=market.periods_per_year)
    return type(loaded)(wild, loaded.matrix, loaded.watchlist_hash)
