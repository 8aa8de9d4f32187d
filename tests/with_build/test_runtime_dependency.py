"""A project depends on the runtime by version, or carries it: a Python without the runtime is named before any work,
and a `--vendor` project builds, exports and verifies with the runtime's distribution absent (only torch needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RUNTIME_VERSION, run, tsgen
from tests.with_build.conftest import TINY_NET, make, python_without

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def python_without_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default lane's Python less the runtime (tsgen-runtime, import torch_deploy): torch and pytest only."""
    python = python_without(tmp_path_factory.mktemp("no-runtime"), ("torch_deploy", "tsgen_runtime"))
    assert run([python, "-c", "import torch_deploy"]).returncode != 0
    assert run([python, "-c", "import torch, pytest"]).returncode == 0
    return python


def test_a_python_without_the_runtime_is_named_before_any_work(
    project_copy: Path, python_without_runtime: Path
) -> None:
    """`make verify` with a Python that lacks the pinned runtime: one line naming it and the install command."""
    result = make(project_copy, "verify", f"PYTHON={python_without_runtime}")
    assert result.returncode != 0
    lines = [line for line in result.stdout.splitlines() if not line.startswith("make")]
    assert lines == [
        f"setup: FAIL: {python_without_runtime} lacks the torch_deploy runtime (tsgen-runtime) which this project "
        f"needs; {python_without_runtime} -m pip install -r requirements.txt"
    ]


def test_a_wrong_runtime_version_is_named(project_copy: Path) -> None:
    """requirements.txt pins the runtime: another version installed is one line with the fix."""
    requirements = project_copy / "requirements.txt"
    requirements.write_text(requirements.read_text().replace(f"=={RUNTIME_VERSION}", "==0.0.1"))
    result = make(project_copy, "requirements")
    assert result.returncode != 0
    assert f"has tsgen-runtime {RUNTIME_VERSION} (this project pins 0.0.1); " in result.stdout


def test_a_vendored_project_verifies_without_the_runtime_installed(
    tmp_path: Path, python_without_runtime: Path
) -> None:
    """tsgen new --vendor: the runtime in third_party/torch_deploy/ (its version beside it) is what CMake builds and
    what make's commands run; with the distribution absent from the Python, make verify passes."""
    (tmp_path / "net.py").write_text(TINY_NET)
    generation = tsgen(
        "new", "carried", "--vendor", "--model", "net.py:make_net", "--input-shape", "1,3,16,16",
        "--python", python_without_runtime, "--no-build", "-o", "out", cwd=tmp_path,
    )  # fmt: skip
    assert generation.returncode == 0, generation.stdout + generation.stderr
    project = tmp_path / "out" / "carried"
    assert (project / "third_party/torch_deploy/__init__.py").read_text().count(f'"{RUNTIME_VERSION}"') == 1
    verify = make(project, "verify")
    assert verify.returncode == 0, verify.stdout
    assert f"TorchDeploy: runtime {RUNTIME_VERSION} from {project}/third_party/torch_deploy" in verify.stdout
    assert verify.stdout.splitlines()[-1].startswith("verify: PASS: C++ reproduces Python")
