"""Git as tsgen uses it: a new project's first commit, and the branch that keeps the template's pristine renders.

``tsgen new`` commits the project it made on the user's branch and points ``tsgen-template`` at the same commit:
that commit is the template's render, untouched. ``tsgen update`` adds the newer template's render on top of it, so
the branch is the history of the template as this project saw it, and each update is a three-way merge of its
last step (see update.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tsgen.errors import TsgenError, last_line

TEMPLATE_BRANCH = "tsgen-template"
# Only for a user without a git identity: tsgen's commits must not fail for want of one.
FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "tsgen",
    "GIT_AUTHOR_EMAIL": "tsgen@localhost",
    "GIT_COMMITTER_NAME": "tsgen",
    "GIT_COMMITTER_EMAIL": "tsgen@localhost",
}


def available() -> bool:
    return shutil.which("git") is not None


def git(
    args: Sequence[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run git in ``cwd``; with ``check``, a failure is one line naming the command and git's last words."""
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        said = last_line(result.stderr + result.stdout) or "no message"
        raise TsgenError(f"git {' '.join(args[:2])} failed in {cwd}: {said}")
    return result


def top_level(folder: Path) -> Path | None:
    """The top of the git work tree holding ``folder``, or None when it is in none."""
    if not available():
        return None
    result = git(["rev-parse", "--show-toplevel"], folder, check=False)
    return Path(result.stdout.strip()).resolve() if result.returncode == 0 else None


def ignored(path: Path) -> bool:
    """Whether the repository around ``path`` ignores it (a project generated into a git-ignored folder)."""
    return git(["check-ignore", "-q", path.name], path.parent, check=False).returncode == 0


def identity(repo: Path) -> dict[str, str]:
    """Environment for commits: empty when the user has a git identity, else tsgen's."""
    configured = all(
        git(["config", "--get", key], repo, check=False).stdout.strip() for key in ("user.name", "user.email")
    )
    return {} if configured else FALLBACK_IDENTITY


def tree_of(folder: Path, repo: Path) -> str:
    """The git tree of ``folder`` as ``git add -A`` there would stage it (its .gitignore applies), written into
    ``repo``'s object store through a private index: the user's index and work tree are not touched."""
    git_dir = git(["rev-parse", "--absolute-git-dir"], repo).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="tsgen-index-") as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index"), "GIT_DIR": git_dir, "GIT_WORK_TREE": str(folder)}
        git(["add", "-A", "--", "."], folder, env)
        return git(["write-tree"], folder, env).stdout.strip()


def graft(repo: Path, base_tree: str, prefix: str, subtree: str) -> str:
    """``base_tree`` with the folder ``prefix`` replaced by ``subtree`` (a project inside a larger repository)."""
    if not prefix:
        return subtree
    with tempfile.TemporaryDirectory(prefix="tsgen-index-") as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        git(["read-tree", base_tree], repo, env)
        git(["rm", "-r", "-q", "-f", "--cached", "--ignore-unmatch", "--", prefix], repo, env)
        git(["read-tree", f"--prefix={prefix}/", subtree], repo, env)
        return git(["write-tree"], repo, env).stdout.strip()


def commit_tree(repo: Path, tree: str, parents: Sequence[str], message: str) -> str:
    parent_args = [part for parent in parents for part in ("-p", parent)]
    return git(["commit-tree", tree, *parent_args, "-m", message], repo, identity(repo)).stdout.strip()


def init_project(project: Path, message: str) -> str:
    """Make ``project`` a git repository whose first commit is the project as generated, also the start of the
    template branch. Returns the commit."""
    git(["init", "-q"], project)
    git(["add", "-A"], project)
    git(["commit", "-q", "--no-verify", "-m", message], project, identity(project))
    git(["branch", TEMPLATE_BRANCH], project)
    return git(["rev-parse", "HEAD"], project).stdout.strip()
