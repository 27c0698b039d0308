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
def isolated_mlflow(home: Path) -> Iterator[str]:
    """Point MLflow at a SQLite store in `home` and work from there, for a module-scoped
    fixture (pytest's monkeypatch is function-scoped); restores both afterwards."""
    uri = f"sqlite:///{home / 'mlflow.db'}"
    old_cwd, old_uri = os.getcwd(), os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.chdir(home)
    try:
        yield uri
    finally:
        os.chdir(old_cwd)
        if old_uri is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old_uri
