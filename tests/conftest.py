"""Shared fixtures. Flower internals touched by tests are confined to this file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path | None:
    """The offline data bundle: $FAIRFL_SHARED_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("FAIRFL_SHARED_DATA")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("offline data bundle not found: set FAIRFL_SHARED_DATA or place it at ../shared/data")
    return path


@pytest.fixture(autouse=True, scope="session")
def _flower_task_identity():
    """Building a Flower Message outside a running app needs a task identity (``tests.inprocess``)."""
    from tests.inprocess import set_task_identity

    set_task_identity()
    yield


@pytest.fixture
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """A fresh on-disk data cache ($FAIRFL_CACHE_DIR) and empty in-memory caches, so that data tests
    never read or write the project's cache."""
    from fairfl_flower import data as data_mod
    from fairfl_flower.data import acs as acs_mod

    path = tmp_path_factory.mktemp("fairfl-cache")
    monkeypatch.setenv("FAIRFL_CACHE_DIR", str(path))
    data_mod._CACHE.clear()
    acs_mod.clear_memory_caches()
    yield path
    data_mod._CACHE.clear()
    acs_mod.clear_memory_caches()
