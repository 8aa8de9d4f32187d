"""End to end: generate real projects, build them with the real compiler against real libtorch, run their
`make verify` (which runs each project's own tests), on both torch lanes and through both front doors.

Builds are shared: one project per scenario (session fixtures), and ccache makes every build after the first
of a lane a cache hit.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torchvision

from tests.conftest import lane_python, run
from tests.with_build.conftest import COMPILE_MARKERS, make, mtimes

pytestmark = pytest.mark.e2e


def test_tsgen_new_builds_and_the_first_verify_passes(default_project: SimpleNamespace) -> None:
    """The hook's first build makes build/ts-infer; the first `make verify` exports both formats, reuses that build,
    and passes with the tutorial's lines, the top-5, a parity line per format and one summary line."""
    generation, first = default_project.generation, default_project.first
    assert generation.returncode == 0, generation.stdout + generation.stderr
    assert "==> Built build/ts-infer in" in generation.stdout
    assert "CPU build against this CUDA wheel: the CUDA toolkit is not needed" in generation.stdout
    assert first.returncode == 0, first.stdout
    assert "between the eager and the scripted model (model.pt, exported in " in first.stdout
    assert "between the eager and the AOTInductor-compiled model (model.pt2, exported in " in first.stdout
    assert not any(marker in first.stdout for marker in COMPILE_MARKERS), "verify rebuilt what the hook built"
    lines = first.stdout.splitlines()
    assert "Loading model..." in lines and "Model loaded successfully" in lines and "[ CPULongType{5} ]" in lines
    for model in ("model.pt", "model.pt2"):
        parity = [line for line in lines if line.startswith(f"parity of {model}: ")]
        assert len(parity) == 1 and parity[0].startswith(f"parity of {model}: PASS: max abs diff"), lines
        assert "top-5 identical to Python" in parity[0]
    summary = [line for line in lines if line.startswith("verify:")]
    assert len(summary) == 1 and summary[0].startswith("verify: PASS: C++ reproduces Python (model.pt: max abs diff")
    assert "; model.pt2: max abs diff " in summary[0]
    # skipped: the dynamic batch test, once per format
    assert re.search(r"; tests: \d+ passed(, 2 skipped)? in ", summary[0]), summary[0]
    print(f"\ntimings: {default_project.seconds}")


def test_second_verify_redoes_neither_export_nor_build(default_project: SimpleNamespace) -> None:
    """Nothing changed: `make verify` again passes, touching neither the artifacts nor the runner."""
    before = mtimes(default_project.path)
    started = time.monotonic()
    second = make(default_project.path, "verify")
    print(f"\ntimings: second make verify {time.monotonic() - started:.1f} s")
    assert second.returncode == 0, second.stdout
    assert "export check" not in second.stdout and "cmake" not in second.stdout.lower().replace("make:", "")
    assert mtimes(default_project.path) == before
    summary = second.stdout.splitlines()[-1]
    assert summary.startswith("verify: PASS") and summary.endswith("(inputs unchanged: last run's result)")
    assert "[ CPULongType{5} ]" in second.stdout  # the parity run itself is never skipped


def test_make_test_runs_pytest_and_ctest(default_project: SimpleNamespace) -> None:
    """`make test`: the project's pytest suite and the ctest parity test both pass."""
    result = make(default_project.path, "test")
    assert result.returncode == 0, result.stdout
    assert "100% tests passed" in result.stdout and " passed" in result.stdout


def test_other_weights_make_verify_fail_and_name_the_max_abs_diff(
    default_project: SimpleNamespace, tmp_path: Path
) -> None:
    """A model.pt with other weights (and a newer timestamp, so nothing re-exports) fails verify."""
    project = default_project.path
    torch.manual_seed(7)  # resnet18 scripted here: a whole export would compile the .pt2 too
    torch.jit.script(torchvision.models.resnet18().eval()).save(str(tmp_path / "model.pt"))
    original = tmp_path / "original.pt"
    shutil.copy2(project / "artifacts/model.pt", original)
    try:
        shutil.copy2(tmp_path / "model.pt", project / "artifacts/model.pt")
        os.utime(project / "artifacts/model.pt")
        result = make(project, "verify")
        assert result.returncode != 0
        assert "export check" not in result.stdout
        parity = [line for line in result.stdout.splitlines() if line.startswith("parity of ")]
        assert len(parity) == 1 and parity[0].startswith("parity of model.pt: FAIL: max abs diff ")
        assert float(parity[0].split("max abs diff ")[1].split()[0]) > 1e-3
        assert "verify: FAIL: the C++ output of model.pt differs from Python's" in result.stdout
    finally:
        shutil.copy2(original, project / "artifacts/model.pt")
        os.utime(project / "artifacts/model.pt")
    assert make(project, "verify").returncode == 0


def test_cpu_build_against_the_cuda_wheel_needs_no_cuda_toolkit(
    default_project: SimpleNamespace, bare_machine_build: SimpleNamespace
) -> None:
    """With the CUDA toolkit made unfindable (CMake switches, nvcc off PATH), the CPU build succeeds, links no
    CUDA library, and passes verify (the GPU build against the same wheel: test_gpu.py)."""
    project, env, build = default_project.path, bare_machine_build.env, bare_machine_build.verify
    assert shutil.which("nvcc", path=env["PATH"]) is None
    assert build.returncode == 0, build.stdout
    assert "CPU-only build against the CUDA wheel (no CUDA toolkit needed" in build.stdout
    # The runner links the CPU half only (the wheel's libtorch_cpu itself pulls the pip CUDA runtime, not the toolkit).
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]", run(["readelf", "-d", bare_machine_build.runner]).stdout)
    assert {"libtorch_cpu.so", "libc10.so"} <= set(needed) and not {"libtorch.so", "libtorch_cuda.so"} & set(needed)
    # The .pt2's model code NEEDs libtorch.so, which in this wheel brings libtorch_cuda: the library's empty
    # stand-in answers for it, so that running the package loads no CUDA kernels library either.
    artifacts = project / "artifacts"
    loaded = run(
        [bare_machine_build.runner, artifacts / "model.pt2", "--input", artifacts / "input.pt",
         "--expect", artifacts / "expected_aoti.pt"],
        env={**env, "LD_DEBUG": "files"},
    )  # fmt: skip
    assert loaded.returncode == 0 and "parity: PASS" in loaded.stdout, loaded.stdout + loaded.stderr
    files = set(re.findall(r"file=(\S+)", loaded.stderr))
    assert any(name.endswith("/libtorch_deploy_libtorch_stand_in.so") for name in files), sorted(files)
    assert not any("libtorch_cuda" in name or name.endswith("/libtorch.so") for name in files), sorted(files)


def test_a_build_without_aoti_refuses_a_pt2_in_one_line(default_project: SimpleNamespace) -> None:
    """-DTORCH_DEPLOY_AOTI=OFF (what a libtorch before 2.6 gets): the library builds, runs model.pt, and names the
    fix for model.pt2."""
    project = default_project.path
    build = make(project, "build", "BUILD_DIR=build-no-aoti", "CMAKE_ARGS=-DTORCH_DEPLOY_AOTI=OFF")
    assert build.returncode == 0, build.stdout
    assert "AOTInductor packages (.pt2) disabled (TORCH_DEPLOY_AOTI=OFF)" in build.stdout
    runner, artifacts = project / "build-no-aoti/ts-infer", project / "artifacts"
    assert run([runner, artifacts / "model.pt"]).returncode == 0
    refused = run([runner, artifacts / "model.pt2"])
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert "model.pt2: an AOTInductor package, and this torch_deploy was built without AOTInductor's loader" in (
        refused.stderr
    )


def test_cookiecutter_git_url_first_build_then_verify(
    tmp_path: Path, template_git_url: str, cookiecutter_only: Path, clean_env: dict[str, str]
) -> None:
    """`cookiecutter <git URL> --no-input` with only cookiecutter installed: the hook finds torch through python3
    on PATH, runs the first build, and `make verify` passes twice without rebuilding."""
    env = {**clean_env, "PATH": f"{lane_python('default').parent}{os.pathsep}{clean_env['PATH']}"}
    generation = run([cookiecutter_only, template_git_url, "--no-input", "-o", tmp_path], env=env)
    assert generation.returncode == 0, generation.stdout + generation.stderr
    assert "==> Built build/ts-infer in" in generation.stdout
    project = tmp_path / "resnet18_deploy"
    first = make(project, "verify", env=env)
    assert first.returncode == 0, first.stdout
    assert not any(marker in first.stdout for marker in COMPILE_MARKERS)
    second = make(project, "verify", env=env)
    assert second.returncode == 0 and "export check" not in second.stdout


def test_cpu_lane_user_model_with_an_explicit_libtorch_folder(cpu_lane_project: SimpleNamespace) -> None:
    """torch 2.13.0 CPU wheel: a user model file, libtorch given as a folder, C++17; verify passes."""
    generation, project = cpu_lane_project.generation, cpu_lane_project.path
    assert generation.returncode == 0, generation.stdout + generation.stderr
    expected = (
        f"Found libtorch 2.13.0 (CPU build, C++17) at {cpu_lane_project.libtorch} (found via the libtorch answer)"
    )
    assert expected in generation.stdout
    assert "==> Built build/ts-infer in" in generation.stdout
    assert "-std=c++17" in (project / "build" / "build.ninja").read_text()
    verify = cpu_lane_project.first
    assert verify.returncode == 0, verify.stdout
    assert "Python model top 5 results:" in verify.stdout
    assert verify.stdout.splitlines()[-1].startswith("verify: PASS: C++ reproduces Python")


def test_switching_libtorch_in_a_build_folder_forgets_the_old_one(
    cpu_lane_project: SimpleNamespace, tmp_path: Path
) -> None:
    """`make LIBTORCH=<another>` reconfigures, and no path cached by the first libtorch's TorchConfig.cmake
    (its find_library results) survives into the second configuration."""
    original = cpu_lane_project.libtorch
    other = tmp_path / "libtorch"  # the same files under another prefix, as a second libtorch download would be
    other.mkdir()
    for part in ("include", "lib", "share"):
        (other / part).symlink_to(original / part)
    cache = cpu_lane_project.path / "build-switch" / "CMakeCache.txt"
    for libtorch, stale in ((original, other), (other, original)):
        result = make(
            cpu_lane_project.path, "build-switch/CMakeCache.txt", "BUILD_DIR=build-switch", f"LIBTORCH={libtorch}"
        )
        assert result.returncode == 0, result.stdout
        text = cache.read_text()
        assert f"TORCH_LIBRARY:FILEPATH={libtorch}/lib/libtorch.so" in text
        assert str(stale) + "/" not in text.replace(f"{libtorch}/", "")
