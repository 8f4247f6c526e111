from typer.testing import CliRunner

from tt_platform.cli import app
from tt_platform.settings import get_settings

runner = CliRunner()


def test_bad_config_exits_2_naming_file_and_key(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("portfolio:\n  capital: -5\n")
    result = runner.invoke(app, ["demo", "--config", str(config)])
    assert result.exit_code == 2
    assert f"{config}: portfolio.capital: Input should be greater than 0" in result.output


def test_bad_flag_value_is_reported_as_an_override_error():
    result = runner.invoke(app, ["ingest", "--interval", "2d", "--symbols", "SPY"])
    assert result.exit_code == 2
    assert "command-line overrides: data.interval" in result.output


def test_info_masks_secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("TT_DB_URL", "postgresql+psycopg2://trader:s3cret@db:5432/tt")
    monkeypatch.setenv("IB_ACCOUNT", "U7654321")
    monkeypatch.setenv("TT_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["info"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0
    assert "s3cret" not in result.output and "U7654321" not in result.output
    assert "db:5432/tt" in result.output


def test_missing_checkpoint_is_named(tmp_path):
    result = runner.invoke(app, ["train", "--resume-checkpoint", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "checkpoint not found" in result.output
