"""The runtime used directly, as another CMake project would, with nothing rendered: a folder holding a deploy.json
and a model file is exported by `python -m torch_deploy export`, a consumer of three files builds the library and the
full runner from the runtime's CMake package (found with `python -m torch_deploy --cmakedir`), and the one parity
driver passes on what it built. (Minutes cold; ccache makes the library a hit of the projects' builds.)"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import lane_python

NET = """\
import torch


def make():
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
"""

CONSUMER = """\
cmake_minimum_required(VERSION 3.21)
project(consumer LANGUAGES CXX)
find_package(TorchDeploy 0.2 CONFIG REQUIRED)
torch_deploy_add_runner(runner main.cpp)
"""

MAIN = """\
#include <torch_deploy/torch_deploy.h>

int main(int argc, const char* argv[]) { return torch_deploy::run_command_line(argc, argv); }
"""

SETTINGS = {
    "model": "models/net.py:make", "weights": "none", "export_method": "script", "formats": ["torchscript"],
    "precision": "fp32", "inputs": [{"name": "x", "shape": [2, 4], "dtype": "float32"}], "dynamic_batch": True,
    "seed": 0, "top_k": 0, "preprocess": None, "labels": None, "atol": 1e-5, "rtol": 1e-5,
}  # fmt: skip


def run(command: list[object], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module", params=["default", "cpu"])
def consumer(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Per lane: the export of a folder with no export.py, and the consumer configured and built against it."""
    python = lane_python(request.param)
    folder = tmp_path_factory.mktemp(f"runtime-{request.param}")
    (folder / "models").mkdir()
    (folder / "models" / "net.py").write_text(NET)
    (folder / "deploy.json").write_text(json.dumps(SETTINGS))
    exported = run([python, "-m", "torch_deploy", "export"], cwd=folder)
    (folder / "consumer").mkdir()
    (folder / "consumer" / "CMakeLists.txt").write_text(CONSUMER)
    (folder / "consumer" / "main.cpp").write_text(MAIN)
    cmake_dir = run([python, "-m", "torch_deploy", "--cmakedir"], cwd=folder).stdout.strip()
    ccache = Path(lane_python("default")).parent / "ccache"
    configured = run(
        ["cmake", "-S", "consumer", "-B", "build", "-G", "Ninja", f"-DTorchDeploy_DIR={cmake_dir}",
         f"-DTORCH_DEPLOY_PYTHON={python}", f"-DTORCH_DEPLOY_CCACHE_PROGRAM={ccache}", "-DTORCH_DEPLOY_IMAGES=OFF"],
        cwd=folder,
    )  # fmt: skip
    built = run(["cmake", "--build", "build"], cwd=folder) if configured.returncode == 0 else None
    return SimpleNamespace(python=python, folder=folder, exported=exported, configured=configured, built=built)


def test_the_runtime_exports_a_folder_with_no_export_py(consumer: SimpleNamespace) -> None:
    """`python -m torch_deploy export` in a folder holding only deploy.json and the model: the artifacts, checked."""
    assert consumer.exported.returncode == 0, consumer.exported.stdout + consumer.exported.stderr
    assert (
        "export check: PASS" in consumer.exported.stdout and "export check at batch 3: PASS" in consumer.exported.stdout
    )
    assert (consumer.folder / "artifacts" / "formats.txt").read_text().splitlines()[1:] == [
        "torchscript model.pt expected.pt expected_batch.pt"
    ]


def test_a_consumer_builds_the_library_from_the_cmake_package(consumer: SimpleNamespace) -> None:
    """find_package(TorchDeploy 0.2) says which runtime it used and where, finds libtorch, and builds; Release, as no
    build type was given (and so from the same ccache entries as the projects' builds)."""
    assert consumer.configured.returncode == 0, consumer.configured.stdout + consumer.configured.stderr
    assert "TorchDeploy: no CMAKE_BUILD_TYPE given: building Release" in consumer.configured.stdout
    assert "CMAKE_BUILD_TYPE:STRING=Release\n" in (consumer.folder / "build" / "CMakeCache.txt").read_text()
    cmake_dir = run([consumer.python, "-m", "torch_deploy", "--cmakedir"], cwd=consumer.folder).stdout.strip()
    version = run([consumer.python, "-m", "torch_deploy", "--version"], cwd=consumer.folder).stdout.strip()
    assert f"TorchDeploy: runtime {version} from {Path(cmake_dir).parent}" in consumer.configured.stdout
    assert consumer.built is not None and consumer.built.returncode == 0, consumer.built.stdout


def test_the_parity_driver_passes_on_what_was_built(consumer: SimpleNamespace) -> None:
    """The consumer's runner (the full ts-infer of the runtime) reproduces Python, also at the second batch size."""
    result = run(
        [consumer.python, "-m", "torch_deploy", "verify", "--runner", "build/runner"],
        cwd=consumer.folder,
        env={**os.environ, "PATH": os.environ["PATH"]},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("parity: PASS: max abs diff") for line in lines), lines
    assert any(line.startswith("parity at the second batch size: PASS") for line in lines), lines


def test_the_runner_given_a_folder_runs_its_first_listed_model(consumer: SimpleNamespace) -> None:
    """A folder of exports (artifacts/, a bundle's share/<project>/, what the Dockerfile's CMD gives) stands for the
    first model file of its formats.txt; a folder without one is named in one line."""
    given_folder = run(["build/runner", "artifacts"], cwd=consumer.folder)
    assert given_folder.returncode == 0, given_folder.stdout + given_folder.stderr
    given_file = run(["build/runner", "artifacts/model.pt"], cwd=consumer.folder)
    folder_lines, file_lines = given_folder.stdout.splitlines(), given_file.stdout.splitlines()  # random inputs
    assert folder_lines[:2] == file_lines[:2] == ["Loading model...", "Model loaded successfully"], folder_lines
    assert len(folder_lines) == len(file_lines) and folder_lines[-1] == "DONE"
    empty = consumer.folder / "no-exports"
    empty.mkdir(exist_ok=True)
    refused = run(["build/runner", empty], cwd=consumer.folder)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stderr.splitlines() == [
        f"runner: error: {empty}: a folder without a list of exports ({empty / 'formats.txt'}); give a model file "
        "(model.pt or model.pt2), or the folder make export wrote"
    ]


CUSTOM_OP = """
import sys
import torch


@torch.library.custom_op("mylib::twice", mutates_args=())
def twice(x: torch.Tensor) -> torch.Tensor:
    return x * 2


class Net(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mylib.twice(x) + 1


torch.jit.script(Net()).save(sys.argv[1])
"""


def test_a_model_calling_an_operator_nobody_registered_is_named_with_torchs_cause(consumer: SimpleNamespace) -> None:
    """A TorchScript model calling a custom operator (defined in Python, so C++ has no kernel for it): the runner's
    one line names the operator and torch's own cause, and the fix is to register it, not to export again; a file
    that is no TorchScript archive still gets torch's cause and the re-export fix."""
    model, script = consumer.folder / "custom_op.pt", consumer.folder / "custom_op.py"
    script.write_text(CUSTOM_OP)  # a file: TorchScript compiles from the source
    made = run([consumer.python, script, model], cwd=consumer.folder)
    assert made.returncode == 0, made.stderr
    refused = run(["build/runner", model], cwd=consumer.folder)
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"runner: error: {model}: the model calls the operator mylib::twice, which nothing in this program registers "
        "(Unknown builtin op: mylib::twice); add the library that registers the mylib operators (its TORCH_LIBRARY), "
        "linked with -Wl,--no-as-needed, or loaded with dlopen before the model"
    ]
    garbage = consumer.folder / "garbage.pt"
    garbage.write_text("not a model")
    refused = run(["build/runner", garbage], cwd=consumer.folder)
    assert refused.returncode == 1
    version = run([consumer.python, "-c", "import torch; print(torch.__version__)"], cwd=consumer.folder).stdout
    assert refused.stderr.splitlines() == [
        f"runner: error: {garbage}: not a TorchScript model that this libtorch ({version.strip().split('+')[0]}) "
        "can load: PytorchStreamReader failed reading zip archive: not a ZIP archive; re-export it with make export "
        "(a matching torch version)"
    ]


IDENTITY = """
import sys
import torch


class Identity(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


torch.jit.script(Identity()).save(sys.argv[1])
"""

# Input, the expected output the runner's (identical) output is compared with, what the scale-aware rule says, and
# the top-k compared: float32 rounding grows with the magnitude of what is summed, so each output is judged at its own
# largest |value|; and classes whose expected scores are within that tolerance of each other may swap places.
SCALES = {
    # inception_v3 with random weights: logits near 4e11, off by 2.6e5 (6.5e-7 of the scale) and its small elements
    # off by 10, which an elementwise |a-b| <= atol + rtol*|b| fails.
    "huge": ("[[4e11 + 2.6e5, 11.0]]", "[[4e11, 1.0]]", "PASS", "relative diff 6.500e-07 of the largest |expected| 4", 0),
    "huge, off": ("[[4e11 + 1e8, 1.0]]", "[[4e11, 1.0]]", "FAIL", "relative diff 2.500e-04 of the largest |expected|", 0),
    # efficientnet_b0 with random weights: outputs near 1e-18, which atol alone passes whatever they are.
    "tiny": ("[[1e-18, 2.024e-18]]", "[[1e-18, 2e-18]]", "PASS", "note: the output's largest |value| is 2.000e-18, "
             'below atol, so this check cannot tell it from zero (verify with trained weights, or set a smaller "atol" '
             "in deploy.json)", 0),
    # token ids: equal, or not (rtol * 30000 must not excuse an id off by one)
    "ids": ("[[30001, 7]]", "[[30000, 7]]", "FAIL", "max abs diff 1.000e+00 exceeds", 0),
    # the first two classes 1e-5 apart, closer than the tolerance (2e-4 here): the reference cannot order them
    "tie": ("[[1.0, 1.00001, 0.5]]", "[[1.00001, 1.0, 0.5]]", "PASS", "top-2 as Python's up to ties (classes whose "
            "scores differ by less than the tolerance swapped)", 2),
    # 3e-4 apart, more than the tolerance: swapped, they are a different answer, though each value is within it
    "swap": ("[[1.00016, 1.00014, 0.0]]", "[[1.0, 1.0003, 0.0]]", "FAIL", "within (atol 1.000e-04, rtol 1.000e-04), "
             "top-2 differs from Python", 2),
}  # fmt: skip


@pytest.mark.parametrize("case", SCALES)
def test_parity_is_judged_at_each_outputs_scale(consumer: SimpleNamespace, case: str) -> None:
    """The runner's parity line and Python's export check apply the same rule (torch_deploy.artifacts.compare and
    torch_deploy::compare): a float output within atol + rtol * its largest |expected|, anything else equal, the same
    top-k classes but for ties within that tolerance; the line gives the relative diff, and says when an output is too
    small for the check to mean anything."""
    given, wanted, verdict, said, k = SCALES[case]
    folder = consumer.folder / "scales"
    folder.mkdir(exist_ok=True)
    model = folder / "identity.pt"
    if not model.exists():
        (folder / "identity.py").write_text(IDENTITY)
        assert run([consumer.python, folder / "identity.py", model], cwd=folder).returncode == 0
    made = run(
        [consumer.python, "-c",
         "import torch; from torch_deploy.artifacts import compare, save_tensors; "
         f"dtype = torch.int64 if {case == 'ids'} else torch.float64; "
         f"given, wanted = torch.tensor({given}, dtype=dtype), torch.tensor({wanted}, dtype=dtype); "
         "save_tensors('input.pt', {'x': given}); save_tensors('expected.pt', {'output': wanted}, atol=1e-4, "
         f"rtol=1e-4, top_k={k}); print(compare([given], [wanted], 1e-4, 1e-4, {k}) or 'PASS')"],
        cwd=folder,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    python_verdict = made.stdout.strip()
    compared = run(["build/runner", model, "--input", folder / "input.pt", "--expect", folder / "expected.pt"],
                   cwd=consumer.folder)  # fmt: skip
    parity = compared.stdout.splitlines()[-1]
    assert parity.startswith(f"parity: {verdict}: max abs diff ") and said in parity, parity
    assert compared.returncode == (0 if verdict == "PASS" else 1)
    assert (python_verdict == "PASS") == (verdict == "PASS"), python_verdict
