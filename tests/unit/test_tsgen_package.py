"""The tsgen package: the template it ships, the modules it shares with the template, its one-line errors.
(`tsgen libtorch` on a real lane's torch is tested in tests/with_torch/test_tsgen_package.py.)"""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest
import tsgen
from click.testing import CliRunner
from tsgen import template
from tsgen.cli import cli

from tests.conftest import REPO


def test_the_installed_wheel_carries_this_checkout_s_template() -> None:
    """`pip install` ships the one template (no second copy kept by hand): the installed files equal the repo's."""
    installed = template.find_template_dir()
    assert installed == Path(tsgen.__file__).resolve().parent / "template", "tsgen is not installed as a wheel"
    for part in ("cookiecutter.json", "hooks", "templates", template.PROJECT_DIR_NAME, "runtime/torch_deploy"):
        if (REPO / part).is_file():
            assert filecmp.cmp(REPO / part, installed / part, shallow=False), part
            continue
        comparison = filecmp.dircmp(REPO / part, installed / part, ignore=["__pycache__"])
        stale = comparison.diff_files + comparison.left_only + comparison.right_only
        assert not stale, f"installed template differs in {part}: {stale}; run scripts/setup.sh"


def test_a_checkout_finds_its_own_template(tmp_path: Path) -> None:
    """From a source checkout (no template/ beside the package) the repository root is the template."""
    assert template.find_template_dir(REPO / "generator" / "tsgen") == REPO
    with pytest.raises(RuntimeError, match="reinstall tsgen"):
        template.find_template_dir(tmp_path / "a" / "b")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["new", "x", "--input-shape", "1,0"],
            "--input-shape '1,0': is not a comma-separated list of positive integers; give e.g. 1,3,224,224",
        ),
        (
            ["new", "my-model", "--slug", "class"],
            "--slug 'class': is a reserved word in C++, Python or CMake; add a suffix such as _deploy",
        ),
        (
            ["new", "x", "--model", "resnet18"],
            "--model 'resnet18': is neither torchvision:<arch>, path/to/file.py:factory nor path/to/model.pt",
        ),
        (["new", "x", "--atol", "-1"], "--atol '-1': not a finite number >= 0; give a tolerance such as 1e-4"),
        (["new", "7up"], "NAME '7up' gives the folder name '7up', which is not a valid C++/CMake/Python identifier"),
    ],
)
def test_new_refuses_bad_flags_in_one_line_and_writes_nothing(args: list[str], message: str, tmp_path: Path) -> None:
    """A bad flag: exit 1, one line naming the flag, the value and the fix, and an untouched output folder."""
    result = CliRunner().invoke(cli, [*args, "--no-build", "-o", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tsgen: error: {message}")
    assert list(tmp_path.iterdir()) == []


def test_new_refuses_an_existing_folder_without_force(tmp_path: Path) -> None:
    """An existing destination is never written into unless --force says so."""
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "mine.txt").write_text("keep")
    result = CliRunner().invoke(cli, ["new", "demo", "--no-build", "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert (
        f"tsgen: error: {tmp_path / 'demo'} already exists; choose another NAME or --output-dir, or pass --force"
        in result.output
    )
    assert [p.name for p in (tmp_path / "demo").iterdir()] == ["mine.txt"]


def test_libtorch_fails_with_the_places_it_looked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No libtorch: exit 1 and one 'looked at' line per place tried."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("LIBTORCH", str(tmp_path))
    result = CliRunner().invoke(cli, ["libtorch", "--python", str(tmp_path / "python")])
    assert result.exit_code == 1
    assert result.output.startswith("tsgen: error: libtorch not found;")
    assert f"  looked at environment variable LIBTORCH: {tmp_path} (no libtorch there)" in result.output
