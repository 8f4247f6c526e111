"""Determinism and regression of a small walk-forward.

Same inputs, config and seeds give a byte-identical summary JSON even when every policy is trained
again from nothing; and the key numbers of this golden walk-forward stay inside their bands, so a
change that moves results is seen (update the bands on purpose, with the reason in the commit)."""

import json
import shutil

import pytest

from tt_platform.settings import get_settings
from tt_platform_tests.pipeline.test_walk_forward import _config, _run
from tt_platform_tests.pipeline.test_walk_forward import stored  # noqa: F401 - fixture

# metric -> (expected, absolute tolerance). Baselines involve no learning: tight bands. The
# policy's numbers come from PPO on CPU with fixed seeds: loose enough for BLAS differences
# between machines, tight enough that a changed reward, env or training default moves them out.
GOLDEN = {
    ("buy_and_hold", "total_return"): (0.14593084994747607, 1e-9),
    ("equal_weight", "total_return"): (0.304022550083201, 1e-9),
    ("risk_matched", "sharpe"): (1.5393176336613423, 1e-6),
    ("policy", "total_return"): (0.005561481986770644, 0.01),
    ("policy", "exposure"): (0.017284747563389692, 0.05),
}


def _numbers(summary) -> dict:
    policy = summary.metrics[f"policy (seed {summary.primary_seed})"]
    return {
        (name, metric): (policy if name == "policy" else summary.metrics[name]).get(metric)
        for name, metric in GOLDEN
    }


def test_a_walk_forward_trained_again_from_nothing_gives_a_byte_identical_summary(stored):  # noqa: F811
    config = _config()
    _, _, first = _run(stored, config)
    shutil.rmtree(get_settings().artifacts_dir / "policies")  # no model left to reuse: all retrained
    _, _, again = _run(stored, config)
    assert first.to_json() == again.to_json()
    payload = json.loads(first.to_json())
    for key in ("code_version", "config_hash", "feature_set_hash", "data_snapshot_hash", "plan_key"):
        assert payload[key]


def test_the_golden_walk_forward_stays_in_its_bands(stored):  # noqa: F811
    _, _, summary = _run(stored, _config())
    measured = _numbers(summary)
    for key, (expected, tolerance) in GOLDEN.items():
        assert measured[key] == pytest.approx(expected, abs=tolerance), key
