"""`tsgen update` to the end: after the scenario's update (tests/updating.py) and its one conflict resolved, the
project exports, builds and passes `make verify`, through both front doors. A small user model keeps it quick."""

from __future__ import annotations

import subprocess
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
