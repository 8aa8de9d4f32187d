"""The same project built to run on NVIDIA GPUs, on a machine with neither the CUDA toolkit nor a GPU: the build links
libtorch_cuda against the CUDA wheel without the toolkit and passes the CPU's parity; every GPU problem such a machine
can produce is one line with its exit code; the bundle carries the CUDA libraries its closure needs, never the
driver, and runs on the CPU in a bare root. What needs the GPU itself is scripts/gpu-check.sh's (docs/gpu.md)."""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import REPO, lane_python, run, torch_package
from tests.with_build.conftest import BARE_MACHINE, make, without_cuda_toolkit

pytestmark = pytest.mark.e2e

# This machine has no NVIDIA driver: what every GPU line names as missing.
NO_DRIVER = "no NVIDIA driver on this machine (libcuda.so.1: cannot open shared object file"
WHERE = "run it where an NVIDIA GPU and its driver are, or run the model on the CPU (--device cpu)"


@pytest.fixture(scope="session")
def gpu_build(default_project: SimpleNamespace) -> SimpleNamespace:
    """The default project's `make verify DEVICE=cpu` in build-gpu/, built with -DTORCH_DEPLOY_CUDA=ON as on a machine
    without the CUDA toolkit (nor libjpeg and libpng)."""
    env = without_cuda_toolkit(dict(os.environ))
    verify = make(
        default_project.path, "verify", "DEVICE=cpu", "BUILD_DIR=build-gpu",
        f"CMAKE_ARGS={BARE_MACHINE} -DTORCH_DEPLOY_CUDA=ON", env=env,
    )  # fmt: skip
    build = default_project.path / "build-gpu"
    return SimpleNamespace(verify=verify, env=env, build=build, runner=build / "ts-infer", project=default_project.path)


def needed(elf: Path) -> set[str]:
    return set(re.findall(r"\(NEEDED\).*\[(.+)\]", run(["readelf", "-d", elf]).stdout))


def test_the_gpu_build_links_libtorch_cuda_without_the_toolkit_and_passes_the_cpu_parity(
    gpu_build: SimpleNamespace,
) -> None:
    """TORCH_DEPLOY_CUDA=ON against the CUDA wheel, with the toolkit unfindable (CMake switches, nvcc off PATH):
    configure says what it found, the library NEEDs libtorch_cuda (kept by --no-as-needed: its static initialisers
    register the CUDA kernels, and nothing names it otherwise), the loader resolves it, libc10_cuda and the CUDA
    runtime from the wheel, and make verify DEVICE=cpu passes with that build."""
    assert shutil.which("nvcc", path=gpu_build.env["PATH"]) is None
    assert gpu_build.verify.returncode == 0, gpu_build.verify.stdout
    configured = " ".join(gpu_build.verify.stdout.split())
    assert "TorchDeploy: CUDA build (TORCH_DEPLOY_CUDA=ON): links libtorch_cuda (CUDA 13.0); the CUDA libraries" in (
        configured
    )
    assert "no CUDA toolkit needed" in configured
    library = next(gpu_build.build.glob("libtorch_deploy.so.*.*"))
    assert {"libtorch_cuda.so", "libtorch_cpu.so"} <= needed(library)
    resolved = dict(re.findall(r"^\s*(\S+) => (\S+)", run(["ldd", gpu_build.runner]).stdout, re.MULTILINE))
    wheel = torch_package(lane_python("default")).parent
    for name in ("libtorch_cuda.so", "libc10_cuda.so"):
        assert Path(resolved[name]).resolve() == (wheel / "torch/lib" / name).resolve()
    assert Path(resolved["libcudart.so.13"]).resolve().is_relative_to(wheel / "nvidia"), resolved["libcudart.so.13"]
    assert "verify: PASS: C++ reproduces Python (model.pt: max abs diff" in gpu_build.verify.stdout


def test_a_gpu_project_configures_for_cuda_by_itself_and_a_cpu_libtorch_says_it_runs_on_the_cpu(
    default_project: SimpleNamespace, cpu_lane_project: SimpleNamespace
) -> None:
    """TORCH_DEPLOY_CUDA=AUTO (the default): a GPU device (make's DEVICE, else deploy.json's) links CUDA when libtorch
    has it; against a CPU libtorch the configure warns in one line that the build runs on the CPU only."""
    auto = make(default_project.path, "build-auto/CMakeCache.txt", "DEVICE=cuda", "BUILD_DIR=build-auto")
    assert auto.returncode == 0, auto.stdout
    assert "TorchDeploy: CUDA build (device cuda from TORCH_DEPLOY_DEVICE (make's DEVICE)): links libtorch_cuda" in (
        " ".join(auto.stdout.split())
    )
    cpu = make(cpu_lane_project.path, "build-auto/CMakeCache.txt", "DEVICE=cuda", "BUILD_DIR=build-auto")
    message = " ".join(cpu.stdout.split())
    assert cpu.returncode == 0, cpu.stdout
    assert "is a CPU build: this build runs models on the CPU only; install a CUDA build of torch" in message


def test_each_gpu_problem_of_a_machine_without_one_is_one_line_before_any_work(
    default_project: SimpleNamespace, gpu_build: SimpleNamespace
) -> None:
    """--device cuda (or cuda:N) on a machine without the NVIDIA driver: one line naming what is missing, exit 1,
    before the model is loaded; a library built for the CPU only says so instead; a device that is not one is a usage
    error (exit 2); make verify DEVICE=cuda stops before exporting or building."""
    artifacts = default_project.path / "artifacts"
    for device in ("cuda", "cuda:3"):
        result = run([gpu_build.runner, artifacts / "model.pt", "--device", device])
        assert result.returncode == 1 and result.stdout == "", result.stdout + result.stderr
        assert result.stderr.startswith(f"ts-infer: error: device {device}: {NO_DRIVER}"), result.stderr
        assert result.stderr.endswith(f"; {WHERE}\n") and result.stderr.count("\n") == 1
    cpu_only = run([default_project.path / "build/ts-infer", artifacts / "model.pt", "--device", "cuda"])
    assert cpu_only.returncode == 1 and cpu_only.stdout == ""
    assert cpu_only.stderr == (
        "ts-infer: error: device cuda: this torch_deploy library was built for the CPU only (TORCH_DEPLOY_CUDA off, or a "
        "libtorch without CUDA); build it with CUDA against a CUDA build of torch (make build DEVICE=cuda, or cmake "
        "-DTORCH_DEPLOY_CUDA=ON), or run the model on the CPU (--device cpu)\n"
    )
    usage = run([gpu_build.runner, artifacts / "model.pt", "--device", "gpu"])
    assert usage.returncode == 2
    assert usage.stderr.startswith("ts-infer: --device gpu: use cpu, cuda or cuda:N (N: a GPU's index, from 0)\n")
    verify = make(default_project.path, "verify", "DEVICE=cuda", "BUILD_DIR=build-gpu")
    assert verify.returncode != 0
    assert f"device: FAIL: cuda: {NO_DRIVER}" in verify.stdout and "==>" not in verify.stdout, verify.stdout


def test_a_package_compiled_for_another_device_is_refused_in_one_line(
    default_project: SimpleNamespace, gpu_build: SimpleNamespace, tmp_path: Path
) -> None:
    """A .pt2 runs on the kind of device it was compiled for: the default project's, its metadata made to say cuda
    (what AOTInductor records when it compiles on a GPU), is refused on the CPU with the two ways out."""
    artifacts = default_project.path / "artifacts"
    gpu_package = tmp_path / "model.pt2"
    with zipfile.ZipFile(artifacts / "model.pt2") as source, zipfile.ZipFile(gpu_package, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith("_metadata.json"):
                data = json.dumps({**json.loads(data), "AOTI_DEVICE_KEY": "cuda"}).encode()
            target.writestr(item, data)
    result = run([gpu_build.runner, gpu_package, "--device", "cpu"])
    assert result.returncode == 1
    assert result.stderr == (
        f"ts-infer: error: {gpu_package}: compiled for the GPU (cuda), and asked to run on cpu; AOTInductor compiles "
        "for the device the model is exported on: run it with --device cuda, or export it for cpu (deploy.json's "
        '"device")\n'
    )


def test_the_gpu_bundle_carries_the_cuda_libraries_its_closure_needs_and_runs_on_the_cpu(
    gpu_build: SimpleNamespace, tmp_path: Path
) -> None:
    """The GPU build installed as make package bundles it (both install components): libtorch_cuda with every library
    it NEEDs, and those its libraries open by name while running (cuDNN's sub-libraries, NVRTC's builtins, libtorch's
    GPU linear algebra) from the wheels; never the driver (libcuda, NVML), nor what nothing loads (cuBLAS's nvblas,
    cuFFTW, cuSOLVERMg, the profilers' libraries, the alternative NVRTC); the report prints their sizes; and the bundle
    passes the bare-root check on the CPU."""
    assert gpu_build.verify.returncode == 0, gpu_build.verify.stdout
    bundle = tmp_path / "bundle"
    for component in ([], ["--component", "bundle"]):
        installed = run(["cmake", "--install", gpu_build.build, "--prefix", bundle, *component])
        assert installed.returncode == 0, installed.stdout + installed.stderr
    python = lane_python("default")
    report = run([python, "-m", "torch_deploy", "package", gpu_build.build, "--bundle", bundle], cwd=gpu_build.project)
    assert report.returncode == 0, report.stdout + report.stderr
    libraries = {Path(line.split()[-1]).name for line in report.stdout.splitlines() if " MB  lib/" in line}
    wheel = torch_package(python).parent
    cudnn = {path.name for path in (wheel / "nvidia/cudnn/lib").glob("libcudnn*.so.*")}
    closure = {"libtorch_cuda.so", "libc10_cuda.so", "libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13"}
    closure |= {"libnvrtc.so.13", "libnvrtc-builtins.so.13.0", "libtorch_cuda_linalg.so", "libcusolver.so.12"}
    assert closure | cudnn <= libraries, sorted((closure | cudnn) - libraries)
    never = {"libcuda.so.1", "libnvidia-ml.so.1", "libnvblas.so.13", "libcufftw.so.12", "libcusolverMg.so.12"}
    never |= {"libnvperf_host.so", "libnvperf_target.so", "libnvrtc.alt.so.13", "libcheckpoint.so"}
    assert not never & libraries, sorted(never & libraries)
    assert re.search(r"MB  in its \d+ CUDA libraries \(from the torch and nvidia wheels", report.stdout), report.stdout
    checked = run(
        [python, "-m", "torch_deploy", "package-check", gpu_build.build, "--bundle", bundle], cwd=gpu_build.project
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"package-check: PASS: {bundle} runs alone: parity (model.pt: max abs diff" in checked.stdout


def test_the_gpu_check_runs_its_part_without_a_gpu_here(tmp_path: Path) -> None:
    """scripts/gpu-check.sh where there is no GPU: tsgen installed from a folder of wheels into a venv over a Python
    with torch, resnet18 and a two-input model generated for the GPU, built for it and verified on the CPU, one Model
    from 8 threads; then one line saying the GPU part was skipped, and why."""
    wheels = tmp_path / "wheels"
    python = lane_python("default")
    built = run([python, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", wheels, REPO / "runtime", REPO])
    assert built.returncode == 0, built.stdout + built.stderr
    # The lane's ccache on PATH: the venv over the lane's Python sees the lane's packages, not its programs.
    env = {**os.environ, "PYTHON": str(python), "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"}
    result = run([REPO / "scripts/gpu-check.sh", "--wheels", wheels, "--workdir", tmp_path / "work"], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for check in (
        "PASS: resnet18: make verify DEVICE=cpu (formats torchscript, built for the GPU)",
        "PASS: pair: make verify DEVICE=cpu (formats torchscript, built for the GPU)",
        "PASS: resnet18: one Model from 8 threads at once, 5 runs each, on cpu",
    ):
        assert f"gpu-check: {check}" in lines, result.stdout
    assert f"gpu-check: GPU part skipped: {NO_DRIVER}" in result.stdout
    assert lines[-1].endswith(" s, 0 failed")
    assert "    threads: 8 x 5 runs on cpu: 40 passed, 0 failed" in lines
    usage = run([REPO / "scripts/gpu-check.sh"], env=env)
    assert usage.returncode == 2
    assert usage.stderr == "gpu-check: --wheels DIR is missing: make it with scripts/gpu-check.sh --make-wheels DIR\n"
