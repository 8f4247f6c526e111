import numpy as np
import pandas as pd

from tt_platform.evaluation.metrics import performance_summary
from tt_platform.evaluation.report import EvaluationResult, write_report


def test_report_is_written_atomically_with_metrics_and_lineage(tmp_path):
    index = pd.date_range("2021-01-04", periods=30, freq="B", tz="UTC")
    policy = pd.Series(np.linspace(100, 120, 30), index=index)
    baseline = pd.Series(np.linspace(100, 110, 30), index=index)
    result = EvaluationResult(
        policy_id="ppo-abc<script>",
        equity={"policy": policy, "buy_and_hold": baseline},
        metrics={"policy": performance_summary(policy, 252) | {"turnover": 3.5}, "buy_and_hold": performance_summary(baseline, 252)},
        weights=pd.DataFrame({"AAA": 0.5, "BBB": 0.5}, index=index),
        lineage={"feature_set_hash": "f00d", "seed": "7"},
        period=("2021-01-04", "2021-02-12"),
    )
    path = write_report(result, tmp_path / "reports" / "ppo.html")
    html = path.read_text()
    assert "f00d" in html and "buy_and_hold" in html and "sharpe" in html
    assert "<script>" not in html.split("<body>")[1].split("</h1>")[0]  # policy id escaped
    assert "20.00%" in html  # policy total return, formatted as a percentage
    assert "3.500" in html and "—" in html and ">nan<" not in html  # policy-only rows show a dash for baselines
    assert (tmp_path / "reports" / "plotly.min.js").stat().st_size > 100_000
    assert not list((tmp_path / "reports").glob("*.tmp"))
