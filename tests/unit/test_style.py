"""Code reads as if written by hand: this repository's Python and every generated file are formatted and lint-clean."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from tests.conftest import REPO, run

TOOLS = Path(sys.executable).parent


def ruff(*args: object) -> None:
    result = run([TOOLS / "ruff", *args, "--no-cache"], cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_repository_python_is_formatted_and_lint_clean() -> None:
    """ruff check and ruff format agree with the package, the hooks, the runtime and the tests."""
    ruff("check", "generator", "hooks", "runtime", "tests")
    ruff("format", "--check", "generator", "hooks", "runtime", "tests")


def test_package_is_mypy_clean(tmp_path: Path) -> None:
    """The tsgen package type-checks under mypy --strict (settings in pyproject.toml)."""
    result = run([TOOLS / "mypy", "--cache-dir", tmp_path], cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("model", ["torchvision:resnet18", "user-file"])
def test_generated_project_is_formatted_and_lint_clean(model: str, tmp_path: Path) -> None:
    """The generated Python passes ruff (with the project's own settings) and every C++ file clang-format."""
    if model == "user-file":
        (tmp_path / "net.py").write_text("import torch\n\n\ndef make():\n    return torch.nn.Linear(4, 2)\n")
        model = str(tmp_path / "net.py") + ":make"
    project = Path(
        cookiecutter(
            str(REPO),
            no_input=True,
            output_dir=str(tmp_path / "out"),
            extra_context={"first_build": False, "model": model, "input_shape": "2,4", "top_k": "0"},
        )
    )
    python_files = [str(p.relative_to(project)) for p in project.rglob("*.py")]
    for args in (["check", *python_files], ["format", "--check", *python_files]):
        result = run([TOOLS / "ruff", *args, "--no-cache"], cwd=project)
        assert result.returncode == 0, result.stdout + result.stderr
    cxx = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.suffix in (".cpp", ".h"))
    assert cxx == ["src/ts-infer.cpp"]
    result = run([TOOLS / "clang-format", "--dry-run", "--Werror", *cxx], cwd=project)
    assert result.returncode == 0, result.stderr


def test_runtime_cxx_is_formatted() -> None:
    """The runtime's C++ (library, full runner, example) follows the style the generated project's C++ follows."""
    style = f"--style=file:{REPO / '{{cookiecutter.project_slug}}' / '.clang-format'}"
    runtime = REPO / "runtime" / "torch_deploy"
    cxx = sorted(str(p.relative_to(REPO)) for p in runtime.rglob("*") if p.suffix in (".cpp", ".h"))
    assert "runtime/torch_deploy/src/cli.cpp" in cxx and "runtime/torch_deploy/include/torch_deploy/model.h" in cxx
    result = run([TOOLS / "clang-format", style, "--dry-run", "--Werror", *cxx], cwd=REPO)
    assert result.returncode == 0, result.stderr


def test_test_programs_are_formatted() -> None:
    """The C++ that the end-to-end tests compile against the library follows the generated project's style."""
    style = f"--style=file:{REPO / '{{cookiecutter.project_slug}}' / '.clang-format'}"
    result = run([TOOLS / "clang-format", style, "--dry-run", "--Werror", "tests/with_build/threads.cpp"], cwd=REPO)
    assert result.returncode == 0, result.stderr
