"""``tsgen update``: a newer template into a generated project, as a three-way merge in the project's git repository.

The merge needs three trees: the template version that made the project, rendered (the base), the newer template
rendered with the same answers, and the user's project. The base comes from the ``tsgen-template`` branch that
``tsgen new`` starts (every update adds its render there), else from the template source the project's record names
(a git URL or checkout, at the recorded commit), rendered again and checked against the recorded fingerprint.

The newer render is committed on the template branch with the base as parent, and cherry-picked onto the user's
branch: git's own merge (renames followed, a file the template removed but the user changed is a conflict) applies
the template's change and nothing else, and a conflict is an ordinary cherry-pick conflict that ``git status``,
any merge tool, ``git cherry-pick --continue`` and ``--abort`` understand.

The one exception is the runtime a project carries (``tsgen new --vendor``: third_party/torch_deploy/): it is not the
user's, so it is never merged but replaced whole by the newer render's copy (or removed with it).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cookiecutter.config import BUILTIN_ABBREVIATIONS
from cookiecutter.repository import expand_abbreviations, is_repo_url

from tsgen import gitrepo, template
from tsgen.errors import TsgenError, last_line
from tsgen.gitrepo import TEMPLATE_BRANCH, git

# What a paused merge, cherry-pick, revert or rebase leaves in the git folder, and how to back out of it.
IN_PROGRESS = {
    "MERGE_HEAD": ("a merge", "git merge --abort"),
    "CHERRY_PICK_HEAD": ("a cherry-pick", "git cherry-pick --abort"),
    "REVERT_HEAD": ("a revert", "git revert --abort"),
    "rebase-merge": ("a rebase", "git rebase --abort"),
    "rebase-apply": ("a rebase or git am", "git rebase --abort"),
}
LOOKED_BACK = 500  # template renders searched on the template branch for the project's base


@dataclass
class Template:
    """A template version at hand: its folder, the source the user named, and its fingerprint."""

    folder: Path
    source: str
    digest: str


@dataclass
class Report:
    """What an update did, for the lines ``tsgen update`` prints."""

    old: str
    new: str
    up_to_date: bool = False
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)  # changed by the template and by the user
    conflicts: list[str] = field(default_factory=list)
    new_answers: dict[str, object] = field(default_factory=dict)
    dropped_answers: dict[str, object] = field(default_factory=dict)
    commit: str = ""
    before: str = ""


def read_record(project: Path) -> dict[str, Any]:
    record = template.answers().read_record(project)
    if record is None:
        raise TsgenError(
            f"{project} does not come from tsgen's template: it has no {template.answers().RECORD_FILE} with a "
            "tsgen record; tsgen update works on projects made by tsgen new or by cookiecutter from tsgen's template"
        )
    return dict(record)


def fetch_template(source: str | None, scratch: Path) -> Template:
    """The newer template: tsgen's own, a local folder, or a git URL (cloned into ``scratch``)."""
    digest = template.answers().template_digest
    if source is None:
        folder = template.find_template_dir()
        return Template(folder, str(folder), digest(folder))
    url = expand_abbreviations(source, BUILTIN_ABBREVIATIONS)
    if is_repo_url(url):
        folder = clone(url, None, scratch / "new-template", f"--template {source}")
    else:
        folder = Path(source).expanduser().resolve()
    if not ((folder / "cookiecutter.json").is_file() and (folder / "hooks" / "answers.py").is_file()):
        raise TsgenError(
            f"--template {source!r} is not tsgen's template (no cookiecutter.json and hooks/answers.py there); "
            "give a tsgen checkout or its git URL"
        )
    return Template(folder, source if is_repo_url(url) else str(folder), digest(folder))


def clone(url: str, commit: str | None, destination: Path, what: str) -> Path:
    """``git clone`` (cookiecutter's ``git+`` prefix dropped), at ``commit`` when given."""
    plain = url.removeprefix("git+")
    result = git(["clone", "-q", "--no-checkout", plain, str(destination)], destination.parent, check=False)
    if result.returncode != 0:
        raise TsgenError(f"{what}: git clone {plain} failed: {last_line(result.stderr) or 'no message'}")
    checkout = git(["checkout", "-q", commit or "HEAD"], destination, check=False)
    if checkout.returncode != 0:
        raise TsgenError(f"{what}: {plain} has no commit {commit}; give the repository that made the project")
    return destination


def check(project: Path, source: str | None) -> tuple[bool, str]:
    """``tsgen update --check``: (up to date?, the line saying so). Needs no git."""
    record = read_record(project)
    label = template.answers().template_label
    with tempfile.TemporaryDirectory(prefix="tsgen-update-") as scratch:
        newer = fetch_template(source, Path(scratch))
        info = record["tsgen"]
        if info["digest"] == newer.digest:
            return True, f"{project.name} is up to date with its template, {label(info)}"
        current = label(template_record(newer))
        return False, f"{project.name} was made by {label(info)}; the template is now {current}: run tsgen update"


def template_record(newer: Template) -> dict[str, object]:
    answers = template.answers()
    return {
        "version": answers.template_version(newer.folder),
        "commit": answers.template_commit(newer.folder),
        "digest": newer.digest,
    }


def refuse_unless_ready(project: Path) -> tuple[Path, str]:
    """Before anything is written: a git repository, with a commit, nothing paused, nothing uncommitted.
    Returns the repository's top and HEAD."""
    top = gitrepo.top_level(project)
    if top is None:
        raise TsgenError(
            f"{project} is not in a git repository, and tsgen update merges in git: "
            f"cd {project} && git init && git add -A && git commit -m 'My project', then run tsgen update again"
        )
    head = git(["rev-parse", "--verify", "-q", "HEAD"], top, check=False).stdout.strip()
    if not head:
        raise TsgenError(f"{top} has no commit yet: commit the project (git add -A && git commit), then update")
    git_dir = Path(git(["rev-parse", "--absolute-git-dir"], top).stdout.strip())
    for marker, (what, abort) in IN_PROGRESS.items():
        if (git_dir / marker).exists():
            raise TsgenError(
                f"{what} is in progress in {top}: finish it, or back out with {abort}, then run tsgen update again"
            )
    status = git(["status", "--porcelain", "-z", "--untracked-files=all"], top).stdout
    dirty = [entry[3:] for entry in status.split("\0") if len(entry) > 3]
    if dirty:
        shown = ", ".join(dirty[:3]) + (f" and {len(dirty) - 3} more" if len(dirty) > 3 else "")
        raise TsgenError(
            f"{top} has uncommitted or untracked changes ({shown}): commit them, or set them aside with "
            "git stash --include-untracked, then run tsgen update again"
        )
    return top, head


def render_answers(recorded: dict[str, object], folder: Path, project: Path) -> dict[str, object]:
    """The recorded answers as extra_context for the template at ``folder`` (by that template's keys), with the
    user's files taken from the project's models/ copies where the originals are gone, and no first build."""
    answers = template.answers()
    by_name = {key.lstrip("_"): value for key, value in recorded.items()}
    for name in ("model", "weights", "labels"):
        value = str(by_name.get(name, ""))
        original = _file_part(name, value)
        if original and not Path(original).is_file():
            by_name[name] = value.replace(original, str(project / answers.in_models(original)), 1)
    by_name["first_build"] = False
    return {item.key: by_name[item.name] for item in answers.questions(folder) if item.name in by_name}


def _file_part(name: str, value: str) -> str:
    """The file path inside a model, weights or labels answer ('' when it names no file)."""
    answers = template.answers()
    if name == "model":
        if value.startswith("torchvision:") or not value:
            return ""
        return value if value.endswith(".pt") else value.rpartition(":")[0]
    if name == "weights":
        return value if answers.is_weights_file(value) else ""
    return value.strip() if answers.is_labels_file(value.strip()) else ""


def render(source: Template, answers: dict[str, object], output: Path) -> Path:
    """cookiecutter renders ``source`` with ``answers`` into ``output``; its hooks only write files (no libtorch
    lookup, no build), and neither the user's cookiecutter config nor its replay folder is read or written."""
    config = {"cookiecutters_dir": str(output / ".clones"), "replay_dir": str(output / ".replay")}
    variables = {"TSGEN_RENDER_ONLY": "1", "TSGEN_TEMPLATE_SOURCE": source.source}
    failure = f"rendering {source.source} failed"
    return template.render(source.folder, answers, output, variables, failure, default_config=config)


def find_base(top: Path, prefix: str, digest: str) -> str | None:
    """The commit on the template branch whose render carries ``digest``: the project's base."""
    branch = git(["rev-parse", "--verify", "-q", f"refs/heads/{TEMPLATE_BRANCH}"], top, check=False).stdout.strip()
    if not branch:
        return None
    record_file = template.answers().RECORD_FILE
    record_path = f"{prefix}/{record_file}" if prefix else record_file
    for commit in git(["rev-list", f"--max-count={LOOKED_BACK}", branch], top).stdout.split():
        shown = git(["show", f"{commit}:{record_path}"], top, check=False)
        try:
            if shown.returncode == 0 and json.loads(shown.stdout)["tsgen"]["digest"] == digest:
                return commit
        except (ValueError, KeyError, TypeError):
            continue
    return None


def old_template(info: dict[str, Any], scratch: Path, project: Path) -> Template:
    """The template version that made the project, from the source and commit its record names."""
    source, commit = str(info.get("template") or ""), info.get("commit")
    url = expand_abbreviations(source, BUILTIN_ABBREVIATIONS)
    local = Path(source).expanduser()
    if commit and (is_repo_url(url) or local.is_dir()):
        folder = clone(url if is_repo_url(url) else str(local), str(commit), scratch / "old-template", "the template")
        return Template(folder, source, info["digest"])
    if source and local.is_dir() and template.answers().template_digest(local) == info["digest"]:
        return Template(local, source, info["digest"])
    raise TsgenError(
        f"cannot find the template that made {project} ({template.answers().template_label(info)}): no "
        f"{TEMPLATE_BRANCH} branch holds its render and {source or 'its source'} is no git checkout of it; "
        "tsgen new keeps that render in the repository it makes (see tsgen's docs, Updating a project)"
    )


def update(project: Path, source: str | None) -> Report:
    """Merge the newer template into ``project``; raises TsgenError, before writing anything, when it cannot."""
    project = project.resolve()
    record = read_record(project)
    info = record["tsgen"]
    answers = template.answers()
    top, head = refuse_unless_ready(project)
    prefix = "" if project == top else project.relative_to(top).as_posix()
    with tempfile.TemporaryDirectory(prefix="tsgen-update-") as folder:
        scratch = Path(folder)
        newer = fetch_template(source, scratch)
        report = Report(old=answers.template_label(info), new=answers.template_label(template_record(newer)))
        report.before = head
        if info["digest"] == newer.digest:
            report.up_to_date = True
            return report
        recorded = record["cookiecutter"]
        recorded_names = {key.lstrip("_") for key in recorded}
        newer_questions = answers.questions(newer.folder)
        report.new_answers = {
            item.name: item.default_value for item in newer_questions if item.name not in recorded_names
        }
        known = {item.name for item in newer_questions}
        report.dropped_answers = {
            key.lstrip("_"): value for key, value in recorded.items() if key.lstrip("_") not in known
        }

        base = find_base(top, prefix, info["digest"])
        if base is None:
            older = old_template(info, scratch, project)
            rendered = render(older, render_answers(recorded, older.folder, project), scratch / "old")
            made = answers.read_record(rendered)
            if made is None or made["tsgen"]["digest"] != info["digest"]:
                raise TsgenError(
                    f"the template at {older.source} (commit {str(info.get('commit'))[:8]}) is not the one that made "
                    f"{project}: its fingerprint differs (was the template changed without a commit?)"
                )
            tree = gitrepo.graft(top, f"{head}^{{tree}}", prefix, gitrepo.tree_of(rendered, top))
            base = gitrepo.commit_tree(top, tree, [], f"Render of {report.old} (for tsgen update)")
        rendered = render(newer, render_answers(recorded, newer.folder, project), scratch / "new")
        tree = gitrepo.graft(top, f"{base}^{{tree}}", prefix, gitrepo.tree_of(rendered, top))
        message = f"tsgen update: {report.old} -> {report.new}\n\nThe template's change, merged by tsgen update."
        newer_commit = gitrepo.commit_tree(top, tree, [base], message)
        _describe(report, top, prefix, base, newer_commit, head)
        git(["update-ref", f"refs/heads/{TEMPLATE_BRANCH}", newer_commit], top)
        picked = git(["cherry-pick", "--keep-redundant-commits", newer_commit], top, gitrepo.identity(top), check=False)
        git_dir = Path(git(["rev-parse", "--absolute-git-dir"], top).stdout.strip())
        if picked.returncode != 0 and not (git_dir / "CHERRY_PICK_HEAD").exists():
            said = last_line(picked.stderr + picked.stdout) or "no message"
            raise TsgenError(f"git cherry-pick failed in {top}: {said}")
        _replace_vendored_runtime(top, prefix, newer_commit)
        unmerged = git(["diff", "--name-only", "-z", "--diff-filter=U"], top).stdout
        report.conflicts = [_inside(path, prefix) for path in unmerged.split("\0") if path]
        if not report.conflicts:
            report.commit = git(["rev-parse", "HEAD"], top).stdout.strip()
        return report


def _replace_vendored_runtime(top: Path, prefix: str, newer: str) -> None:
    """third_party/torch_deploy/ as the newer render has it, whole (after the cherry-pick, before any conflict is
    listed): a vendored runtime is replaced, never merged; edits made to it are not kept."""
    vendored = template.answers().VENDORED_RUNTIME.as_posix()
    path = f"{prefix}/{vendored}" if prefix else vendored
    listed = git(["ls-tree", "-r", "--name-only", newer, "--", path], top).stdout.strip()
    present = git(["ls-files", "--", path], top).stdout.strip()
    if not listed and not present:
        return
    git(["rm", "-r", "-q", "-f", "--ignore-unmatch", "--", path], top)
    if listed:
        git(["checkout", newer, "--", path], top)
    if not (Path(git(["rev-parse", "--absolute-git-dir"], top).stdout.strip()) / "CHERRY_PICK_HEAD").exists():
        changed = git(["diff", "--cached", "--quiet"], top, check=False).returncode != 0
        if changed:  # the cherry-pick was committed: the replaced runtime joins that commit
            git(["commit", "-q", "--amend", "--no-edit"], top, gitrepo.identity(top))


def _inside(path: str, prefix: str) -> str:
    return path[len(prefix) + 1 :] if prefix and path.startswith(prefix + "/") else path


def _describe(report: Report, top: Path, prefix: str, base: str, newer: str, head: str) -> None:
    """The template's change (base -> newer) file by file, and which of its files the user had changed too."""
    where = ["--", prefix] if prefix else []
    changes = iter(git(["diff", "--name-status", "-z", "-M", base, newer, *where], top).stdout.split("\0"))
    mine = set(git(["diff", "--name-only", "-z", "-M", base, head, *where], top).stdout.split("\0")) - {""}
    for status in changes:
        if not status:
            continue
        path = next(changes)
        if status.startswith("R"):
            renamed_to = next(changes)
            report.renamed.append((_inside(path, prefix), _inside(renamed_to, prefix)))
            if path in mine:
                report.merged.append(_inside(renamed_to, prefix))
        elif status == "A":
            report.added.append(_inside(path, prefix))
        elif status == "D":
            report.removed.append(_inside(path, prefix))
        else:
            report.changed.append(_inside(path, prefix))
            if path in mine:
                report.merged.append(_inside(path, prefix))


def describe(report: Report) -> list[str]:
    """The lines ``tsgen update`` prints: what changed, what merged, what conflicts, and what to run next."""
    lines = [f"tsgen update: {report.old} -> {report.new}"]
    lines += [f"  added      {path}" for path in report.added]
    lines += [f"  removed    {path}" for path in report.removed if path not in report.conflicts]
    for old, new in report.renamed:
        lines.append(f"  renamed    {old} -> {new}" + (" (your edits moved with it)" if new in report.merged else ""))
    for path in report.changed:
        if path in report.conflicts:
            continue  # listed as a conflict below
        mine = path in report.merged
        lines.append(
            f"  {'merged' if mine else 'changed':<10} {path}" + (" (the template's change and yours)" if mine else "")
        )
    lines += [
        f"  conflict   {path}" + (" (the template removes it; you changed it)" if path in report.removed else "")
        for path in report.conflicts
    ]
    lines += [f"  new answer {name} = {value!r} (its default)" for name, value in report.new_answers.items()]
    lines += [
        f"  dropped answer {name} = {value!r} (the new template has no such answer)"
        for name, value in report.dropped_answers.items()
    ]
    if report.conflicts:
        lines.append(
            f"{len(report.conflicts)} conflict(s), marked in the file(s) like any git conflict (git status lists them): "
            "resolve them (or git mergetool), git add them, then git cherry-pick --continue; "
            "to back out of the update: git cherry-pick --abort"
        )
    else:
        lines.append(
            f"Committed as {report.commit[:8]}: review it with git show; undo it with git reset --hard {report.before[:8]}"
        )
    return lines
