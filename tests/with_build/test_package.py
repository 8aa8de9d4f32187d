"""The bundle, on both lanes: `make package` writes dist/<slug>-<version>-linux-<arch>.tar.gz holding the runner, the
library, the libraries they load (their dependency closure, RPATHs inside the bundle), the model and the CMake
package; `make package-check` runs the parity check in a bare root holding only the bundle and the C/C++ runtime, and
names the library a bundle misses; the example application builds against the unpacked bundle alone."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import torch_package
from tests.with_build.conftest import make
from tests.with_build.test_library import cmake_build, lane_project

pytestmark = pytest.mark.e2e

# What a CPU build against the CUDA wheel must never ship: CUDA's kernel libraries (libtorch_cpu itself needs only
# libcudart and libcupti).
CUDA_KERNELS = re.compile(r"lib(torch_cuda|c10_cuda|cudnn|cublas|cufft|curand|cusparse|cusolver|nccl|nvrtc)")


def dynamic_section(elf: Path) -> str:
    return subprocess.run(["readelf", "-d", str(elf)], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="session")
def made(
    default_project: SimpleNamespace, cpu_lane_project: SimpleNamespace
) -> dict[str, tuple[SimpleNamespace, dict[str, SimpleNamespace]]]:
    """`make package`, then `make package-check`, in both lanes' projects, the lanes side by side: CPack's gzip of
    libtorch_cpu takes one core for half a minute, and the machine has two."""
    projects = {"default": lane_project(default_project, "default"), "cpu": lane_project(cpu_lane_project, "cpu")}
    results: dict[str, dict[str, SimpleNamespace]] = {lane: {} for lane in projects}
    for goal in ("package", "package-check"):
        running = {
            lane: subprocess.Popen(["make", goal], cwd=project.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for lane, project in projects.items()
            if goal == "package" or results[lane]["package"].returncode == 0
        }
        for lane, process in running.items():
            stdout, _ = process.communicate(timeout=900)
            results[lane][goal] = SimpleNamespace(returncode=process.returncode, stdout=stdout.decode())
    return {lane: (projects[lane], results[lane]) for lane in projects}


@pytest.fixture(scope="session", params=["default", "cpu"])
def packaged(request: pytest.FixtureRequest, made: dict, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One lane's `make package` and `make package-check`, and its bundle unpacked."""
    project, results = made[request.param]
    package = results["package"]
    check = results.get("package-check", package)
    archives = sorted((project.path / "dist").glob("*.tar.gz"))
    unpacked = tmp_path_factory.mktemp(f"bundle-{request.param}")
    if archives:
        with tarfile.open(archives[0]) as tar:
            tar.extractall(unpacked, filter="tar")
    return SimpleNamespace(
        **vars(project), lane=request.param, package=package, check=check, archives=archives, unpacked=unpacked
    )


@pytest.fixture
def bundle(packaged: SimpleNamespace) -> Path:
    assert packaged.check.returncode == 0, packaged.check.stdout
    (folder,) = packaged.unpacked.iterdir()
    return folder


def test_make_package_check_passes_in_a_bare_root(packaged: SimpleNamespace) -> None:
    """The archive is named after the project, and its check runs every exported format's parity (and the
    tutorial's lines) in a root that holds the bundle and the C and C++ runtime only, with an empty environment."""
    report, output = packaged.package.stdout, packaged.check.stdout
    assert packaged.check.returncode == 0, output
    assert [archive.name for archive in packaged.archives] == [
        f"{packaged.slug}-0.1.0-linux-{os.uname().machine}.tar.gz"
    ]
    assert re.search(r"^package: .*\.tar\.gz \(\d+\.\d MB; \d+\.\d MB unpacked\)$", report, re.MULTILINE), report
    assert re.search(r"^ +\d+\.\d MB  lib/libtorch_cpu\.so$", report, re.MULTILINE), report
    assert "==> package:" not in output  # made once: package-check takes the bundle make package wrote
    summary = output[output.index("package-check: PASS") :]
    assert "model.pt: max abs diff" in summary
    if packaged.lane == "default":  # resnet18 in both formats: the .pt2 runs there too
        assert "model.pt2: max abs diff" in summary
    assert "environment empty" in summary and "libc.so.6" in summary and "libstdc++.so.6" in summary


def test_the_bundle_holds_the_closure_and_no_path_of_the_build_machine(packaged: SimpleNamespace, bundle: Path) -> None:
    """lib/ holds libtorch's CPU libraries and what they load, never the C/C++ runtime nor CUDA's kernel
    libraries; every RPATH in the bundle points inside it; the headers and the CMake package are there."""
    libraries = {path.name for path in (bundle / "lib").glob("*.so*")}
    assert {"libtorch_cpu.so", "libc10.so", "libgomp.so.1", "libtorch_deploy_libtorch_stand_in.so"} <= libraries
    assert not {name for name in libraries if re.match(r"lib(c|m|stdc\+\+|gcc_s|pthread|dl)\.so", name)}
    assert not {name for name in libraries if CUDA_KERNELS.match(name)}
    if packaged.lane == "default":  # the CUDA wheel's libtorch_cpu needs the CUDA runtime, not its kernels
        assert {"libcudart.so.13", "libcupti.so.13"} <= libraries
    for elf in [bundle / "bin/ts-infer", *(bundle / "lib").glob("*.so*")]:
        if elf.is_symlink():
            continue
        paths = re.findall(r"\((?:RPATH|RUNPATH)\)\s+Library r(?:un)?path: \[(.*)\]", dynamic_section(elf))
        assert all(path.startswith("$ORIGIN") for entry in paths for path in entry.split(":")), (elf, paths)
    assert (bundle / "include/torch_deploy/model.h").exists() and (bundle / "include/ATen/core/Tensor.h").exists()
    assert (bundle / "lib/cmake/TorchDeploy/TorchDeployConfig.cmake").exists()
    assert (bundle / f"share/{packaged.slug}/README.md").read_text().startswith(f"# {packaged.slug} 0.1.0")


def test_package_check_names_the_library_a_bundle_misses(
    packaged: SimpleNamespace, bundle: Path, tmp_path: Path
) -> None:
    """A bundle without libc10.so (as if it had leaked in from the build machine): the check fails in one line
    naming it, after the loader's own message."""
    broken = tmp_path / bundle.name
    shutil.copytree(bundle, broken, symlinks=True, copy_function=os.link)  # links: a copy without the copying
    (broken / "lib/libc10.so").unlink()
    result = subprocess.run(
        [str(packaged.python), "-m", "torch_deploy", "package-check", "build", "--bundle", str(broken)],
        cwd=packaged.path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("package-check: FAIL: the bundle lacks libc10.so, which ts-infer model.pt"), result.stdout


def test_the_example_builds_against_the_unpacked_bundle_alone(
    packaged: SimpleNamespace, bundle: Path, tmp_path: Path
) -> None:
    """The example application shipped in the bundle, configured with only CMAKE_PREFIX_PATH=<bundle>, builds
    without the libtorch the bundle came from (nothing of it in the build) and reproduces Python's output."""
    share = bundle / "share" / packaged.slug
    build = tmp_path / "embed-build"
    cmake_build(share / "examples/embed", build, f"-DCMAKE_PREFIX_PATH={bundle}")
    assert str(torch_package(packaged.python)) not in (build / "build.ninja").read_text()
    result = subprocess.run(
        [str(build / "embed"), share / "model.pt", share / "input.pt", share / "expected.pt"],
        capture_output=True,
        text=True,
        env={},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("parity: PASS: max abs diff")


def test_make_package_again_with_nothing_changed_does_not_repack(packaged: SimpleNamespace) -> None:
    """The bundle is made again only when what it holds changed: a second make package reports the same archive."""
    assert packaged.check.returncode == 0, packaged.check.stdout
    before = packaged.archives[0].stat().st_mtime_ns
    again = make(packaged.path, "package")
    assert again.returncode == 0, again.stdout
    assert "==> package:" not in again.stdout
    assert packaged.archives[0].stat().st_mtime_ns == before
