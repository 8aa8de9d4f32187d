"""Shared fixtures: the project's configuration, its artifacts, the built C++ runner and the device it is checked on. A
test that takes ``model_format`` runs once per format deploy.json exports (test ids name it: [torchscript], [aoti])."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from torch_deploy.device import project_device  # noqa: E402
from torch_deploy.export import export_formats, load_config, top_k_of  # noqa: E402
from torch_deploy.formats import FORMATS_FILE, Entry, Format, exported  # noqa: E402


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "model_format" in metafunc.fixturenames:
        formats = export_formats(load_config(PROJECT_DIR))
        metafunc.parametrize("model_format", formats, ids=[f.name for f in formats])


@pytest.fixture(scope="session")
def config() -> dict:
    return load_config(PROJECT_DIR)


@pytest.fixture(scope="session")
def top_k(config: dict) -> int:
    """The top_k export.py records: deploy.json's, but 0 for a detector (its scores rank detections, not classes)."""
    import export  # the project's: its build_model() says which model this is

    return top_k_of(export.build_model(config, config["seed"]), config)


@pytest.fixture(scope="session")
def formats(config: dict) -> list[Format]:
    """The formats deploy.json exports, in its order."""
    return export_formats(config)


@pytest.fixture(scope="session")
def artifacts(formats: list[Format]) -> Path:
    folder = PROJECT_DIR / "artifacts"
    wanted = ["input.pt", FORMATS_FILE, *(name for f in formats for name in (f.model_file, f.expected()))]
    missing = [name for name in wanted if not (folder / name).is_file()]
    if missing:
        pytest.fail(f"artifacts/{missing[0]} is missing: run `make export` first")
    return folder


@pytest.fixture(scope="session")
def device() -> str:
    """The device the runner is checked on: make's DEVICE (TORCH_DEPLOY_DEVICE), else deploy.json's "device"."""
    return os.environ.get("TORCH_DEPLOY_DEVICE") or str(project_device(PROJECT_DIR / "deploy.json"))


@pytest.fixture(scope="session")
def entries(artifacts: Path) -> dict[str, Entry]:
    """What export.py wrote, by format name (formats.txt: each model file and the device it runs on)."""
    return {entry.format.name: entry for entry in exported(artifacts)}


@pytest.fixture(scope="session")
def model_file(artifacts: Path, formats: list[Format], entries: dict[str, Entry]) -> Path:
    """The first format's model file that runs on the CPU (the first one, but for a package compiled for GPUs)."""
    runs = [f for f in formats if entries[f.name].runs_on("cpu")]
    if not runs:
        pytest.skip(
            f"{formats[0].model_file} is compiled for {entries[formats[0].name].device}: no model file here runs on the CPU"
        )
    return artifacts / runs[0].model_file


@pytest.fixture(scope="session")
def runner() -> Path:
    path = Path(os.environ.get("TS_INFER", PROJECT_DIR / "build" / "ts-infer"))
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make build` first")
    return path.resolve()
