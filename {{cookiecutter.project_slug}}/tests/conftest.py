"""Shared fixtures: the project's configuration, its artifacts and the built C++ runner."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

import export  # noqa: E402  (the project's own export.py)


@pytest.fixture(scope="session")
def config() -> dict:
    return export.load_config()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = PROJECT_DIR / "artifacts"
    missing = [name for name in export.ARTIFACTS if not (folder / name).is_file()]
    if missing:
        pytest.fail(f"artifacts/{missing[0]} is missing: run `make export` first")
    return folder


@pytest.fixture(scope="session")
def runner() -> Path:
    path = Path(os.environ.get("TS_INFER", PROJECT_DIR / "build" / "ts-infer"))
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make build` first")
    return path.resolve()
