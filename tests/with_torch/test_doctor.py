"""`tsgen doctor` on the real torch of both lanes (scripts/setup.sh): what is there passes, what disagrees fails
with its fix, and a generated project's recorded configuration is the one checked.
(What needs no torch, a missing Python, is tested in tests/unit/test_doctor.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from tsgen import doctor
from tsgen.cli import cli

from tests.conftest import lane_python, torch_package


def rows(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {check.name: check for check in checks}


def test_the_default_lane_has_everything_a_build_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch 2.14.1 + torchvision 0.29.1 and the system tools: every blocking check passes, exit 0."""
    for variable in ("Torch_DIR", "LIBTORCH", "CMAKE_PREFIX_PATH"):
        monkeypatch.delenv(variable, raising=False)
    result = CliRunner().invoke(cli, ["doctor", "--python", str(lane_python("default")), "--project", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "doctor: everything a build needs is there" in result.output
    checks = rows(doctor.run_checks(doctor.setup_for(tmp_path, str(lane_python("default")), None)))
    assert checks["torchvision"].ok and "matches torch" in checks["torchvision"].detail
    assert checks["libtorch"].detail.startswith("2.14.1 (CUDA 13.0 wheel)")
    assert checks["C++ standard"].detail.startswith("C++20")
    assert checks["C++20 support"].ok and checks["C++11 ABI"].ok and checks["torch = libtorch"].ok


def test_a_libtorch_of_another_major_version_blocks(tmp_path: Path) -> None:
    """libtorch 3.0.0 against torch 2.14: the agreement check fails and blocks."""
    cmake_dir = tmp_path / "lt" / "share" / "cmake" / "Torch"
    cmake_dir.mkdir(parents=True)
    (cmake_dir / "TorchConfig.cmake").write_text("")
    (cmake_dir / "TorchConfigVersion.cmake").write_text('set(PACKAGE_VERSION "3.0.0")\n')
    checks = rows(doctor.run_checks(doctor.setup_for(tmp_path, str(lane_python("default")), str(tmp_path / "lt"))))
    agreement = checks["torch = libtorch"]
    assert not agreement.ok and agreement.blocking and "libtorch 3.0.0" in agreement.detail


def test_the_cpu_lane_needs_cxx17_and_has_no_torchvision(tmp_path: Path) -> None:
    """torch 2.13.0 CPU: C++17, a CPU build, and torchvision missing is reported but does not block."""
    checks = rows(doctor.run_checks(doctor.setup_for(tmp_path, str(lane_python("cpu")), None)))
    assert checks["C++ standard"].detail.startswith("C++17") and checks["C++17 support"].ok
    assert checks["libtorch"].detail.startswith(f"2.13.0 (CPU build) at {torch_package(lane_python('cpu'))}")
    assert not checks["torchvision"].ok and not checks["torchvision"].blocking
    assert "a CPU libtorch: builds run models on the CPU" in checks["GPU"].detail


def test_inside_a_project_its_recorded_configuration_is_checked(tmp_path: Path) -> None:
    """In a generated project, local.mk's Python, CMake and libtorch are the ones checked, plus its state."""
    assert CliRunner().invoke(cli, ["new", "demo", "--no-build", "-o", str(tmp_path)]).exit_code == 0
    project = tmp_path / "demo"
    setup = doctor.setup_for(project, None, None)
    recorded = doctor.read_local_mk(project)
    assert (setup.python, setup.libtorch, setup.cmake) == (recorded["PYTHON"], recorded["LIBTORCH"], recorded["CMAKE"])
    checks = rows(doctor.run_checks(setup))
    assert "via the explicit path" in checks["libtorch"].detail
    assert "(recorded in local.mk)" in checks["CMake"].detail
    assert not checks["exported"].ok and checks["exported"].fix == "make export"
    assert not checks["built"].ok and not checks["built"].blocking
