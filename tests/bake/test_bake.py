"""Baking the template through both front doors: what gets written, and that bad answers write nothing."""

from __future__ import annotations

import json
import py_compile
import re
import sys
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from tests.conftest import PROJECT_TEMPLATE, REPO, RUNTIME_VERSION, run, tree, tsgen

EXPECTED_FILES = {
    ".clang-format",
    ".clang-tidy",
    ".cookiecutter.json",
    ".dockerignore",
    ".github/workflows/verify.yml",
    ".gitignore",
    "CMakeLists.txt",
    "CMakePresets.json",
    "Dockerfile",
    "Makefile",
    "README.md",
    "deploy.json",
    "export.py",
    "local.mk",
    "pyproject.toml",
    "requirements.txt",
    "requirements-peers.txt",
    "src/ts-infer.cpp",
    "tests/conftest.py",
    "tests/test_export.py",
    "tests/test_images.py",
    "tests/test_parity.py",
}


def bake(output_dir: Path, **answers: object) -> Path:
    """cookiecutter's API on this repository, no prompts, no first build (the e2e tier builds)."""
    return Path(
        cookiecutter(
            str(REPO), no_input=True, output_dir=str(output_dir), extra_context={"first_build": False, **answers}
        )
    )


def contents(folder: Path) -> dict[str, str]:
    """Every file's text, but git's folder; the record's template source and commit are the render's own, so they
    are left out of it (the answers and the template's fingerprint stay)."""
    found = {
        name: (folder / name).read_text(encoding="utf-8")
        for name in sorted(tree(folder))
        if not name.startswith(".git/")
    }
    record = json.loads(found.pop(".cookiecutter.json"))
    del record["tsgen"]["template"], record["tsgen"]["commit"]
    return {**found, ".cookiecutter.json": json.dumps(record)}


def test_default_project_renders_cleanly(tmp_path: Path) -> None:
    """--no-input gives the resnet18 project: every file present, no template residue, valid JSON and Python."""
    project = bake(tmp_path)
    assert project == tmp_path / "resnet18_deploy"
    assert tree(project) == EXPECTED_FILES
    for name, text in contents(project).items():
        if not name.startswith(".github/"):  # GitHub's own expressions are ${{ ... }}
            assert not re.search(r"\{\{|\{%|\{#|cookiecutter\.(?!json)", text), f"template residue in {name}"
        assert "\n\n\n\n" not in text, f"runs of blank lines in {name}"
    deploy = json.loads((project / "deploy.json").read_text())
    assert deploy == {
        "model": "torchvision:resnet18",
        "weights": "none",
        "export_method": "script",
        "formats": ["torchscript"],
        "precision": "fp32",
        "device": "cpu",
        "inputs": [{"name": "input", "shape": [1, 3, 224, 224], "dtype": "float32"}],
        "dynamic_batch": False,
        "seed": 0,
        "top_k": 5,
        "preprocess": {"resize": "auto", "mean": "auto", "std": "auto", "interpolation": "auto"},
        "labels": "auto",
        "atol": 1e-4,
        "rtol": 1e-4,
    }
    # The C++ and the Python files are the template's own, copied as they are: nothing in them varies per project
    # (what does travels in the model file and deploy.json); the runtime is not in the project at all.
    for name in tree(project):
        if name.startswith(("src/", ".github/")) or name.endswith(".py"):
            assert (project / name).read_bytes() == (PROJECT_TEMPLATE / name).read_bytes(), name
    assert "project(resnet18_deploy VERSION 0.1.0 LANGUAGES CXX)" in (project / "CMakeLists.txt").read_text()
    assert (project / "requirements.txt").read_text().splitlines()[1:] == [
        "torch>=2.1",
        "torchvision",
        f"tsgen-runtime=={RUNTIME_VERSION}  # the torch_deploy runtime: its library, CMake package and commands",
        "pillow  # the image tests decode images with it",
        "pytest",
    ]
    for name in (
        "export.py",
        "tests/conftest.py",
        "tests/test_export.py",
        "tests/test_parity.py",
    ):
        py_compile.compile(str(project / name), doraise=True, cfile=str(tmp_path / "x.pyc"))
    assert all(
        line.startswith("\t") for line in (project / "Makefile").read_text().splitlines() if line.startswith("  \t")
    )


def test_the_ci_workflow_is_a_valid_github_workflow(tmp_path: Path) -> None:
    """.github/workflows/verify.yml passes GitHub's workflow schema (check-jsonschema's copy, no network), and runs
    make verify and make package-check; the same file without its runner fails the schema (the check is real)."""
    workflow = bake(tmp_path) / ".github/workflows/verify.yml"
    check = [str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    result = run([*check, workflow])
    assert result.returncode == 0, result.stdout + result.stderr
    text = workflow.read_text()
    assert "make verify PYTHON=python" in text and "make package-check PYTHON=python" in text
    assert "download.pytorch.org/whl/cpu" in text and "cache: pip" in text and "ccache" in text
    broken = tmp_path / "broken.yml"
    broken.write_text(text.replace("    runs-on: ubuntu-24.04\n", ""))
    assert run([*check, broken]).returncode == 1


def test_both_front_doors_render_the_same_project(tmp_path: Path) -> None:
    """`tsgen new` and `cookiecutter` produce identical files for the same answers."""
    via_cookiecutter = bake(tmp_path / "cc", project_name="same-answers", _top_k="3")
    result = tsgen("new", "same-answers", "--top-k", "3", "--no-build", "-o", tmp_path / "tsgen")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith(f"tsgen: {tmp_path / 'tsgen' / 'same_answers'} ready in ")
    assert contents(via_cookiecutter) == contents(tmp_path / "tsgen" / "same_answers")


def test_replay_file_regenerates_the_same_project(tmp_path: Path) -> None:
    """.cookiecutter.json is a cookiecutter replay file: regenerating from it reproduces the project."""
    first = bake(tmp_path / "a", project_name="replayed", model="torchvision:mobilenet_v3_small", _seed="3")
    again = cookiecutter(str(REPO), replay=str(first / ".cookiecutter.json"), output_dir=str(tmp_path / "b"))
    assert contents(first) == contents(Path(again))


def test_a_user_model_file_is_copied_into_the_project(tmp_path: Path) -> None:
    """path/to/file.py:factory, relative to where tsgen runs: the file lands in models/ and deploy.json names it."""
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "tiny.py").write_text("import torch\n\ndef make():\n    return torch.nn.Linear(4, 2)\n")
    result = tsgen(
        "new", "tiny", "--model", "nets/tiny.py:make", "--input-shape", "2,4", "--no-build", "-o", "out", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out" / "tiny"
    assert (project / "models" / "tiny.py").read_text() == (tmp_path / "nets" / "tiny.py").read_text()
    assert json.loads((project / "deploy.json").read_text())["model"] == "models/tiny.py:make"
    assert "torchvision" not in (project / "requirements.txt").read_text()


def test_image_answers_are_rendered_into_deploy_json(tmp_path: Path) -> None:
    """preprocess values become typed JSON (the rest "auto"), none becomes null; a labels file is copied."""
    (tmp_path / "names.txt").write_text("cat\ndog\n")
    result = tsgen(
        "new",
        "images",
        "--preprocess",
        "resize=288 mean=.5,0.5,0.5 interpolation=bicubic",
        "--labels",
        "names.txt",
        "--no-build",
        "-o",
        "out",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    deploy = json.loads((tmp_path / "out" / "images" / "deploy.json").read_text())
    assert deploy["preprocess"] == {"resize": 288, "mean": [0.5, 0.5, 0.5], "std": "auto", "interpolation": "bicubic"}
    assert deploy["labels"] == "models/names.txt"
    assert (tmp_path / "out" / "images" / "models" / "names.txt").read_text() == "cat\ndog\n"
    plain = bake(tmp_path / "plain", project_name="plain", _preprocess="none", _labels="none")
    assert json.loads((plain / "deploy.json").read_text())["preprocess"] is None
    assert json.loads((plain / "deploy.json").read_text())["labels"] is None


def test_a_git_url_works_with_nothing_but_cookiecutter_installed(
    tmp_path: Path, template_git_url: str, cookiecutter_only: Path, clean_env: dict[str, str]
) -> None:
    """`cookiecutter git+file://<clone> --no-input` from a venv holding only cookiecutter: the hooks are stdlib only."""
    result = run([cookiecutter_only, template_git_url, "--no-input", "-o", tmp_path, "first_build=no"], env=clean_env)
    assert result.returncode == 0, result.stderr
    assert tree(tmp_path / "resnet18_deploy") >= EXPECTED_FILES - {"local.mk"}


@pytest.mark.parametrize(
    ("answer", "line"),
    [
        (
            "input_shape=1,0",
            "ERROR: input_shape='1,0': is not a comma-separated list of positive integers; give e.g. 1,3,224,224",
        ),
        ("project_name=my model!", "ERROR: project_slug='my_model!': is not a valid C++/CMake/Python identifier"),
        ("model=nowhere.py:make", "ERROR: model='nowhere.py:make': nowhere.py does not exist"),
    ],
)
def test_a_bad_answer_through_cookiecutter_leaves_no_folder(
    answer: str, line: str, tmp_path: Path, template_git_url: str, cookiecutter_only: Path, clean_env: dict[str, str]
) -> None:
    """The pre_gen hook refuses in one line, cookiecutter exits non-zero, and no project folder remains."""
    out = tmp_path / "out"
    out.mkdir()
    result = run([cookiecutter_only, template_git_url, "--no-input", "-o", out, answer], env=clean_env, cwd=tmp_path)
    assert result.returncode != 0
    assert any(err.startswith(line) for err in result.stderr.splitlines()), result.stderr
    assert list(out.iterdir()) == []


def test_tsgen_runs_from_the_wheel_without_the_repository(tmp_path: Path) -> None:
    """The installed tsgen renders from its own template copy in site-packages, not from this checkout."""
    result = run(
        [sys.executable, "-c", "from tsgen import template; print(template.find_template_dir())"], cwd=tmp_path
    )
    assert "site-packages/tsgen/template" in result.stdout
