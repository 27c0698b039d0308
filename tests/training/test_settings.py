"""Settings come from one object; the README's table is that object's."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.settings import SettingsProblem, get_settings, settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_and_environment(monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "GIANTWATCH_EXPERIMENT", "GIANTWATCH_API_KEY",
                 "GIANTWATCH_MAX_BODY_BYTES", "GIANTWATCH_MODEL_ALIAS", "GIANTWATCH_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    settings = get_settings()
    assert settings.tracking_uri is None and settings.experiment == "giantwatch"
    assert settings.api_key is None and settings.max_body_bytes == 10 * 2**20
    assert settings.workers == 1 and settings.model_alias == "production"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/x.db")
    monkeypatch.setenv("GIANTWATCH_API_KEY", "s3cret")
    monkeypatch.setenv("GIANTWATCH_WORKERS", "3")
    settings = get_settings()
    assert settings.tracking_uri == "sqlite:////tmp/x.db" and settings.workers == 3
    assert settings.api_key.get_secret_value() == "s3cret" and "s3cret" not in repr(settings)


def test_a_bad_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("GIANTWATCH_MAX_BODY_BYTES", "ten megabytes")
    with pytest.raises(SettingsProblem, match="GIANTWATCH_MAX_BODY_BYTES='ten megabytes'"):
        get_settings()
    monkeypatch.delenv("GIANTWATCH_MAX_BODY_BYTES")
    monkeypatch.setenv("GIANTWATCH_WORKERS", "0")
    with pytest.raises(SettingsProblem, match="GIANTWATCH_WORKERS='0'"):
        get_settings()


def test_the_readme_documents_every_setting():
    assert settings_table() in README.read_text(encoding="utf-8")
