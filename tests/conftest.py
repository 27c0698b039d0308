"""Shared fixtures: small generated universes written once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SMALL_FIRMS = 6_000
SMALL_SEED = 5


@pytest.fixture(scope="session")
def small_universe(tmp_path_factory) -> Path:
    """A generated dataset folder (Parquet) of SMALL_FIRMS firms, shared by the whole session."""
    from training.synthetic import generate_universe, write_universe

    out = tmp_path_factory.mktemp("universe") / "small"
    write_universe(generate_universe(n_firms=SMALL_FIRMS, seed=SMALL_SEED), out, fmt="parquet")
    return out


@pytest.fixture()
def tracking_uri(tmp_path, monkeypatch) -> str:
    """An isolated MLflow SQLite store for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri


@pytest.fixture(scope="session")
def venv_bin() -> Path:
    """Folder of the project's console scripts (giantwatch, mlflow, uvicorn)."""
    import sys

    return Path(sys.executable).parent


def env_with_venv_path(venv: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{venv}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


@contextmanager
def tracking_env(uri: str, cwd: Path | None = None) -> Iterator[str]:
    """MLFLOW_TRACKING_URI (and optionally the working folder) set for the block, for
    module-scoped fixtures (pytest's monkeypatch is function-scoped); both restored after."""
    old_uri, old_cwd = os.environ.get("MLFLOW_TRACKING_URI"), os.getcwd()
    os.environ["MLFLOW_TRACKING_URI"] = uri
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield uri
    finally:
        os.chdir(old_cwd)
        if old_uri is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old_uri


def isolated_mlflow(home: Path):
    """A SQLite MLflow store in `home`, worked from there (see tracking_env)."""
    return tracking_env(f"sqlite:///{home / 'mlflow.db'}", cwd=home)
