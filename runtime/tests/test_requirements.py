"""make requirements (python -m torch_deploy requirements requirements.txt --config deploy.json): deploy.json is the
one source of the settings, so a model changed there after generation that needs a package requirements.txt does not
list is named in one line, before the packages themselves are checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def requirements(
    folder: Path, model: str, listed: list[str], formats: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    (folder / "deploy.json").write_text(json.dumps({"model": model, "seed": 0, "formats": formats or ["torchscript"]}))
    (folder / "requirements.txt").write_text("".join(f"{line}\n" for line in listed))
    command = [sys.executable, "-m", "torch_deploy", "requirements", "requirements.txt", "--config", "deploy.json"]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)


def test_a_torchvision_model_needs_torchvision_listed(tmp_path: Path) -> None:
    result = requirements(tmp_path, "torchvision:resnet50", ["torch>=2.1", "pillow  # images"])
    assert result.returncode == 1, result.stdout
    assert result.stdout.splitlines() == [
        "setup: FAIL: deploy.json's model torchvision:resnet50 needs torchvision, which requirements.txt does not "
        f"list; add torchvision to requirements.txt, then {sys.executable} -m pip install -r requirements.txt"
    ]


def test_the_int8_format_needs_torchao_listed(tmp_path: Path) -> None:
    result = requirements(tmp_path, "models/net.py:make", ["torch>=2.1"], ["torchscript", "aoti_int8"])
    assert result.returncode == 1, result.stdout
    assert result.stdout.splitlines() == [
        "setup: FAIL: deploy.json's format aoti_int8 needs torchao, which requirements.txt does not list; add torchao "
        f"to requirements.txt, then {sys.executable} -m pip install -r requirements.txt"
    ]


@pytest.mark.parametrize(
    ("model", "listed"),
    [("torchvision:resnet50", ["torch>=2.1", "torchvision"]), ("models/net.py:make", ["torch>=2.1"])],
)
def test_what_the_model_needs_is_listed(tmp_path: Path, model: str, listed: list[str]) -> None:
    pytest.importorskip("torchvision")  # then the packages themselves are there too
    result = requirements(tmp_path, model, listed)
    assert result.returncode == 0 and result.stdout == "", result.stdout
