"""Walk-forward on stored bars: each fold trains before its own test slice, is judged only on
it, against baselines on the same bars, and the whole is stitched, deflated and gated."""

from datetime import date

import pandas as pd
import pytest

from tt_platform.config.run_config import DataConfig, RunConfig
from tt_platform.data.sources.factory import source_for
from tt_platform.features.sets import basic_feature_set
from tt_platform.pipeline.features import build_features
from tt_platform.pipeline.market_data import ingest_window
from tt_platform.pipeline.training import policy_record_by_id
from tt_platform.pipeline.walk_forward import (
    BASELINES,
    GATE_BASELINES,
    evaluate_fold,
    plan_walk_forward,
    summarize,
    train_fold,
)
from tt_platform.settings import get_settings

SYMBOLS = ["AAA", "BBB", "SPY"]
START, END = date(2020, 1, 2), date(2021, 6, 30)


def _config() -> RunConfig:
    return RunConfig().with_overrides(**{
        "name": "wf-test",
        "universe.symbols": SYMBOLS,
        "data.source": "synthetic",
        "data.start": START.isoformat(),
        "data.end": END.isoformat(),
        "training.feature_set": "basic",
        "training.total_timesteps": 256,
        "training.n_steps": 64,
        "training.batch_size": 32,
        "training.n_envs": 1,
        "training.eval_episode": False,
        "env.window_size": 5,
        "evaluation.walk_forward.scheme": "expanding",
        "evaluation.walk_forward.train_bars": 150,
        "evaluation.walk_forward.min_train_bars": 100,
        "evaluation.walk_forward.test_bars": 60,
        "evaluation.walk_forward.purge_bars": 5,
        "evaluation.walk_forward.max_folds": 3,
        "evaluation.walk_forward.seeds": [0, 1],
    })


@pytest.fixture
def stored(store_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("TT_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    data = DataConfig(source="synthetic", start=START, end=END)
    ingest_window(store_engine, source_for(data), data, SYMBOLS, date(2019, 6, 3), END)
    build_features(store_engine, SYMBOLS, START, END, interval="1d", adjusted=False, feature_set=basic_feature_set())
    yield store_engine
    get_settings.cache_clear()


def _run(engine, config):
    settings = get_settings()
    plan = plan_walk_forward(engine, config)
    evaluations = []
    for fold in plan.folds:
        policies = train_fold(engine, config, settings, plan, fold.partition_key, tracker=None)
        records = {seed: policy_record_by_id(engine, pid) for seed, pid in policies.policy_ids.items()}
        evaluations.append(evaluate_fold(engine, config, plan, policies, records))
    return plan, evaluations, summarize(plan, evaluations, config)


def test_each_fold_is_trained_before_and_judged_only_on_its_own_test_slice(stored):
    config = _config()
    plan, evaluations, summary = _run(stored, config)
    assert len(plan.folds) == 3 and plan.seeds == (0, 1)
    for fold, evaluation in zip(plan.folds, evaluations, strict=True):
        for seed, policy_id in evaluation.policy_ids.items():
            record = policy_record_by_id(stored, policy_id)
            # trained through the fold's training window only, purge before the test slice
            assert pd.Timestamp(record.train_end) == fold.train.end
            curve = evaluation.policy_curves[seed]
            assert curve.index[0] == fold.test.start and curve.index[-1] == fold.test.end
        for name in BASELINES:
            assert evaluation.baseline_curves[name].index[0] == fold.test.start
            assert evaluation.baseline_curves[name].index[-1] == fold.test.end
    # the stitched curves span the first test start to the last test end
    for curve in summary.stitched.values():
        assert curve.index[0] == plan.folds[0].test.start and curve.index[-1] == plan.folds[-1].test.end
    # each seed is a trial of the deflated Sharpe ratio (the folds together are one evaluation)
    assert summary.n_trials == 2 and summary.deflated["dsr"] is not None
    assert set(summary.seed_spread["sharpe"]) >= {"mean", "std", "min", "max"}
    # the gate judged against every baseline, and says why when it fails
    names = [c.name for c in summary.verdict.checks]
    assert names == [f"beats {b}" for b in GATE_BASELINES] + ["deflated sharpe"]
    assert summary.verdict.passed or summary.verdict.reasons


def test_a_rerun_reuses_the_fold_policies_and_gives_a_byte_identical_summary(stored):
    config = _config()
    plan, _, first = _run(stored, config)
    settings = get_settings()
    again = train_fold(stored, config, settings, plan, plan.folds[0].partition_key, tracker=None)
    assert again.reused == (0, 1)
    _, _, second = _run(stored, config)
    assert first.to_json() == second.to_json()
    assert '"plan_key"' in first.to_json() and plan.data_snapshot_hash in first.to_json()


def test_a_fold_of_another_plan_is_refused(stored):
    config = _config()
    plan = plan_walk_forward(stored, config)
    other = plan_walk_forward(stored, config.with_overrides(**{"evaluation.walk_forward.test_bars": 50}))
    policies = train_fold(stored, config, get_settings(), plan, plan.folds[0].partition_key, tracker=None)
    records = {seed: policy_record_by_id(stored, pid) for seed, pid in policies.policy_ids.items()}
    with pytest.raises(ValueError, match="was trained for plan"):
        evaluate_fold(stored, config, other, policies, records)
