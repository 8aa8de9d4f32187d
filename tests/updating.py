"""Two versions of the template and a user's edits, shared by the update tests of the unit and build tiers.

``template_version(folder, older=...)`` writes a copy of this checkout's template changed the way template versions
change: a file renamed (CMakeLists.txt follows), the Makefile changed, a file added or removed, a README line reworded, an answer added or
dropped. ``older=True`` makes the version before this one (its change to this one: src/infer.cpp renamed to
src/ts-infer.cpp, NOTES.md removed, the description answer new); ``older=False`` the version after it
(src/ts-infer.cpp renamed to src/ts_infer.cpp, .dockerignore removed, a licence answer new).
``edit_like_a_user`` then makes the four edits of the update scenario and commits them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROJECT_TEMPLATE = REPO / "{{cookiecutter.project_slug}}"

# The README line both the template and the user reword: the one conflict of the scenario.
README_LINE = (
    "`make verify` checks that the Python has those packages, exports the model, builds the C++ runtime library and the"
)
TEMPLATE_WORDING = {
    True: "`make verify` (older wording) checks the packages, exports the model, builds the C++ runtime library and the",
    False: "`make verify` (newer wording) checks the packages, exports the model, builds the C++ runtime library and the",
}
USER_WORDING = (
    "`make verify` (my wording) checks the packages, exports the model, builds the C++ runtime library and the"
)
MAKEFILE_LINE = "#   make clean    remove build/, bench/, dist/ and the artifacts (and .artifacts/, a killed export's)"
RENAMED_FILE = "src/ts-infer.cpp"
RENAMED = {True: "src/infer.cpp", False: "src/ts_infer.cpp"}
USER_LINE = "a line of the user's"  # a comment: "# ..." in Python, "// ..." in C++
USER_TARGET = "\nhello:  # a target of the user's\n\t@echo hello\n"
GIT = ["git", "-c", "user.name=tsgen-tests", "-c", "user.email=tests@tsgen.invalid"]


def template_version(folder: Path, older: bool) -> Path:
    """A copy of the template, one version older or newer than this checkout's (see the module's docstring)."""
    folder.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", ".ruff_cache")
    shutil.copy2(REPO / "cookiecutter.json", folder / "cookiecutter.json")
    shutil.copytree(REPO / "hooks", folder / "hooks", ignore=ignore)
    project = folder / PROJECT_TEMPLATE.name
    shutil.copytree(PROJECT_TEMPLATE, project, ignore=ignore)
    shutil.copytree(REPO / "runtime" / "torch_deploy", folder / "runtime" / "torch_deploy", ignore=ignore)
    shutil.copytree(REPO / "templates", folder / "templates", ignore=ignore)

    readme = project / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert README_LINE in text
    readme.write_text(text.replace(README_LINE, TEMPLATE_WORDING[older]).replace(RENAMED_FILE, RENAMED[older]))
    (project / RENAMED_FILE).rename(project / RENAMED[older])
    cmake = project / "CMakeLists.txt"
    cmake.write_text(cmake.read_text(encoding="utf-8").replace(RENAMED_FILE, RENAMED[older]), encoding="utf-8")
    makefile = project / "Makefile"  # changed at its top, the user's edit at its end
    text = makefile.read_text(encoding="utf-8")
    makefile.write_text(text.replace(MAKEFILE_LINE, f"{MAKEFILE_LINE} ({'older' if older else 'newer'} template)"))

    context = json.loads((folder / "cookiecutter.json").read_text(encoding="utf-8"))
    if older:
        (project / "NOTES.md").write_text("Notes of an older template version.\n", encoding="utf-8")
        # Before the description answer, the README said what its default says now.
        del context["_description"], context["__prompts__"]["_description"]
        text = readme.read_text(encoding="utf-8")
        readme.write_text(text.replace("cookiecutter._description or ", ""), encoding="utf-8")
    else:
        (project / ".dockerignore").unlink()
        keys = list(context)
        at = keys.index("__prompts__")
        context = {**dict(list(context.items())[:at]), "_licence": "BSD-3-Clause", **dict(list(context.items())[at:])}
        context["__prompts__"]["_licence"] = "Licence of the generated code"
    (folder / "cookiecutter.json").write_text(json.dumps(context, indent=2) + "\n", encoding="utf-8")
    return folder


def previous_layout(folder: Path) -> Path:
    """A clone of this repository at the commit before the runtime moved into runtime/: the template that pasted the
    runtime (torch_deploy.py, cmake/, include/, src/torch_deploy/, ...) into every project."""
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(REPO), str(folder)], check=True)
    pasted = f"{PROJECT_TEMPLATE.name}/torch_deploy.py"
    log = ["git", "log", "--format=%H", "-1", "--diff-filter=DR", "--", pasted]
    moved = subprocess.run(log, cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["git", "checkout", "-q", f"{moved}^"], cwd=folder, check=True)
    return folder


def commit_all(folder: Path, message: str) -> str:
    """``git add -A && git commit`` in ``folder``; returns the commit."""
    subprocess.run([*GIT, "add", "-A"], cwd=folder, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", message], cwd=folder, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True).stdout.strip()


def comment(name: str) -> str:
    """USER_LINE as a comment of the file's language."""
    return f"{'//' if name.endswith('.cpp') else '#'} {USER_LINE}\n"


def edit_like_a_user(project: Path, renamed_file: str) -> None:
    """The scenario's four edits, committed: the README line the template rewords too (a conflict), a Makefile
    target (a file the template changes elsewhere), a line in the runner's source (which the template renames) and
    one in export.py (which it leaves alone)."""
    readme = project / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace(_current_line(readme), USER_WORDING))
    with (project / "Makefile").open("a", encoding="utf-8") as makefile:
        makefile.write(USER_TARGET)
    for name in (renamed_file, "export.py"):
        with (project / name).open("a", encoding="utf-8") as script:
            script.write(comment(name))
    commit_all(project, "My edits")


def _current_line(readme: Path) -> str:
    text = readme.read_text(encoding="utf-8")
    return next(line for line in (README_LINE, *TEMPLATE_WORDING.values()) if line in text)


def assert_edits_kept(project: Path, renamed_file: str) -> None:
    """Every user edit but the conflicted one is in the updated project, the runner's under its new name."""
    assert (project / "Makefile").read_text(encoding="utf-8").endswith(USER_TARGET)
    for name in (renamed_file, "export.py"):
        assert (project / name).read_text(encoding="utf-8").endswith(comment(name)), name


def git_state(project: Path) -> tuple[str, ...]:
    """What a refused update must leave as it was: HEAD, every ref, the status, and each file's bytes."""

    def out(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=project, capture_output=True, text=True).stdout

    files = sorted(path for path in project.rglob("*") if path.is_file() and ".git" not in path.parts)
    contents = "".join(f"{path}\n{path.read_bytes()!r}\n" for path in files)
    return out("rev-parse", "HEAD"), out("show-ref"), out("status", "--porcelain"), contents
