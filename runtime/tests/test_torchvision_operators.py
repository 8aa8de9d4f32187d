"""torchvision's operators in C++, without Python: the runtime loads the exporting torchvision's own op library
(torchvision/_C_stable.so) when a model calls them, with stand-ins for the libraries it names but does not use, so
that a CPU build against the CUDA wheel maps none of libtorch_cuda's. The operators' results are checked against
torchvision's Python operators on the same inputs (make verify's parity driver), in the build folder and installed.
(Default lane: the cpu lane has no torchvision.)"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import lane_python

OPS = """\
import torch
import torchvision


class Ops(torch.nn.Module):
    \"\"\"What a detector's heads and postprocessing call: roi_align over boxes of the feature map, then nms.\"\"\"

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rois = torch.tensor([[0.0, 1.0, 1.0, 9.0, 9.0], [0.0, 4.0, 2.0, 14.0, 12.0], [0.0, 0.5, 6.0, 7.0, 15.0],
                             [0.0, 1.5, 1.0, 9.5, 9.0]])
        pooled = torchvision.ops.roi_align(features, rois, output_size=(3, 3), spatial_scale=1.0, sampling_ratio=2)
        keep = torchvision.ops.nms(rois[:, 1:], pooled.mean(dim=(1, 2, 3)), 0.5)
        return pooled, keep


def make():
    return Ops()
"""

MAIN = """\
#include <torch_deploy/torch_deploy.h>

int main(int argc, const char* argv[]) { return torch_deploy::run_command_line(argc, argv); }
"""

CONSUMER = """\
cmake_minimum_required(VERSION 3.21)
project(consumer LANGUAGES CXX)
find_package(TorchDeploy 0.2 CONFIG REQUIRED)
torch_deploy_add_runner(runner main.cpp)
torch_deploy_install(RUNNERS runner)
"""

SETTINGS = {
    "model": "models/ops.py:make", "weights": "none", "export_method": "script", "formats": ["torchscript"],
    "precision": "fp32", "inputs": [{"name": "features", "shape": [1, 4, 16, 16], "dtype": "float32"}],
    "dynamic_batch": False, "seed": 0, "top_k": 0, "preprocess": None, "labels": None, "atol": 1e-5, "rtol": 1e-5,
}  # fmt: skip


def run(command: list[object], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A folder exporting OPS, and a consumer of the runtime configured, built and installed against it."""
    python = lane_python("default")
    folder = tmp_path_factory.mktemp("torchvision-ops")
    (folder / "models").mkdir()
    (folder / "models" / "ops.py").write_text(OPS)
    (folder / "deploy.json").write_text(json.dumps(SETTINGS))
    exported = run([python, "-m", "torch_deploy", "export"], cwd=folder)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    (folder / "consumer").mkdir()
    (folder / "consumer" / "CMakeLists.txt").write_text(CONSUMER)
    (folder / "consumer" / "main.cpp").write_text(MAIN)
    cmake_dir = run([python, "-m", "torch_deploy", "--cmakedir"], cwd=folder).stdout.strip()
    configured = run(
        ["cmake", "-S", "consumer", "-B", "build", "-G", "Ninja", f"-DTorchDeploy_DIR={cmake_dir}",
         f"-DTORCH_DEPLOY_PYTHON={python}", f"-DTORCH_DEPLOY_CCACHE_PROGRAM={Path(python).parent / 'ccache'}",
         "-DTORCH_DEPLOY_IMAGES=OFF", "-DTORCH_DEPLOY_AOTI=OFF", f"-DCMAKE_INSTALL_PREFIX={folder / 'installed'}"],
        cwd=folder,
    )  # fmt: skip
    assert configured.returncode == 0, configured.stdout + configured.stderr
    built = run(["cmake", "--build", "build"], cwd=folder)
    assert built.returncode == 0, built.stdout
    installed = run(["cmake", "--install", "build"], cwd=folder)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return SimpleNamespace(python=python, folder=folder, configured=configured)


def verify(built: SimpleNamespace, runner: Path) -> subprocess.CompletedProcess[str]:
    return run([built.python, "-m", "torch_deploy", "verify", "--runner", runner], cwd=built.folder)


def test_the_build_says_whose_operators_it_loads(built: SimpleNamespace) -> None:
    version = run([built.python, "-c", "import torchvision; print(torchvision.__version__)"], cwd=built.folder)
    library = run([built.python, "-c", "import torchvision; print(torchvision.__file__)"], cwd=built.folder)
    stable = Path(library.stdout.strip()).parent / "_C_stable.so"
    line = f"-- TorchDeploy: torchvision {version.stdout.strip()}'s operators (detectors): {stable}"
    assert line in built.configured.stdout.splitlines(), built.configured.stdout


def test_cpp_computes_what_torchvisions_python_operators_do(built: SimpleNamespace) -> None:
    """roi_align's pooled features and nms's kept indices (int64: equal) as Python's torchvision computed them."""
    result = verify(built, built.folder / "build" / "runner")
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(line.startswith("parity: PASS: ") for line in result.stdout.splitlines()), result.stdout


def test_a_cpu_build_maps_no_cuda_library_of_torch(built: SimpleNamespace) -> None:
    """The loader's own account (LD_DEBUG=files) of a run: torchvision's library and the stand-ins load; neither
    libtorch_cuda nor libtorch_python of the wheel does (the one would bring the CUDA libraries, the other needs an
    interpreter)."""
    env = {**os.environ, "LD_DEBUG": "files"}
    result = run([built.folder / "build" / "runner", "artifacts/model.pt"], cwd=built.folder, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    opened = {word[len("file=") :] for word in result.stderr.split() if word.startswith("file=/")}
    names = {Path(path).name for path in opened}
    assert "_C_stable.so" in names and "libtorch_deploy_python_stand_in.so" in names, sorted(names)
    assert not {"libtorch_cuda.so", "libc10_cuda.so", "libtorch_python.so"} & names, sorted(opened)


def test_the_installed_runner_loads_the_installed_copy(built: SimpleNamespace) -> None:
    """cmake --install puts torchvision's library in <libdir>/torchvision/ and what it needs from the wheel
    (libcudart) beside the runtime library; the installed runner loads those, not the wheel's."""
    installed = built.folder / "installed"
    assert (installed / "lib" / "torchvision" / "_C_stable.so").is_file()
    result = verify(built, installed / "bin" / "runner")
    assert result.returncode == 0, result.stdout + result.stderr
    env = {**os.environ, "LD_DEBUG": "files"}
    ran = run([installed / "bin" / "runner", "artifacts/model.pt"], cwd=built.folder, env=env)
    vision = [word for word in ran.stderr.split() if word.startswith("file=") and word.endswith("_C_stable.so")]
    copy = (installed / "lib" / "torchvision" / "_C_stable.so").resolve()
    assert vision and all(Path(word[len("file=") :]).resolve() == copy for word in vision), vision


def test_a_torchvision_detector_is_wrapped_in_eval_mode(tmp_path: Path) -> None:
    """export's one-image wrapper is in eval mode with its detector, so that whatever restores the wrapper's mode
    (torch.onnx.export does, for make bench's peers) leaves the detector in eval, where it takes no targets."""
    from torch_deploy.export import OneImageDetector, torchvision_model

    model, _ = torchvision_model("torchvision:ssdlite320_mobilenet_v3_large", "none", tmp_path)
    assert isinstance(model, OneImageDetector)
    assert not any(module.training for module in model.modules())


def test_discovery_reads_what_the_library_needs_from_the_wheel() -> None:
    """The library's DT_NEEDED entries, read from the file, are what readelf lists; of those, the CUDA wheel must
    supply libcudart (found in nvidia/cu13/lib), and libtorch's own and the C/C++ runtime's are left to the loader."""
    from torch_deploy.discover import needed_libraries, torchvision_operators

    found = torchvision_operators(lane_python("default"))
    library = Path(found["torchvision_ops"])
    readelf = run(["readelf", "-d", library], cwd=library.parent).stdout
    listed = [line.split("[")[1].rstrip("]") for line in readelf.splitlines() if "(NEEDED)" in line]
    assert needed_libraries(library) == listed and "libtorch_python.so" in listed
    assert [Path(path).name for path in found["torchvision_companions"].split(";")] == ["libcudart.so.13"]
