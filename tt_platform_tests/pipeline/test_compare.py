"""``tt compare``: policies side by side from a real (SQLite) MLflow store."""

from __future__ import annotations

import math
import time

import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from tt_platform.pipeline.compare import (
    DEFAULT_METRICS,
    MISSING,
    TRAINING_COLUMNS,
    WALK_FORWARD_COLUMNS,
    compare_runs,
    format_table,
)

EXPERIMENT = "compare-unit"


def _run(client: MlflowClient, experiment_id: str, name: str, *, tags=None, params=None, metrics=None,
         status: str = "FINISHED") -> str:
    run = client.create_run(experiment_id, run_name=name, tags=dict(tags or {}))
    now = int(time.time() * 1000)
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
        params=[Param(k, str(v)) for k, v in (params or {}).items()],
        tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
    )
    client.set_terminated(run.info.run_id, status=status)
    return run.info.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two walk-forwards (plan aaa111 with 2 folds x 1 seed, plan bbb222 with one run), a plain
    training run without out-of-sample metrics, a failed run, and an empty experiment."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(EXPERIMENT)
    client.create_experiment("empty")
    ids = {}
    ids["wf_a"] = _run(client, exp, "walk-forward demo aaa111",
                       tags={"tt.kind": "walk_forward", "tt.walk_forward_plan": "aaa111"})
    ids["wf_b"] = _run(client, exp, "walk-forward demo bbb222",
                       tags={"tt.kind": "walk_forward", "tt.walk_forward_plan": "bbb222", "tt.gate": "passed"},
                       metrics={"oos_sharpe": 2.5})  # a parent's own metric wins over its children's
    fold_runs = [
        ("wf_a", "aaa111", "fold-1", 1, "ppo-aaaa-s1", {"sharpe": 1.1, "total_return": 0.2, "oos_sharpe": 0.4,
                                                         "oos_total_return": 0.05, "oos_buy_and_hold_sharpe": 0.6}),
        ("wf_a", "aaa111", "fold-2", 1, "ppo-bbbb-s1", {"sharpe": 1.5, "total_return": 0.3, "oos_sharpe": 1.2,
                                                         "oos_total_return": 0.1, "oos_buy_and_hold_sharpe": 0.8}),
        ("wf_b", "bbb222", "fold-1", 7, "ppo-cccc-s7", {"sharpe": 0.9, "oos_sharpe": -0.3}),
    ]
    for parent, plan, fold, seed, policy, values in fold_runs:
        ids[policy] = _run(
            client, exp, f"{fold} seed {seed}",
            tags={"mlflow.parentRunId": ids[parent], "tt.fold": fold, "tt.seed": seed, "tt.walk_forward_plan": plan,
                  "algo": "ppo"},
            params={"lineage.policy_id": policy, "lineage.seed": seed, "train.seed": seed},
            metrics=values,
        )
    ids["ppo-plain-s42"] = _run(client, exp, "ppo-seed42", tags={"algo": "ppo"},
                                params={"lineage.policy_id": "ppo-plain-s42", "train.seed": 42},
                                metrics={"sharpe": 3.0, "total_return": 0.9, "max_drawdown": 0.1})
    ids["failed"] = _run(client, exp, "doomed", params={"lineage.policy_id": "ppo-dead-s0"},
                         metrics={"oos_sharpe": 9.0}, status="FAILED")
    return uri, ids, folder


def test_training_runs_sorted_by_out_of_sample_sharpe(store):
    uri, ids, _ = store
    frame = compare_runs(uri, EXPERIMENT)
    assert list(frame.columns) == list(TRAINING_COLUMNS) + list(DEFAULT_METRICS)
    # best oos_sharpe first; the run without one last; the failed run and the parents left out
    assert list(frame["policy_id"]) == ["ppo-bbbb-s1", "ppo-aaaa-s1", "ppo-cccc-s7", "ppo-plain-s42"]
    assert list(frame.index) == [ids["ppo-bbbb-s1"], ids["ppo-aaaa-s1"], ids["ppo-cccc-s7"], ids["ppo-plain-s42"]]
    assert frame.index.name == "run_id"
    top = frame.iloc[0]
    assert (top["run_name"], top["fold"], top["seed"]) == ("fold-2 seed 1", "fold-2", 1)
    assert top["sharpe"] == pytest.approx(1.5) and top["oos_sharpe"] == pytest.approx(1.2)
    assert top["oos_buy_and_hold_sharpe"] == pytest.approx(0.8)
    plain = frame.loc[ids["ppo-plain-s42"]]
    assert pd.isna(plain["fold"]) and plain["seed"] == 42  # the seed from the trainer's params
    assert str(frame["seed"].dtype) == "Int64"
    assert math.isnan(plain["oos_sharpe"]) and plain["sharpe"] == pytest.approx(3.0)


def test_filters_limit_and_chosen_metrics(store):
    uri, _, _ = store
    frame = compare_runs(uri, EXPERIMENT, walk_forward="aaa", metrics=["oos_sharpe", "sharpe"])
    assert list(frame["policy_id"]) == ["ppo-bbbb-s1", "ppo-aaaa-s1"]
    assert list(frame.columns) == list(TRAINING_COLUMNS) + ["oos_sharpe", "sharpe"]
    assert len(compare_runs(uri, EXPERIMENT, limit=1)) == 1
    chosen = compare_runs(uri, EXPERIMENT, policies=["ppo-plain-s42", "ppo-cccc-s7"])
    assert list(chosen["policy_id"]) == ["ppo-cccc-s7", "ppo-plain-s42"]


def test_walk_forwards_one_row_per_parent(store):
    uri, ids, _ = store
    frame = compare_runs(uri, EXPERIMENT, kind="walk_forward")
    assert list(frame.columns) == list(WALK_FORWARD_COLUMNS) + list(DEFAULT_METRICS)
    assert list(frame.index) == [ids["wf_b"], ids["wf_a"]]  # 2.5 (its own) before mean(0.4, 1.2)
    a = frame.loc[ids["wf_a"]]
    assert (a["plan"], a["folds"], a["runs"]) == ("aaa111", 2, 2)
    assert a["oos_sharpe"] == pytest.approx(0.8) and a["sharpe"] == pytest.approx(1.3)
    assert frame.loc[ids["wf_b"], "oos_sharpe"] == pytest.approx(2.5)
    assert frame.loc[ids["wf_b"], "gate"] == "passed" and pd.isna(a["gate"])  # a is not judged yet
    only_a = compare_runs(uri, EXPERIMENT, kind="walk_forward", walk_forward="aaa111")
    assert list(only_a["plan"]) == ["aaa111"]


def test_clear_errors(store, tmp_path):
    uri, _, folder = store
    with pytest.raises(ValueError, match=r"no MLflow experiment 'nope' in the tracking store sqlite:///.*mlflow\.db "
                                         r"\(experiments there: .*compare-unit"):
        compare_runs(uri, "nope")
    with pytest.raises(ValueError, match="no finished training runs in MLflow experiment 'empty'"):
        compare_runs(uri, "empty")
    with pytest.raises(ValueError, match="no finished training runs .* for walk-forward 'zzz'"):
        compare_runs(uri, EXPERIMENT, walk_forward="zzz")
    with pytest.raises(ValueError, match="no finished run of policy 'ppo-typo-s1'"):
        compare_runs(uri, EXPERIMENT, policies=["ppo-bbbb-s1", "ppo-typo-s1"])
    with pytest.raises(ValueError, match="plan key"):
        compare_runs(uri, EXPERIMENT, walk_forward="x' or 1=1")
    with pytest.raises(ValueError, match="limit"):
        compare_runs(uri, EXPERIMENT, limit=0)
    # a store that does not exist is not created by looking at it
    missing = tmp_path / "none" / "mlflow.db"
    with pytest.raises(ValueError, match="no MLflow tracking store at sqlite:///"):
        compare_runs(f"sqlite:///{missing}", EXPERIMENT)
    with pytest.raises(ValueError, match="no MLflow tracking store at file:"):
        compare_runs((tmp_path / "mlruns").as_uri(), EXPERIMENT)
    assert not missing.parent.exists() and not (tmp_path / "mlruns").exists()


def test_errors_never_show_the_password(monkeypatch):
    from tt_platform.pipeline import compare

    class Unreachable:
        def get_experiment_by_name(self, name):
            raise RuntimeError("could not connect to postgresql://tt:hunter2@db:5432/mlflow")

    monkeypatch.setattr(compare, "_client", lambda uri: Unreachable())
    with pytest.raises(ValueError) as caught:
        compare_runs("postgresql://tt:hunter2@db:5432/mlflow", EXPERIMENT)
    message = str(caught.value)
    assert "hunter2" not in message
    assert message.startswith("cannot read the MLflow tracking store postgresql://tt:***@db:5432/mlflow")


def test_format_table_is_fixed_width():
    frame = pd.DataFrame(
        {
            "run_name": ["fold-2 seed 1", "a very long run name " * 4, None],
            "seed": pd.array([1, 42, None], dtype="Int64"),
            "oos_sharpe": [1.23456, -0.5, math.nan],
            "equity": [100000.0, 95000.5, 1234.0],
            "loss_pct": [0.1, 0.256, None],
            "tripped": [True, False, True],
        }
    )
    text = format_table(frame, percent=["loss_pct"])
    lines = text.splitlines()
    assert len(lines) == 5
    header, rule, first, second, third = lines
    assert header.split() == ["run_name", "seed", "oos_sharpe", "equity", "loss_pct", "tripped"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert first.split()[-5:] == ["1", "1.235", "100,000", "10.0%", "yes"]
    assert second.split()[-5:] == ["42", "-0.500", "95,000", "25.6%", "no"]
    assert third.split() == [MISSING, MISSING, MISSING, "1,234", MISSING, "yes"]
    assert "\u2026" in second and len(second.split("  ")[0]) == 40  # long text cut
    # numbers are right-aligned: each column ends at the same place
    end = header.index("oos_sharpe") + len("oos_sharpe")
    assert first[:end].endswith("1.235") and second[:end].endswith("-0.500")


def test_format_table_shows_returns_and_drawdowns_as_percentages_by_default():
    frame = pd.DataFrame({"oos_sharpe": [1.5], "oos_total_return": [0.0512], "max_drawdown": [0.1], "loss_pct": [0.25]})
    assert format_table(frame).splitlines()[2].split() == ["1.500", "5.12%", "10.0%", "25.0%"]
    assert format_table(frame, percent=[]).splitlines()[2].split() == ["1.500", "0.051", "0.100", "0.250"]
    # whole numbers in a float column are still ratios, counts are integers
    counts = pd.DataFrame({"gross": [1.0, 2.0], "bars": [1, 21]})
    assert format_table(counts).splitlines()[2].split() == ["1.000", "1"]
