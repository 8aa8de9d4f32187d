"""`tsgen update` to the end: after the scenario's update (tests/updating.py) and its one conflict resolved, the
project exports, builds and passes `make verify`, through both front doors. A small user model keeps it quick."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import updating
from tests.conftest import lane_python, run, tsgen
from tests.updating import GIT, RENAMED, RENAMED_FILE
from tests.with_build.conftest import TINY_NET, make

pytestmark = pytest.mark.e2e
SMALL = ["--model", "net.py:make_net", "--input-shape", "2,3,32,32"]


def resolve_keeping_the_users_line(project: Path) -> None:
    """The README conflict resolved the user's way, and the cherry-pick continued: one update commit."""
    for command in (
        ["checkout", "--ours", "README.md"],
        ["add", "README.md"],
        ["-c", "core.editor=true", "cherry-pick", "--continue"],
    ):
        assert run([*GIT, *command], cwd=project).returncode == 0, command
    assert run(["git", "status", "--porcelain"], cwd=project).stdout == ""
    assert updating.USER_WORDING in (project / "README.md").read_text()


def verified(project: Path) -> None:
    result = make(project, "verify")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "verify: PASS" in result.stdout


def test_a_tsgen_new_project_verifies_after_its_update(tmp_path: Path, newer_template: Path) -> None:
    (tmp_path / "net.py").write_text(TINY_NET)
    assert tsgen("new", "demo", *SMALL, "--no-build", "-o", "out", cwd=tmp_path).returncode == 0
    project = tmp_path / "out" / "demo"
    updating.edit_like_a_user(project, RENAMED_FILE)
    update = tsgen("update", project, "--template", newer_template)
    assert update.returncode == 1 and "conflict   README.md" in update.stdout, update.stdout + update.stderr
    resolve_keeping_the_users_line(project)
    updating.assert_edits_kept(project, RENAMED[False])
    verified(project)


def test_a_cookiecutter_project_verifies_after_its_update(
    tmp_path: Path, older_template_url: tuple[str, str], cookiecutter_only: Path
) -> None:
    url, commit = older_template_url
    (tmp_path / "net.py").write_text(TINY_NET)
    answers = [f"model={tmp_path / 'net.py'}:make_net", "input_shape=2,3,32,32", f"_python={lane_python('default')}"]
    made = run(
        [
            cookiecutter_only,
            "--no-input",
            url,
            "--checkout",
            commit,
            "-o",
            tmp_path,
            "project_name=demo",
            "first_build=no",
            *answers,
        ]
    )
    assert made.returncode == 0, made.stderr
    project = tmp_path / "demo"
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    updating.commit_all(project, "Generated")
    updating.edit_like_a_user(project, RENAMED[True])
    update = tsgen("update", project)
    assert update.returncode == 1 and "new answer description = ''" in update.stdout, update.stdout + update.stderr
    resolve_keeping_the_users_line(project)
    updating.assert_edits_kept(project, RENAMED_FILE)
    verified(project)


def test_a_project_of_the_previous_layout_verifies_after_the_update(tmp_path: Path) -> None:
    """A project of the template that pasted the runtime into it (user model, an edited deploy.json), updated to
    today's layout, passes make verify with the installed runtime."""
    previous = updating.previous_layout(tmp_path / "previous")
    (tmp_path / "net.py").write_text(TINY_NET)
    cookiecutter = Path(sys.executable).parent / "cookiecutter"
    answers = [
        "first_build=no",
        f"model={tmp_path / 'net.py'}:make_net",
        "input_shape=1,3,16,16",
        "project_name=old-layout",
    ]
    made = run([cookiecutter, previous, "--no-input", "-o", tmp_path / "out", *answers], cwd=tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    project = tmp_path / "out" / "old_layout"
    subprocess.run([*GIT, "init", "-q"], cwd=project, check=True)
    updating.commit_all(project, "Generated")
    config = json.loads((project / "deploy.json").read_text())
    (project / "deploy.json").write_text(json.dumps({**config, "seed": 3}, indent=2) + "\n")
    updating.commit_all(project, "My seed")
    update = tsgen("update", project)
    assert update.returncode == 0, update.stdout + update.stderr
    assert not (project / "torch_deploy.py").exists() and not (project / "cmake").exists()
    verify = make(project, "verify")
    assert verify.returncode == 0, verify.stdout
    assert "TorchDeploy: runtime " in verify.stdout and verify.stdout.splitlines()[-1].startswith("verify: PASS")
    assert json.loads((project / "deploy.json").read_text())["seed"] == 3
