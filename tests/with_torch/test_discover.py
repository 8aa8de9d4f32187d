"""libtorch discovery (the runtime's discover.py) on the real torch wheels of both lanes (scripts/setup.sh): the torch
package each lane's Python points at, which interpreter has torch, and which required packages it lacks.
(The rules themselves, on fake libtorch folders, are tested in tests/unit/test_discover.py.)"""

from __future__ import annotations

from pathlib import Path

from tsgen import template

from tests.conftest import lane_python, run, torch_package

discover = template.discover()

NO_PYTHON = {"PATH": "/nonexistent"}


def test_the_torch_package_of_each_lane_is_found_through_its_python() -> None:
    """Real wheels: the default lane is a CUDA 13 wheel needing C++20, the cpu lane a CPU wheel needing C++17."""
    default, cpu = lane_python("default"), lane_python("cpu")
    found = discover.find_libtorch(python=str(default), environ=NO_PYTHON)
    assert (found.prefix, found.version, found.cuda, found.cxx_standard) == (
        str(torch_package(default)),
        "2.14.1",
        "13.0",
        20,
    )
    assert found.how == f"the torch package of {default}"
    found = discover.find_libtorch(python=str(cpu), environ=NO_PYTHON)
    assert (found.version, found.cuda, found.cxx_standard) == ("2.13.0", None, 17)


def test_find_python_skips_interpreters_without_torch() -> None:
    """The project's Python is the first candidate that has torch."""
    assert discover.find_python(["/nonexistent/python", str(lane_python("cpu"))]) == str(lane_python("cpu"))
    assert discover.torch_version_of(str(lane_python("cpu"))) == "2.13.0+cpu"


def test_missing_packages_are_named_with_the_command_that_installs_them(tmp_path: Path) -> None:
    """requirements.txt's names (versions, comments and options left out) are looked up in the given Python;
    the command line prints one setup: FAIL line naming what is missing and exits 1."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# the project's\ntorch>=2.1\npillow  # images\npytest\n-r more.txt\nno-such-pkg-xyz==1\n")
    names = discover.requirement_names(requirements)
    assert names == ["torch", "pillow", "pytest", "no-such-pkg-xyz"]
    cpu = str(lane_python("cpu"))
    assert discover.missing_packages(cpu, names) == ["no-such-pkg-xyz"]
    assert discover.missing_packages("/nonexistent/python", names) is None
    script = template.find_template_dir() / "runtime" / "torch_deploy" / "discover.py"
    result = run([cpu, script, "requirements", requirements])
    assert result.returncode == 1 and result.stdout == (
        f"setup: FAIL: {cpu} lacks no-such-pkg-xyz, which this project needs; {cpu} -m pip install -r {requirements}\n"
    )
    requirements.write_text("torch\npytest\n")
    assert run([cpu, script, "requirements", requirements]).returncode == 0
