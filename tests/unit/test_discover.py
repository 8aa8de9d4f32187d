"""libtorch discovery (the runtime's discover.py): the documented order, what each form of path means, clear failures.
(The same on the real torch wheels of both lanes is in tests/with_torch/test_discover.py.)"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from tsgen import template

discover = template.discover()


def fake_libtorch(root: Path, version: str = "2.13.0", cuda: str | None = None) -> Path:
    """A folder laid out like a libtorch download: share/cmake/Torch with its config files, lib/."""
    cmake_dir = root / "share" / "cmake" / "Torch"
    cmake_dir.mkdir(parents=True)
    (cmake_dir / "TorchConfig.cmake").write_text("# fake\n")
    (cmake_dir / "TorchConfigVersion.cmake").write_text(f'set(PACKAGE_VERSION "{version}")\n')
    (root / "lib").mkdir()
    if cuda:
        (root / "lib" / "libtorch_cuda.so").write_text("")
        (root / "build-version").write_text(f"{version}+cu{cuda.replace('.', '')}\n")
    return root


NO_PYTHON = {"PATH": "/nonexistent"}


def test_explicit_path_wins_and_accepts_every_form(tmp_path: Path) -> None:
    """A libtorch folder, its share/cmake/Torch folder, or a torch package folder all name the same prefix."""
    prefix = fake_libtorch(tmp_path / "libtorch")
    env = {"Torch_DIR": str(fake_libtorch(tmp_path / "other")), **NO_PYTHON}
    for form in (prefix, prefix / "share" / "cmake" / "Torch"):
        found = discover.find_libtorch(str(form), environ=env)
        assert (found.prefix, found.how) == (str(prefix), "the explicit path")


def test_explicit_path_without_libtorch_is_an_error_not_skipped(tmp_path: Path) -> None:
    """A wrong explicit path is reported as such, even when the environment would have found another."""
    env = {"Torch_DIR": str(fake_libtorch(tmp_path / "other")), **NO_PYTHON}
    with pytest.raises(
        discover.LibtorchNotFound,
        match=r"libtorch=.*empty \(the explicit path\): no share/cmake/Torch/TorchConfig.cmake",
    ):
        discover.find_libtorch(str(tmp_path / "empty"), environ=env)


def test_environment_order_is_torch_dir_libtorch_then_cmake_prefix_path(tmp_path: Path) -> None:
    """Torch_DIR beats LIBTORCH beats CMAKE_PREFIX_PATH; the result says which variable it came from."""
    a, b, c = (fake_libtorch(tmp_path / name) for name in "abc")
    env = {"Torch_DIR": str(a / "share/cmake/Torch"), "LIBTORCH": str(b), "CMAKE_PREFIX_PATH": f"/nope{os.pathsep}{c}"}
    assert discover.find_libtorch(environ={**env, **NO_PYTHON}).how == "environment variable Torch_DIR"
    del env["Torch_DIR"]
    assert discover.find_libtorch(environ={**env, **NO_PYTHON}).prefix == str(b)
    del env["LIBTORCH"]
    found = discover.find_libtorch(environ={**env, **NO_PYTHON})
    assert (found.prefix, found.how) == (str(c), "environment variable CMAKE_PREFIX_PATH")
    assert "environment variable CMAKE_PREFIX_PATH: /nope (no libtorch there)" in found.looked


def test_nothing_found_lists_every_place_looked(tmp_path: Path) -> None:
    """The failure names each variable and interpreter it tried, and the fix."""
    with pytest.raises(discover.LibtorchNotFound) as caught:
        discover.find_libtorch(python=sys.executable + "-missing", environ={"LIBTORCH": str(tmp_path), **NO_PYTHON})
    assert "pass the libtorch folder" in str(caught.value)
    assert caught.value.looked == [
        "environment variable Torch_DIR: not set",
        f"environment variable LIBTORCH: {tmp_path} (no libtorch there)",
        "environment variable CMAKE_PREFIX_PATH: not set",
        f"torch package of {sys.executable}-missing: torch is not installed there",
    ]


def test_cuda_and_cxx_standard_of_a_libtorch_download(tmp_path: Path) -> None:
    """A CUDA libtorch download is recognised by libtorch_cuda and its build-version; 2.14 needs C++20."""
    found = discover.inspect(fake_libtorch(tmp_path / "lt", "2.14.1", cuda="12.8"), "test")
    assert (found.version, found.cuda, found.cxx_standard) == ("2.14.1", "12.8", 20)
    assert found.describe().startswith("libtorch 2.14.1 (CUDA 12.8 wheel, C++20)")


@pytest.mark.parametrize(
    ("version", "standard"), [("2.13.0", 17), ("2.14.1", 20), ("2.14.0+cu130", 20), ("3.0.0", 20), ("2.1.0", 17)]
)
def test_cxx_standard_follows_the_libtorch_version(version: str, standard: int) -> None:
    """C++17 up to torch 2.13, C++20 from 2.14 on."""
    assert discover.cxx_standard_for(version) == standard


def test_command_line_prints_json_for_cmake_and_fails_with_the_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`discover.py libtorch --json` is what TorchDeploy.cmake parses; failure exits 1 with every place looked."""
    prefix = fake_libtorch(tmp_path / "lt")
    assert discover.main(["libtorch", "--json", "--libtorch", str(prefix)]) == 0
    assert f'"cmake_dir": "{prefix}/share/cmake/Torch"' in capsys.readouterr().out
    assert discover.main(["libtorch", "--libtorch", str(tmp_path / "none")]) == 1
    assert "ERROR: libtorch=" in capsys.readouterr().err


def test_the_version_rule_gives_one_verdict_for_cmake_the_hook_and_doctor() -> None:
    """Same release: nothing to say; another minor release: a warning naming both; another major one: refused
    with the fix; no exporting torch: unknown."""
    libtorch = discover.Libtorch(prefix="/opt/libtorch", how="test", version="2.14.1", cxx_standard=20)
    assert discover.agreement("2.14.1+cu130", libtorch, "py").level == "same"
    minor = discover.agreement("2.13.0+cpu", libtorch, "/venv/bin/python")
    assert (minor.level, minor.blocking) == ("minor", False)
    assert minor.message.startswith(
        "libtorch 2.14.1 at /opt/libtorch and torch 2.13.0+cpu of /venv/bin/python, which exports the model, "
        "differ (2.13 vs 2.14); models load most reliably when both are the same release"
    )
    major = discover.agreement("3.0.0", libtorch, "py")
    assert major.blocking and "differ in major version; use that torch's own libtorch" in major.message
    assert major.message.endswith("or export with torch 2.x (make PYTHON=...)")
    assert discover.agreement(None, libtorch, "py").level == "unknown"
