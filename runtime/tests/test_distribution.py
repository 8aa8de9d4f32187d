"""The runtime as its own versioned distribution (tsgen-runtime): one version, what the installed copy holds, how
CMake and the generated projects find and pin it."""

from __future__ import annotations

import filecmp
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch_deploy

from tests.conftest import PROJECT_TEMPLATE, REPO, RUNTIME, RUNTIME_VERSION, lane_python


def test_the_installed_runtime_is_this_checkout_s() -> None:
    """Each lane's Python has the runtime installed as a wheel (not this folder on a path), with the same files."""
    for lane in ("default", "cpu"):
        result = subprocess.run(
            [str(lane_python(lane)), "-m", "torch_deploy", "--cmakedir"], capture_output=True, text=True
        )
        installed = Path(result.stdout.strip()).parent
        assert result.returncode == 0 and "site-packages" in installed.parts, result.stdout + result.stderr
        comparison = filecmp.dircmp(RUNTIME, installed, ignore=["__pycache__"])
        stale = comparison.diff_files + comparison.left_only + comparison.right_only
        for sub in comparison.subdirs.values():
            stale += sub.diff_files + sub.left_only + sub.right_only
        assert not stale, f"the {lane} lane's runtime differs: {stale}; run scripts/setup.sh"


def test_one_version_and_every_pin_agrees() -> None:
    """__init__.py holds the version; `--version` says it; tsgen's dependency, the projects' requirements and the
    CMake series they ask for all name it."""
    result = subprocess.run([sys.executable, "-m", "torch_deploy", "--version"], capture_output=True, text=True)
    assert result.stdout.strip() == RUNTIME_VERSION == torch_deploy.__version__
    assert f'"tsgen-runtime=={RUNTIME_VERSION}"' in (REPO / "pyproject.toml").read_text()
    series = ".".join(RUNTIME_VERSION.split(".")[:2])
    assert f"find_package(TorchDeploy {series} CONFIG REQUIRED)" in (PROJECT_TEMPLATE / "CMakeLists.txt").read_text()


def test_no_path_of_the_runtime_is_a_template() -> None:
    """Nothing in the runtime is rendered: no template braces in a path, no Jinja in a file."""
    for path in RUNTIME.rglob("*"):
        assert "{{" not in str(path.relative_to(RUNTIME)), path
        if path.is_file() and path.suffix in (".py", ".cpp", ".h", ".cmake", ".in", ".txt", ".md"):
            assert "cookiecutter." not in path.read_text(encoding="utf-8"), path


def test_the_commands_are_listed_and_an_unknown_one_is_one_line() -> None:
    """`python -m torch_deploy` with no command lists them (exit 2); an unknown one is named (exit 2)."""
    listed = subprocess.run([sys.executable, "-m", "torch_deploy"], capture_output=True, text=True)
    assert listed.returncode == 2 and all(f"  {name} " in listed.stdout for name in ("export", "verify", "bench"))
    unknown = subprocess.run([sys.executable, "-m", "torch_deploy", "shipit"], capture_output=True, text=True)
    assert unknown.returncode == 2 and unknown.stderr.startswith("python -m torch_deploy: unknown command 'shipit'")


@pytest.mark.parametrize(
    ("asked", "compatible"),
    [("", True), ("0.2", True), (RUNTIME_VERSION, True), ("0.3", False), ("0.1.9", False), ("1.0", False), ("0.2.99", False)],
)  # fmt: skip
def test_the_cmake_version_rule(asked: str, compatible: bool, tmp_path: Path) -> None:
    """find_package(TorchDeploy <asked>): while the major version is 0, the same minor version and at least as new."""
    script = tmp_path / "check.cmake"
    numbers = (asked.split(".") + ["0", "0"])[:2]
    script.write_text(
        f'set(PACKAGE_FIND_VERSION "{asked}")\nset(PACKAGE_FIND_VERSION_MAJOR "{numbers[0]}")\n'
        f'set(PACKAGE_FIND_VERSION_MINOR "{numbers[1]}")\ninclude("{RUNTIME}/cmake/TorchDeployConfigVersion.cmake")\n'
        'message("${PACKAGE_VERSION} ${PACKAGE_VERSION_COMPATIBLE}")\n'
    )
    result = subprocess.run(["cmake", "-P", str(script)], capture_output=True, text=True)
    assert result.stderr.split() == [RUNTIME_VERSION, "TRUE" if compatible else "FALSE"]


def test_the_wheel_metadata_names_no_generator_dependency(tmp_path: Path) -> None:
    """A deployment installs the runtime without cookiecutter, click or rich: it depends on nothing."""
    code = "import importlib.metadata as m, json; print(json.dumps(m.requires('tsgen-runtime') or []))"
    result = subprocess.run([str(lane_python("cpu")), "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert [r for r in json.loads(result.stdout) if "extra ==" not in r] == []
    assert re.search(r"^dependencies = \[\]", (REPO / "runtime" / "pyproject.toml").read_text(), re.MULTILINE)


def test_libtorch_command_reports_this_python_s_torch() -> None:
    """`python -m torch_deploy libtorch` names the libtorch a build with this Python would use (its torch)."""
    python = lane_python("cpu")
    result = subprocess.run([str(python), "-m", "torch_deploy", "libtorch"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("libtorch 2.13.0 (CPU build, C++17) at ")
    assert f"(found via the torch package of {python})" in result.stdout


def test_a_command_that_needs_torch_says_so_in_one_line_where_there_is_none() -> None:
    """In a Python without torch (the runtime on its path, as a vendored copy is): one ERROR line with the fix, exit
    1; the commands that need no torch still run there."""
    python = lane_python("cookiecutter")
    env = {"PYTHONPATH": str(RUNTIME.parent), "PATH": "/usr/bin:/bin"}
    for command in ("export", "bench", "predict", "triton"):
        result = subprocess.run([str(python), "-m", "torch_deploy", command], capture_output=True, text=True, env=env)
        assert result.returncode == 1 and result.stderr.splitlines() == [
            f"ERROR: torch is not installed for {python}; {python} -m pip install -r requirements.txt, or run make "
            "with PYTHON=/path/to/the/python/that/has/torch"
        ], (command, result.stderr)
    version = subprocess.run([str(python), "-m", "torch_deploy", "--version"], capture_output=True, text=True, env=env)
    assert version.stdout.strip() == RUNTIME_VERSION
