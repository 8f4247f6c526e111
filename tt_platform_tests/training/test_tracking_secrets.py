from tt_platform.training.tracking import MlflowTracker


def test_run_links_never_carry_credentials():
    tracker = MlflowTracker("http://trader:hunter2@mlflow.internal:5000", "exp")
    assert "hunter2" not in tracker.ui_url and "hunter2" not in repr(tracker)
    assert tracker.ui_url == "http://trader:***@mlflow.internal:5000"
