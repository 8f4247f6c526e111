from pathlib import Path

import pytest

from tt_platform.training.tracking import MlflowTracker, flatten_params, resolve_backend


def test_file_uri_maps_to_sqlite_inside_the_folder(tmp_path):
    backend = resolve_backend((tmp_path / "mlruns").as_uri())
    assert backend.store_uri == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert backend.artifact_location == (tmp_path / "mlruns" / "artifacts").as_uri()
    assert resolve_backend("postgresql://u:p@h/db").store_uri == "postgresql+psycopg2://u:p@h/db"
    assert resolve_backend("http://mlflow:5000").store_uri == "http://mlflow:5000"


def test_params_are_flattened_and_secrets_dropped():
    flat = flatten_params({"train": {"lr": 0.1, "net_arch": [64, 64]},
                           "db_password": "hunter2", "lineage": {"ib_account": "DU123", "w": "x"}})
    assert flat == {"train.lr": "0.1", "train.net_arch": "[64, 64]", "lineage.w": "x"}


def test_failed_block_marks_the_run_failed(tmp_path):
    tracker = MlflowTracker((tmp_path / "mlruns").as_uri(), "unit")
    with pytest.raises(RuntimeError, match="boom"):
        with tracker.start_run(run_name="doomed") as run:
            run.log_metrics({"x": 1.0, "undefined": None}, step=3)
            raise RuntimeError("boom")
    stored = tracker.client.get_run(run.run_id)
    assert stored.info.status == "FAILED"
    assert stored.data.metrics == {"x": 1.0}
    assert run.ui_url.endswith(f"/#/experiments/{run.experiment_id}/runs/{run.run_id}")
    assert Path(tmp_path / "mlruns" / "mlflow.db").is_file()
    assert "hunter2" not in repr(MlflowTracker("postgresql://u:hunter2@localhost/x", "e"))
