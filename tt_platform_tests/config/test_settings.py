from tt_platform.settings import PlatformSettings


def test_secrets_are_masked_in_safe_dump(monkeypatch, tmp_path):
    monkeypatch.setenv("TT_DB_URL", "postgresql+psycopg2://trader:hunter2@db.example:5432/tt")
    monkeypatch.setenv("IB_ACCOUNT", "DU1234567")
    monkeypatch.setenv("TT_HOME", str(tmp_path))
    settings = PlatformSettings()
    dumped = " ".join(settings.safe_dump().values())
    assert "hunter2" not in dumped and "DU1234567" not in dumped
    assert "hunter2" not in repr(settings) and "DU1234567" not in repr(settings)
    assert settings.db_url.endswith("@db.example:5432/tt")
    assert settings.home == tmp_path.resolve()


def test_defaults_put_everything_under_tt_home(monkeypatch, tmp_path):
    monkeypatch.delenv("TT_DB_URL", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("TT_HOME", str(tmp_path))
    settings = PlatformSettings(_env_file=None)
    assert settings.db_url is None
    assert settings.mlflow_uri == (tmp_path / "mlruns").resolve().as_uri()
    assert settings.reports_dir == tmp_path.resolve() / "reports"
