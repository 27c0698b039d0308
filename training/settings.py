"""giantwatch's settings from the environment, in one place (pydantic-settings).

    from training.settings import get_settings
    get_settings().experiment      # "giantwatch" unless GIANTWATCH_EXPERIMENT says otherwise

Every variable is optional; command-line options take precedence over them. The README's
"Settings" table lists them (`settings_table`; tests/training/test_settings.py keeps the
two in step).
"""

from __future__ import annotations

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MAX_BODY = 10 * 1024 * 1024


class SettingsProblem(ValueError):
    """An environment variable has a value giantwatch cannot use."""


class Settings(BaseSettings):
    """Environment variables read by giantwatch (GIANTWATCH_* plus MLflow's own URI)."""

    model_config = SettingsConfigDict(env_prefix="GIANTWATCH_", extra="ignore",
                                      populate_by_name=True)

    tracking_uri: str | None = Field(
        None, validation_alias="MLFLOW_TRACKING_URI",
        description="MLflow tracking and registry store (default: sqlite:///mlruns/mlflow.db "
                    "in the working folder, artifacts under mlruns/artifacts)")
    experiment: str = Field(
        "giantwatch", min_length=1,
        description="MLflow experiment of `train` and `audit` runs (`train --experiment` wins)")
    api_key: SecretStr | None = Field(
        None, description="When set, the API needs the header X-API-Key with this value "
                          "(GET /health and the docs stay open)")
    max_body_bytes: int = Field(
        DEFAULT_MAX_BODY, gt=0,
        description="Largest request body the API accepts, in bytes (`serve --max-body-mb` wins)")
    model_alias: str = Field(
        "production", min_length=1,
        description="Registry alias of the models the API serves (`serve --model-alias` wins)")
    workers: int = Field(
        1, ge=1, description="API server processes (`serve --workers` wins)")


def get_settings() -> Settings:
    """The settings as the environment has them now (read afresh: cheap, and tests change
    the environment between calls). Raises SettingsProblem naming the variable and rule."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            info = Settings.model_fields.get(field)
            name = (info.validation_alias if info is not None and info.validation_alias
                    else f"GIANTWATCH_{field.upper()}")
            problems.append(f"{name}={error.get('input')!r}: {error['msg']}")
        raise SettingsProblem("invalid environment variable: " + "; ".join(problems)) from None


def settings_table() -> str:
    """The README's settings table (Markdown): variable, default, meaning."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for field, info in Settings.model_fields.items():
        name = info.validation_alias or f"GIANTWATCH_{field.upper()}"
        default = "—" if info.default is None else f"`{info.default}`"
        lines.append(f"| `{name}` | {default} | {info.description} |")
    return "\n".join(lines)
