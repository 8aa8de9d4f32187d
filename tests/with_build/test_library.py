"""The runtime library from outside the project, on both lanes: `make install` gives a CMake package that the
runtime's example application (examples/embed/) builds against with find_package, the same example builds the
project in with add_subdirectory, both reproduce Python's output on the reference input, and one Model runs from
several threads at once as its header promises. Each build is real: CMake, the compiler, libtorch."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import RUNTIME, lane_python, run, torch_package
from tests.with_build.conftest import make

pytestmark = pytest.mark.e2e

TOOLS = lane_python("default").parent  # pip's cmake, ninja and ccache, as tsgen brings them
HERE = Path(__file__).resolve().parent


def cmake_build(source: Path, build: Path, *args: object) -> str:
    """Configure and build ``source`` with Ninja and ccache; returns the configure output, fails with the log."""
    configure = run(
        [TOOLS / "cmake", "-S", source, "-B", build, "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={TOOLS / 'ninja'}",
         "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_CXX_COMPILER_LAUNCHER={TOOLS / 'ccache'}", *args]
    )  # fmt: skip
    assert configure.returncode == 0, configure.stdout + configure.stderr
    built = run([TOOLS / "cmake", "--build", build])
    assert built.returncode == 0, built.stdout + built.stderr
    return configure.stdout


def lane_project(project: SimpleNamespace, lane: str) -> SimpleNamespace:
    """The session's generated project of a lane (default: resnet18; cpu: a user model on torch 2.13.0), verified."""
    assert project.first.returncode == 0, project.first.stdout
    return SimpleNamespace(path=project.path, slug=project.path.name, python=lane_python(lane))


@pytest.fixture(scope="session", params=["default", "cpu"])
def installed(
    request: pytest.FixtureRequest,
    default_project: SimpleNamespace,
    cpu_lane_project: SimpleNamespace,
    tmp_path_factory: pytest.TempPathFactory,
) -> SimpleNamespace:
    """`make install PREFIX=...` of each lane's project."""
    project = lane_project(default_project if request.param == "default" else cpu_lane_project, request.param)
    prefix = tmp_path_factory.mktemp(f"installed-{request.param}")
    result = make(project.path, "install", f"PREFIX={prefix}")
    assert result.returncode == 0, result.stdout
    return SimpleNamespace(**vars(project), lane=request.param, prefix=prefix, share=prefix / "share" / project.slug)


def test_install_lays_out_library_headers_runner_model_and_package(installed: SimpleNamespace) -> None:
    """The prefix holds the library, the headers, ts-infer, the model with its reference files and the CMake
    package; the installed ts-infer passes parity there with an empty environment."""
    prefix = installed.prefix
    for relative in (
        "bin/ts-infer",
        "lib/libtorch_deploy.so",
        "include/torch_deploy/torch_deploy.h",
        "include/torch_deploy/model.h",
        "lib/cmake/TorchDeploy/TorchDeployConfig.cmake",
        "lib/cmake/TorchDeploy/TorchDeployConfigVersion.cmake",
        "lib/cmake/TorchDeploy/TorchDeployTargets.cmake",
        "lib/libtorch_deploy_libtorch_stand_in.so",  # for .pt2 files (libtorch_stand_in.cpp)
        f"share/{installed.slug}/model.pt",
        f"share/{installed.slug}/input.pt",
        f"share/{installed.slug}/expected.pt",
        f"share/{installed.slug}/formats.txt",
    ):
        assert (prefix / relative).is_file(), relative
    share = installed.share
    models = [("model.pt", "expected.pt")] + (
        [("model.pt2", "expected_aoti.pt")] if installed.lane == "default" else []
    )
    for model, expected in models:
        result = run(
            [prefix / "bin/ts-infer", share / model, "--input", share / "input.pt", "--expect", share / expected],
            env={},
        )
        assert result.returncode == 0 and "parity: PASS" in result.stdout, result.stdout + result.stderr


def test_the_example_builds_against_the_installed_package(installed: SimpleNamespace, tmp_path: Path) -> None:
    """examples/embed/ as shipped, configured with only CMAKE_PREFIX_PATH (no libtorch, no C++ standard given),
    reproduces Python's output on the reference input."""
    example = tmp_path / "embed"
    shutil.copytree(RUNTIME / "examples" / "embed", example)
    cmake_build(example, example / "build", f"-DCMAKE_PREFIX_PATH={installed.prefix}")
    share = installed.share
    result = run([example / "build/embed", share / "model.pt", share / "input.pt", share / "expected.pt"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("parity: PASS: max abs diff")
    if installed.lane == "default":  # C++20, above the compiler's default: the package asked for it
        assert "-std=gnu++20" in (example / "build/build.ninja").read_text()


def test_the_example_builds_the_project_in_with_add_subdirectory(installed: SimpleNamespace, tmp_path: Path) -> None:
    """examples/embed/ with DEPLOY_PROJECT set builds the project's library as part of itself and reproduces
    Python's output; the project then gives the library only (no ts-infer)."""
    example = tmp_path / "embed"
    shutil.copytree(RUNTIME / "examples" / "embed", example)
    output = cmake_build(
        example,
        example / "build",
        f"-DDEPLOY_PROJECT={installed.path}",
        f"-DTORCH_DEPLOY_PYTHON={installed.python}",
        f"-DTORCH_DEPLOY_LIBTORCH={torch_package(installed.python)}",
    )
    assert "TorchDeploy: libtorch" in output
    assert not (example / "build/deploy/ts-infer").exists()
    artifacts = installed.path / "artifacts"
    result = run([example / "build/embed", artifacts / "model.pt", artifacts / "input.pt", artifacts / "expected.pt"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("parity: PASS")


def test_one_model_runs_from_several_threads_at_once(installed: SimpleNamespace, tmp_path: Path) -> None:
    """Eight threads share one Model and start together (their first runs, which profile and fuse the graph,
    overlap): every one of their runs reproduces Python's output; the same for a .pt2 (the default lane's)."""
    consumer = tmp_path / "threads"
    consumer.mkdir()
    shutil.copy(HERE / "threads.cpp", consumer)
    (consumer / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.21)\nproject(threads LANGUAGES CXX)\n"
        "find_package(TorchDeploy CONFIG REQUIRED)\nfind_package(Threads REQUIRED)\n"
        "add_executable(threads threads.cpp)\n"
        "target_link_libraries(threads PRIVATE TorchDeploy::runtime Threads::Threads)\n"
    )
    cmake_build(consumer, consumer / "build", f"-DCMAKE_PREFIX_PATH={installed.prefix}")
    share = installed.share
    models = [("model.pt", "expected.pt")] + (
        [("model.pt2", "expected_aoti.pt")] if installed.lane == "default" else []
    )
    for model, expected in models:
        result = run([consumer / "build/threads", share / model, share / "input.pt", share / expected, 8, 5])
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip() == "threads: 8 x 5 runs on cpu: 40 passed, 0 failed", model


def test_a_package_whose_libtorch_is_gone_says_so_in_one_line(
    cpu_lane_project: SimpleNamespace, tmp_path: Path
) -> None:
    """Built and installed against a libtorch that is later removed, the package refuses find_package with one
    message naming that libtorch and the fix."""
    libtorch = tmp_path / "libtorch"  # the cpu lane's files under another prefix, as a libtorch download would be
    libtorch.mkdir()
    for part in ("include", "lib", "share"):
        (libtorch / part).symlink_to(cpu_lane_project.libtorch / part)
    prefix = tmp_path / "prefix"
    project = cpu_lane_project.path
    installed = make(project, "install", "BUILD_DIR=build-gone", f"LIBTORCH={libtorch}", f"PREFIX={prefix}")
    assert installed.returncode == 0, installed.stdout
    shutil.rmtree(project / "build-gone")
    shutil.rmtree(libtorch)
    example = tmp_path / "embed"
    shutil.copytree(RUNTIME / "examples" / "embed", example)
    result = run([TOOLS / "cmake", "-S", example, "-B", example / "build", f"-DCMAKE_PREFIX_PATH={prefix}"])
    assert result.returncode != 0
    message = " ".join(result.stderr.split())  # CMake wraps its messages
    assert re.search(
        rf"was built against libtorch 2\.13\.0 at {re.escape(str(libtorch))}, which is gone; reinstall that torch "
        r"there, or rebuild and reinstall \w+ against the libtorch you have \(make install LIBTORCH=\.\.\. PREFIX",
        message,
    ), message


def test_touching_one_source_rebuilds_only_what_depends_on_it(default_project: SimpleNamespace) -> None:
    """After an edit of one library source (the runtime's, compiled in the project's build), the build compiles that
    file alone (then relinks). In a build folder of its own, and with the file's time restored after, so that the
    project's own build stays up to date."""
    project = default_project.path
    cmake_dir = run([lane_python("default"), "-m", "torch_deploy", "--cmakedir"]).stdout.strip()
    source = Path(cmake_dir).parent / "src" / "compare.cpp"
    assert make(project, "build", "BUILD_DIR=build-edit").returncode == 0
    edited = source.stat()
    try:
        later = (project / "build-edit/ts-infer").stat().st_mtime_ns + 1_000_000_000  # newer than the build, surely
        os.utime(source, ns=(later, later))
        result = make(project, "build", "BUILD_DIR=build-edit")
    finally:
        os.utime(source, ns=(edited.st_atime_ns, edited.st_mtime_ns))
        shutil.rmtree(project / "build-edit", ignore_errors=True)
    assert result.returncode == 0, result.stdout
    compiled = re.findall(r"Building CXX object (\S+)", result.stdout)
    assert len(compiled) == 1 and compiled[0].endswith("/src/compare.cpp.o"), result.stdout


def test_the_cpp_passes_clang_tidy(default_project: SimpleNamespace) -> None:
    """The runtime's library and runner and the project's ts-infer.cpp pass the project's own .clang-tidy checks (bug
    patterns and needless copies), with the compile commands of its build; two files at a time."""
    project = default_project.path
    commands = json.loads((project / "build/compile_commands.json").read_text())
    sources = sorted({entry["file"] for entry in commands})
    assert str(project / "src/ts-infer.cpp") in sources
    assert any(name.endswith("torch_deploy/src/script.cpp") for name in sources)
    assert any(name.endswith("torch_deploy/src/cli.cpp") for name in sources)
    # The project's checks for the runtime's files too (in site-packages, no .clang-tidy above them).
    tidy = [str(TOOLS / "clang-tidy"), "-p", "build", "--quiet", "--config-file=.clang-tidy"]
    halves = [
        subprocess.Popen(
            [*tidy, *sources[i::2]], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for i in range(2)
    ]
    outputs = [half.communicate(timeout=600)[0] for half in halves]  # both waited for, also when one fails
    for half, output in zip(halves, outputs, strict=True):
        findings = [line for line in output.splitlines() if ": warning: " in line or ": error: " in line]
        assert half.returncode == 0 and not findings, output
