"""The hooks, tested as code: rendered with cookiecutter's own Jinja environment, then imported and called."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from cookiecutter.environment import StrictEnvironment

from tests.conftest import REPO
from tests.unit.test_answers import defaults


def render_hook(name: str, context: dict[str, object], folder: Path) -> Path:
    """Render hooks/<name>.py exactly as cookiecutter does before running it."""
    env = StrictEnvironment(context={"cookiecutter": context})
    source = (REPO / "hooks" / f"{name}.py").read_text(encoding="utf-8")
    path = folder / f"{name}.py"
    path.write_text(env.from_string(source).render(cookiecutter=context), encoding="utf-8")
    return path


def import_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem + "_rendered", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def context(**overrides: object) -> dict[str, object]:
    return {**defaults(**overrides), "_repo_dir": str(REPO), "_output_dir": "/tmp"}


HOSTILE = [
    'x"""; import os; os.system("touch /tmp/pwned") #',
    "{{ 7 * 7 }} {% raw %}",
    "'; DROP TABLE; \\",
    "$(touch pwned) `touch pwned`",
    'ünïcødé ☃ "quoted"',
]


@pytest.mark.parametrize("value", HOSTILE)
def test_answers_reach_the_hook_as_data_never_as_code(value: str, tmp_path: Path) -> None:
    """tojson inside a raw string: any description comes back byte for byte and nothing runs."""
    rendered = render_hook("pre_gen_project", context(description=value), tmp_path)
    module = import_file(rendered)
    assert json.loads(module.CONTEXT_JSON)["description"] == value
    assert not (tmp_path / "pwned").exists() and not Path("/tmp/pwned").exists()


def test_pre_gen_accepts_defaults_and_refuses_a_bad_answer_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() returns 0 on good answers; on a bad one it prints ERROR: <answer>=<value>: <why>; <fix> and returns 1."""
    module = import_file(render_hook("pre_gen_project", context(), tmp_path))
    assert module.main(json.loads(module.CONTEXT_JSON)) == 0
    assert module.main(context(input_shape="1,0")) == 1
    err = capsys.readouterr().err
    assert (
        err == "ERROR: input_shape='1,0': is not a comma-separated list of positive integers; give e.g. 1,3,224,224\n"
    )


def test_pre_gen_runs_as_a_script_with_only_the_standard_library(tmp_path: Path) -> None:
    """Run as cookiecutter runs it (a separate interpreter, -I: no site-packages): exit 1 and the one line."""
    rendered = render_hook("pre_gen_project", context(export_method="compile"), tmp_path)
    result = subprocess.run([sys.executable, "-I", "-S", str(rendered)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "ERROR: export_method='compile': is not an export method; use one of: script, trace, auto"
    )


def test_post_gen_keeps_the_project_and_says_what_next_when_nothing_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No torch anywhere: the hook still exits 0 (cookiecutter would delete the project otherwise), records
    local.mk, and its last line says how to continue."""
    project = tmp_path / "proj"
    project.mkdir()  # the hook finds discovery in the runtime beside the template, not in the project
    for variable in ("Torch_DIR", "LIBTORCH", "CMAKE_PREFIX_PATH"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.chdir(project)
    module = import_file(render_hook("post_gen_project", context(python="/nonexistent/python"), tmp_path))
    assert module.main(json.loads(module.CONTEXT_JSON)) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        out[-1]
        == f"==> Project kept. Next: install torch or pass the libtorch folder, then: cd {project} && make verify LIBTORCH=/path/to/libtorch"
    )
    assert any(line.startswith("    looked at environment variable Torch_DIR") for line in out)
    assert "PYTHON := /nonexistent/python" in (project / "local.mk").read_text()


@pytest.mark.parametrize(("value", "quoted"), [("/opt/lib torch", "/opt/lib torch"), ("/a$b#c", "/a$$b\\#c")])
def test_local_mk_values_read_back_verbatim_in_make(value: str, quoted: str, tmp_path: Path) -> None:
    """Paths with spaces, $ and # survive make's parsing of local.mk."""
    module = import_file(render_hook("post_gen_project", context(), tmp_path))
    assert module.make_quote(value) == quoted
    module.write_local_mk(tmp_path, value, "cmake", value, "test")
    (tmp_path / "Makefile").write_text("include local.mk\nshow:\n\t@echo '$(PYTHON)|$(LIBTORCH)'\n")
    result = subprocess.run(["make", "-s", "show"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"{value}|{value}"


def test_cookiecutter_json_prompts_every_variable() -> None:
    """Every answer has a readable prompt (its help in `tsgen new` too); keys without one are cookiecutter
    settings. The interactive door asks at most 8 questions; the other answers are private (a leading _)."""
    data = json.loads((REPO / "cookiecutter.json").read_text())
    asked = {key for key in data if not key.startswith("_")}
    prompted = set(data["__prompts__"])
    assert asked <= prompted and prompted <= set(data)
    assert {key for key in data if key.startswith("_") and key not in prompted} == {
        "__prompts__",
        "_copy_without_render",
    }
    assert 1 <= len(asked) <= 8, sorted(asked)
