"""Generation at its edges: hostile answers through both front doors, atomic generation, --force.

Every refused answer must end in one line naming the answer, a non-zero exit, and an output folder exactly as it
was before (a file of the user's included).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from tsgen import new as new_module
from tsgen import template
from tsgen.cli import cli
from tsgen.new import FLAG_ALIASES

from tests.conftest import REPO, lane_python, run, tree

# (tsgen arguments after `new`, the words the one error line must hold). Each also runs through cookiecutter
# below, unless it is about the command line itself.
HOSTILE = [
    ([""], "is empty"),
    (["1model"], "is not a valid C++/CMake/Python identifier"),
    (["modèle"], "is not a valid C++/CMake/Python identifier"),
    (["a'b"], "is not a valid C++/CMake/Python identifier"),
    (['a"b'], "is not a valid C++/CMake/Python identifier"),
    (["a;rm -rf ~"], "is not a valid C++/CMake/Python identifier"),
    (["$(id)"], "is not a valid C++/CMake/Python identifier"),
    (["`id`"], "is not a valid C++/CMake/Python identifier"),
    (["a/b"], "is not a valid C++/CMake/Python identifier"),
    (["../escape"], "is not a valid C++/CMake/Python identifier"),
    (["."], "is not a valid C++/CMake/Python identifier"),
    (["class"], "is a reserved word in C++, Python or CMake"),
    (["namespace"], "is a reserved word in C++, Python or CMake"),
    (["import"], "is a reserved word in C++, Python or CMake"),
    (["x" * 65], "is longer than 64 characters"),
    (["two\nlines"], "contains a newline or control character"),
    (["tab\tname"], "contains a newline or control character"),
    (["ok", "--slug", "My_Model"], "is not a valid C++/CMake/Python identifier"),
    (["ok", "--description", "line\nbreak"], "contains a newline or control character"),
    (["ok", "--model", ""], "is neither torchvision:<arch>, path/to/file.py:factory nor path/to/model.pt"),
    (["ok", "--model", "torchvision:"], "is not a torchvision model name"),
    (["ok", "--model", "torchvision:../x"], "is not a torchvision model name"),
    (["ok", "--model", "torchvision:resnet18; rm -rf /"], "is not a torchvision model name"),
    (["ok", "--model", "net.py:"], "is neither torchvision:<arch>, path/to/file.py:factory nor path/to/model.pt"),
    (["ok", "--model", "net.py:1abc"], "is neither torchvision:<arch>, path/to/file.py:factory nor path/to/model.pt"),
    (["ok", "--model", "missing.py:make"], "does not exist"),
    (["ok", "--input-shape", ""], "is not a comma-separated list of positive integers"),
    (["ok", "--input-shape", "0"], "is not a comma-separated list of positive integers"),
    (["ok", "--input-shape", "-1,3"], "is not a comma-separated list of positive integers"),
    (["ok", "--input-shape", "1.5"], "is not a comma-separated list of positive integers"),
    (["ok", "--input-shape", "a,b"], "is not a comma-separated list of positive integers"),
    (["ok", "--input-shape", "1;2"], "is not a comma-separated list of positive integers"),
    (["ok", "--input-shape", "1,1,1,1,1,1,1,1,1"], "has more than 8 dimensions"),
    (["ok", "--inputs", "x:1,3:complex64"], "'complex64' is not a dtype"),
    (["ok", "--inputs", "x:1,3:bool;y"], "'y' is not name:shape:dtype"),
    (["ok", "--top-k", "-1"], "not a whole number >= 0"),
    (["ok", "--top-k", "x"], "not a whole number >= 0"),
    (["ok", "--atol", "nan"], "not a finite number >= 0"),
    (["ok", "--atol", "1e999"], "not a finite number >= 0"),
    (["ok", "--rtol", "-1"], "not a finite number >= 0"),
    (["ok", "--seed", "-3"], "not a whole number >= 0"),
    (["ok", "--libtorch", "/opt/a\nb"], "contains a newline or control character"),
    (["ok", "--preprocess", "resize=100"], "resize=100 is not a whole number >= the crop 224x224"),
    (["ok", "--preprocess", "mean=0.5"], "mean=0.5 is not 3 comma-separated numbers"),
    (["ok", "--preprocess", "crop=224"], "'crop=224' is not one of resize, mean, std, interpolation =value"),
    (["ok", "--preprocess", "interpolation=area"], "interpolation=area is unknown"),
    (["ok", "--preprocess", "std=1,1,-1"], "std=1,1,-1 is not 3 comma-separated numbers > 0"),
    (["ok", "--labels", "names.json"], "is neither auto, none nor a .txt file"),
    (["ok", "--labels", "missing.txt"], "does not exist"),
]
# Only tsgen sees raw values: cookiecutter renders answers as Jinja before any hook runs.
TSGEN_ONLY = [
    (["{{ 7 * 7 }}"], "contains template syntax"),
    (["ok", "--description", "{% raw %}x"], "contains template syntax"),
    (["ok", "--description", "{{ cycler.__init__.__globals__.os.system('touch pwned') }}"], "contains template syntax"),
]
# Which cookiecutter key each flag sets, derived from cookiecutter.json as `tsgen new` derives its flags.
FLAG_TO_KEY = {
    flag: item.key
    for item in template.answers().questions()
    for flag in (item.flag, FLAG_ALIASES.get(item.name))
    if flag
}


def case_id(case: tuple[list[str], str]) -> str:
    return " ".join(case[0])[:30].replace("\n", "\\n").replace("\t", "\\t") or "empty"


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    """An output folder that already holds a file of the user's, to show that nothing is touched."""
    folder = tmp_path / "out dir"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    return folder


@pytest.mark.parametrize(("args", "why"), HOSTILE + TSGEN_ONLY, ids=map(case_id, HOSTILE + TSGEN_ONLY))
def test_tsgen_refuses_in_one_line_and_writes_nothing(args: list[str], why: str, output_dir: Path) -> None:
    """`tsgen new` with a hostile answer: exit 1, one line naming the flag or NAME, the output folder untouched."""
    before = tree(output_dir)
    result = CliRunner().invoke(cli, ["new", *args, "--no-build", "-o", str(output_dir)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1, result.output  # values are shown with repr(): a newline in one stays on the line
    assert lines[0].startswith("tsgen: error: ") and why in result.output
    assert tree(output_dir) == before
    assert not (output_dir.parent / "pwned").exists() and not Path("pwned").exists()


# "" and "." name the output folder itself, which cookiecutter refuses before any hook (tested below).
THROUGH_COOKIECUTTER = [case for case in HOSTILE if case[0] not in ([""], ["."])]


@pytest.mark.parametrize(("args", "why"), THROUGH_COOKIECUTTER, ids=map(case_id, THROUGH_COOKIECUTTER))
def test_cookiecutter_refuses_in_one_line_and_writes_nothing(
    args: list[str], why: str, output_dir: Path, clean_env: dict[str, str]
) -> None:
    """The same answers through `cookiecutter` (only cookiecutter installed): the pre_gen hook's one ERROR line,
    a non-zero exit, and the output folder exactly as it was."""
    answers = {"project_name": args[0], **{FLAG_TO_KEY[args[i]]: args[i + 1] for i in range(1, len(args), 2)}}
    before = tree(output_dir)
    cookiecutter = lane_python("cookiecutter").parent / "cookiecutter"
    pairs = [f"{key}={value}" for key, value in answers.items()]
    result = run([cookiecutter, REPO, "--no-input", "-o", output_dir, "first_build=no", *pairs], env=clean_env)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and why in errors[0], result.stderr
    assert tree(output_dir) == before


@pytest.mark.parametrize("name", ["", "."])
def test_cookiecutter_refuses_a_name_that_is_the_output_folder(
    name: str, output_dir: Path, clean_env: dict[str, str]
) -> None:
    """A name whose folder is the output folder itself: cookiecutter stops with its own one-line error."""
    cookiecutter = lane_python("cookiecutter").parent / "cookiecutter"
    result = run([cookiecutter, REPO, "--no-input", "-o", output_dir, f"project_name={name}"], env=clean_env)
    assert result.returncode == 1, result.stderr
    assert (result.stdout + result.stderr).strip().endswith("directory already exists")
    assert tree(output_dir) == {"keep.txt"}


def test_unusual_but_valid_answers_render(output_dir: Path) -> None:
    """Spaces in the name, unicode and quotes in the description, an output path with spaces: all fine."""
    description = "Modèle ☃ “quoted” 'single' \"double\" $HOME `x` ; # % \\ done"
    result = CliRunner().invoke(
        cli, ["new", "My Model v2", "--description", description, "--no-build", "-o", str(output_dir / "a b")]
    )
    assert result.exit_code == 0, result.output
    project = output_dir / "a b" / "my_model_v2"
    assert description in (project / "README.md").read_text(encoding="utf-8")
    assert json.loads((project / ".cookiecutter.json").read_text())["cookiecutter"]["_description"] == description


def test_an_interrupted_generation_removes_only_what_it_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the project moves into place: the staging folder and the --output-dir folders this run made
    are gone; an existing folder keeps exactly its own files."""

    def interrupted(rendered: Path, destination: Path) -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(new_module, "_move_into_place", interrupted)
    result = CliRunner().invoke(cli, ["new", "demo", "--no-build", "-o", str(tmp_path / "made" / "by" / "us")])
    assert result.exit_code == 130 and "interrupted" in result.output
    assert list(tmp_path.iterdir()) == []

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["new", "demo", "--no-build", "-o", str(existing)])
    assert result.exit_code == 130
    assert tree(existing) == {"keep.txt"}


def test_force_keeps_other_files_and_names_the_replaced_ones(tmp_path: Path) -> None:
    """--force into an existing project: the user's own files stay, changed template files are replaced and
    listed, identical ones keep their timestamps (so make redoes nothing for them)."""
    runner = CliRunner()
    assert runner.invoke(cli, ["new", "demo", "--no-build", "-o", str(tmp_path)]).exit_code == 0
    project = tmp_path / "demo"
    (project / "notes.md").write_text("mine")
    (project / "Makefile").write_text((project / "Makefile").read_text() + "# my edit\n")
    os.utime(project / "export.py", (1_000_000, 1_000_000))

    refused = runner.invoke(cli, ["new", "demo", "--no-build", "-o", str(tmp_path)])
    assert refused.exit_code == 1 and "already exists" in refused.output

    result = runner.invoke(cli, ["new", "demo", "--no-build", "--force", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "--force: replaced 1 changed template files (Makefile)" in result.output
    assert (project / "notes.md").read_text() == "mine"
    assert "# my edit" not in (project / "Makefile").read_text()
    assert (project / "export.py").stat().st_mtime == 1_000_000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_every_answer_is_a_parameter_of_new_derived_from_cookiecutter_json() -> None:
    """The answers are defined once: each is `tsgen new`'s NAME or a flag named after it, with the template's
    choices and its prompt as help; `new` has no answer parameter cookiecutter.json does not define."""
    questions = template.answers().questions()
    parameters = {parameter.name: parameter for parameter in cli.commands["new"].params}
    own = {"output_dir", "force", "no_git"}
    assert set(parameters) - own == {item.name for item in questions}
    for item in questions:
        parameter = parameters[item.name]
        if item.first:
            assert parameter.human_readable_name == "NAME"
            continue
        assert item.flag in parameter.opts and item.help in str(parameter.help), item.name
        choices = getattr(parameter.type, "choices", None)
        assert (list(choices) if choices else None) == item.choices, item.name
