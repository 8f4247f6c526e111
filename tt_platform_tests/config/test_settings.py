import pytest

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


def test_mlflow_credentials_are_masked(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://tt:s3cret@db:5432/mlflow")
    monkeypatch.setenv("TT_HOME", str(tmp_path))
    dumped = PlatformSettings().safe_dump()
    assert dumped["MLFLOW_TRACKING_URI"] == "postgresql://tt:***@db:5432/mlflow"


def test_malformed_db_url_is_reported_not_raised(monkeypatch, tmp_path):
    monkeypatch.setenv("TT_DB_URL", "not a url at all")
    monkeypatch.setenv("TT_HOME", str(tmp_path))
    assert PlatformSettings().safe_dump()["TT_DB_URL"] == "<unparseable database URL>"


@pytest.mark.parametrize(("url", "shown"), [
    ("http://user:s3cret@mlflow:5000/x", "http://user:***@mlflow:5000/x"),
    ("http://user:p%40ss%2Fw@mlflow:5000", "http://user:***@mlflow:5000"),
    # not percent-encoded: '#', '/' and '?' end urlsplit's netloc before the password does
    ("postgresql://tt:pa#ss/wo?rd@db:5432/tt", "postgresql://tt:***@db:5432/tt"),
    ("http://user:a/b@c@mlflow:5000/path", "http://user:***@mlflow:5000/path"),
    ("http://mlflow:5000/experiments", "http://mlflow:5000/experiments"),
    ("file:///tmp/mlruns", "file:///tmp/mlruns"),
])
def test_mask_url_password_hides_encoded_and_raw_passwords(url, shown):
    from tt_platform.settings import mask_url_password

    assert mask_url_password(url) == shown
