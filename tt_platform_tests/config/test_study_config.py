"""The README's walk-forward study config loads and names files that exist in the shared data."""

from tt_platform.config.run_config import load_run_config
from tt_platform.evaluation.folds import plan_folds
from tt_platform.runtime import REPO_ROOT

STUDY = REPO_ROOT / "tt_platform" / "configs" / "study.yaml"


def test_the_study_config_reads_the_shared_market_lab_files(shared_data):
    config = load_run_config(STUDY)
    folder = shared_data / "daily" / "market_lab_adjusted"
    if (REPO_ROOT.parent / "shared" / "data").resolve() == shared_data.resolve():
        assert config.data.csv_dir.resolve() == folder.resolve()
    assert all((folder / f"{symbol}.csv").is_file() for symbol in config.universe.symbols)
    assert config.evaluation.walk_forward.scheme == "expanding" and config.evaluation.walk_forward.seeds == [0]


def test_the_study_plans_fourteen_yearly_folds_over_its_sessions():
    from tt_platform.data.calendars import expected_sessions

    config = load_run_config(STUDY)
    sessions = expected_sessions("SPY", str(config.data.start), str(config.data.end))
    folds = plan_folds(sessions, config.evaluation.walk_forward)
    assert len(folds) == 14
    assert str(folds[0].test.start.date()) == "2008-01-11" and str(folds[-1].test.end.date()) == "2021-12-31"
