"""Fixtures of the end-to-end tier: real projects, generated and built once per session, shared by the tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import VENVS, lane_python, run, torch_package, tsgen

COMPILE_MARKERS = ("Building CXX object", "Linking CXX executable")


def make(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`make args...` run in the project folder, stderr folded into stdout, as a user reads it."""
    return subprocess.run(
        ["make", *args], cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900
    )


def parity(project: Path, runner: Path) -> subprocess.CompletedProcess[str]:
    """``runner``'s parity check of ``project``'s model.pt on its artifacts as they are now (it passes only for files
    of one export). Any runner of the same lane checks it: a project whose C++ has nothing of its own needs no build."""
    artifacts = project / "artifacts"
    return run(
        [runner, artifacts / "model.pt", "--input", artifacts / "input.pt", "--expect", artifacts / "expected.pt"]
    )


def mtimes(project: Path) -> dict[str, int]:
    files = ["artifacts/formats.txt", "artifacts/input.pt", "build/ts-infer"]
    return {name: (project / name).stat().st_mtime_ns for name in files}


# A user's machine without the CUDA toolkit and without libjpeg's and libpng's development files, to CMake (with the
# environment below).
BARE_MACHINE = (
    "-DCMAKE_DISABLE_FIND_PACKAGE_CUDA=ON -DCMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit=ON "
    "-DCMAKE_DISABLE_FIND_PACKAGE_JPEG=ON -DCMAKE_DISABLE_FIND_PACKAGE_PNG=ON"
)


def python_without(folder: Path, left_out: tuple[str, ...]) -> Path:
    """A venv that sees the default lane's packages but those whose names start with ``left_out`` (lower case)."""
    assert run([lane_python("default"), "-m", "venv", "--without-pip", folder / "venv"]).returncode == 0
    seen = folder / "packages"
    seen.mkdir()
    lane_site = next((VENVS / "default" / "lib").glob("python3.*/site-packages"))
    for entry in lane_site.iterdir():
        if not entry.name.lower().startswith(left_out):
            (seen / entry.name).symlink_to(entry)
    site = next((folder / "venv" / "lib").glob("python3.*/site-packages"))
    (site / "lane.pth").write_text(f"{seen}\n")
    return folder / "venv" / "bin" / "python"


def without_cuda_toolkit(env: dict[str, str]) -> dict[str, str]:
    """The environment of a user without the CUDA toolkit: no nvcc on PATH, no CUDA_* hints."""
    path = [d for d in env["PATH"].split(os.pathsep) if d and not (Path(d) / "nvcc").exists() and "cuda" not in d]
    hidden = {"CUDA_HOME", "CUDA_PATH", "CUDAToolkit_ROOT", "CUDACXX"}
    return {**{k: v for k, v in env.items() if k not in hidden}, "PATH": os.pathsep.join(path)}


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """`tsgen new demo --formats both` (the hook's first build included), then its first `make verify`; timed. Both
    formats: the tests of either format share this project's one export (an AOTInductor compile takes 15-45 s)."""
    out = tmp_path_factory.mktemp("default-lane")
    started = time.monotonic()
    generation = tsgen("new", "demo", "--formats", "both", "-o", out)
    generated = time.monotonic()
    first = make(out / "demo", "verify")
    verified = time.monotonic()
    return SimpleNamespace(
        path=out / "demo",
        generation=generation,
        first=first,
        seconds={"tsgen new (first build)": generated - started, "first make verify": verified - generated},
    )


@pytest.fixture
def project_copy(default_project: SimpleNamespace, tmp_path: Path) -> Path:
    """A copy of the default project's sources and artifacts (not its build folder), to break on purpose."""
    copy = tmp_path / "copy"
    shutil.copytree(default_project.path, copy, ignore=shutil.ignore_patterns("build*"), symlinks=True)
    return copy


@pytest.fixture(scope="session")
def bare_machine_build(default_project: SimpleNamespace) -> SimpleNamespace:
    """`make verify` of the default project in build-bare/ as on a machine without the CUDA toolkit, libjpeg and libpng."""
    env = without_cuda_toolkit(dict(os.environ))
    verify = make(default_project.path, "verify", "BUILD_DIR=build-bare", f"CMAKE_ARGS={BARE_MACHINE}", env=env)
    return SimpleNamespace(verify=verify, env=env, runner=default_project.path / "build-bare" / "ts-infer")


TINY_NET = '''\
import torch


class TinyNet(torch.nn.Module):
    """A small classifier with data-dependent control flow, which torch.jit.script keeps."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.head = torch.nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        if bool(y.mean() > 0.1):
            y = y * 2
        return self.head(y.mean(dim=(2, 3)))


def make_net() -> torch.nn.Module:
    return TinyNet()
'''


DICT_OUTPUT = """\
import torch


class DictNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.head = torch.nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = torch.relu(self.conv(x))
        return {"logits": self.head(features.mean(dim=(2, 3))), "mask": features > 0.5}


def make():
    return DictNet()
"""


PAIR = """\
import torch


class PairNet(torch.nn.Module):
    \"\"\"Features and a per-row weight in, a dict of scores and their norms out.\"\"\"

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 10)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> dict[str, torch.Tensor]:
        scores = self.fc(x) * w
        return {"scores": scores, "norm": scores.norm(dim=1)}


def make():
    return PairNet(), (torch.rand(1, 4), torch.rand(1, 1))
"""


def generated(cwd: Path, out: str, name: str, *args: object) -> SimpleNamespace:
    """`tsgen new name args... --no-build -o out` run in ``cwd``, then the project's first `make verify`."""
    generation = tsgen("new", name, *args, "--no-build", "-o", out, cwd=cwd)
    project = cwd / out / name.replace("-", "_")
    verify = make(project, "verify") if generation.returncode == 0 else None
    return SimpleNamespace(path=project, generation=generation, verify=verify)


def sourced(tmp_path_factory: pytest.TempPathFactory, label: str, file: str, text: str) -> Path:
    folder = tmp_path_factory.mktemp(label)
    (folder / file).write_text(text)
    return folder


# Default-lane projects that several test files use (test_model_sources.py checks their export and parity,
# test_triton.py serves them): each is generated, exported and built once per session.
@pytest.fixture(scope="session")
def dynamic_project(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """resnet18 with --dynamic-batch, TorchScript, verified."""
    return generated(
        tmp_path_factory.mktemp("dynamic"), "out", "dynamic", "--model", "torchvision:resnet18", "--dynamic-batch"
    )


@pytest.fixture(scope="session")
def dict_output_project(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """DICT_OUTPUT (a dict of class scores and a bool mask), TorchScript, fixed batch, in bf16 by default (its
    verify also checks bf16 parity: test_precision.py), verified."""
    folder = sourced(tmp_path_factory, "dict-out", "dict_output.py", DICT_OUTPUT)
    return generated(folder, "out", "dict-out", "--model", "dict_output.py:make", "--precision", "bf16")


@pytest.fixture(scope="session")
def pair_project(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """PAIR (two inputs, a dict output) as an AOTInductor package with a dynamic batch, verified."""
    folder = sourced(tmp_path_factory, "pair", "pair.py", PAIR)
    return generated(folder, "out", "pair", "--model", "pair.py:make", "--formats", "aoti", "--dynamic-batch")


@pytest.fixture(scope="session")
def cpu_lane_project(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The cpu lane: a user model file with a labels file, and the 2.13.0 CPU wheel's libtorch given as a folder
    (hook's first build), then its first `make verify`."""
    workdir = tmp_path_factory.mktemp("cpu-lane")
    python = lane_python("cpu")
    (workdir / "net.py").write_text(TINY_NET)
    (workdir / "classes.txt").write_text("".join(f"class_{i}\n" for i in range(10)))
    generation = tsgen(
        "new",
        "tiny-net",
        "--model",
        "net.py:make_net",
        "--input-shape",
        "2,3,32,32",
        "--labels",
        "classes.txt",
        "--python",
        python,
        "--libtorch",
        torch_package(python),
        "-o",
        "projects",
        cwd=workdir,
    )
    project = workdir / "projects" / "tiny_net"
    first = make(project, "verify") if generation.returncode == 0 else None
    return SimpleNamespace(path=project, generation=generation, first=first, libtorch=torch_package(python))
