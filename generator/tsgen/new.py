"""``tsgen new``: answers from flags -> validated context -> cookiecutter renders the one template -> hooks.

The same template and hooks serve ``cookiecutter <repo>``; this module only turns flags into answers, refuses
bad ones before anything is written, and calls cookiecutter's API.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config

from tsgen import gitrepo, template
from tsgen.errors import TsgenError

# Shorter spellings of two answers' flags, which errors use (the derived --project-slug and --no-first-build work too).
FLAG_ALIASES = {"project_slug": "--slug", "first_build": "--no-build"}


@dataclass
class NewProject:
    """What ``tsgen new`` was asked for: the answers given (others keep the template's defaults) and where."""

    answers: dict[str, object] = field(default_factory=dict)  # by name (atol), not cookiecutter key (_atol)
    output_dir: Path = Path(".")
    force: bool = False
    git: bool = True  # make a new project folder a git repository with a first commit (see gitrepo.py)


def resolve_answers(request: NewProject) -> dict[str, object]:
    """The full answer set cookiecutter will use, by cookiecutter key (defaults and derived values such as the slug
    rendered)."""
    template_dir = template.find_template_dir()
    extra = {key: value for key, value in request.answers.items() if value is not None}
    rules = template.answers()
    unknown = set(extra) - {item.name for item in rules.questions()}
    assert not unknown, f"not template answers: {unknown}"
    for key, value in extra.items():
        try:
            rules.check_literal(key, value)
        except rules.AnswerError as err:
            raise _flag_error(err) from err
    # The hooks run in the new folder, not here: make the user's file paths absolute.
    model = str(extra.get("model", ""))
    if ".py:" in model or model.endswith(".pt"):
        extra["model"] = str(Path(model).expanduser().resolve())
    if rules.is_weights_file(str(extra.get("weights", ""))):
        extra["weights"] = str(Path(str(extra["weights"])).expanduser().resolve())
    if rules.is_labels_file(str(extra.get("labels", "")).strip()):
        extra["labels"] = str(Path(str(extra["labels"]).strip()).expanduser().resolve())
    keys = {item.name: item.key for item in rules.questions()}
    context = generate_context(
        context_file=str(template_dir / "cookiecutter.json"),
        extra_context={keys[name]: value for name, value in extra.items()},
    )
    return dict(prompt_for_config(context, no_input=True))


def validate(answers_given: dict[str, object], slug_given: bool = True) -> None:
    """Refuse a bad answer with one line naming its flag, the value, and the fix."""
    rules = template.answers()
    try:
        rules.validate(answers_given, rules.model_file_bases())
    except rules.AnswerError as err:
        if err.answer == "project_slug" and not slug_given:
            name = answers_given["project_name"]
            raise TsgenError(
                f"NAME {name!r} gives the folder name {err.value!r}, which {err.why}; {err.fix}, or pass --slug"
            ) from err
        raise _flag_error(err) from err


def flags() -> dict[str, str]:
    """The flag that sets each answer (by name), as cli.py derives it, so that errors name what the user typed."""
    return {item.name: FLAG_ALIASES.get(item.name, item.flag) for item in template.answers().questions()}


def _flag_error(err: Exception) -> TsgenError:
    """An AnswerError from the template's rules, told in terms of the flag the user typed."""
    answer = err.answer  # type: ignore[attr-defined]
    return TsgenError(f"{flags().get(answer, answer)} {err.value!r}: {err.why}; {err.fix}")  # type: ignore[attr-defined]


def new_project(request: NewProject) -> Path:
    """Generate the project and return its folder; raises TsgenError for anything the user can fix.

    Atomic: cookiecutter renders into a staging folder beside the destination, which is moved into place only
    when everything succeeded. On any failure or Ctrl-C, only what this run created is removed.
    """
    answers_given = resolve_answers(request)
    validate(answers_given, slug_given=request.answers.get("project_slug") is not None)
    output_dir = request.output_dir.resolve()
    destination = output_dir / str(answers_given["project_slug"])
    if destination.exists() and not destination.is_dir():
        raise TsgenError(f"{destination} exists and is not a folder; choose another NAME or --output-dir")
    if destination.exists() and not request.force:
        raise TsgenError(
            f"{destination} already exists; choose another NAME or --output-dir, or pass --force to regenerate into it"
        )
    fresh = not destination.exists()
    created = _missing_ancestors(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.tsgen-", dir=output_dir))
    try:
        rendered, hook_report = _render(answers_given, staging, destination)
        replaced = _move_into_place(rendered, destination)
    except BaseException:  # also Ctrl-C: remove the folders this run made for --output-dir, nothing else
        if created:
            shutil.rmtree(created[0], ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if replaced:
        shown = ", ".join(replaced[:8]) + (f" and {len(replaced) - 8} more" if len(replaced) > 8 else "")
        print(
            f"==> --force: replaced {len(replaced)} changed template files ({shown}); all other files kept as they were"
        )
    if fresh and request.git:
        _first_commit(destination)
    if not hook_report.get("finished", True):
        try:
            template.post_gen_hook().finish(destination, bool(hook_report.get("build")))
        except KeyboardInterrupt:
            raise TsgenError(
                f"first build interrupted; the project is complete: cd {destination} && make verify"
            ) from None
    return destination


def _render(answers_given: dict[str, object], staging: Path, destination: Path) -> tuple[Path, dict[str, object]]:
    """cookiecutter renders into ``staging``; the post_gen hook reports whether the first build is due."""
    report_file = staging / "hook-report.json"
    variables = {"TSGEN_PROJECT_DIR": str(destination), "TSGEN_HOOK_REPORT": str(report_file)}
    answers = template.answers().by_key(answers_given)
    rendered = template.render(template.find_template_dir(), answers, staging, variables, "generation failed")
    hook_report = json.loads(report_file.read_text(encoding="utf-8")) if report_file.is_file() else {}
    return rendered, hook_report


def _first_commit(project: Path) -> None:
    """A new project becomes a git repository whose first commit is the project as generated (the base tsgen
    update merges from), unless git is missing or the project is inside a repository already (and not one of the
    folders it ignores, where a repository of its own is what the user wants)."""
    if not gitrepo.available():
        print("==> git not found: the project is no git repository (tsgen update needs one; see its docs)")
        return
    if gitrepo.top_level(project.parent) is not None and not gitrepo.ignored(project):
        print(f"==> {project.name} is inside a git repository: commit it there (nothing was committed)")
        return
    record = template.answers().read_record(project) or {"tsgen": {}}
    made_by = template.answers().template_label(record["tsgen"])
    try:
        commit = gitrepo.init_project(project, f"Generated by {made_by}\n\ntsgen new; answers in .cookiecutter.json.")
    except TsgenError as err:  # like a failed first build, a git problem does not undo the finished project
        shutil.rmtree(project / ".git", ignore_errors=True)
        print(f"==> {err}; the project is kept, without a git repository")
        return
    print(f"==> git: first commit {commit[:8]}, also branch {gitrepo.TEMPLATE_BRANCH} (the template's render)")


def _move_into_place(rendered: Path, destination: Path) -> list[str]:
    """Move the rendered project to ``destination``; into an existing folder (--force), file by file, keeping
    files the template does not produce and identical files as they are. Returns the files that were replaced."""
    if not destination.exists():
        os.rename(rendered, destination)
        return []
    replaced = []
    for source in sorted(path for path in rendered.rglob("*") if path.is_file()):
        relative = source.relative_to(rendered)
        target = destination / relative
        if target.is_file() and filecmp.cmp(source, target, shallow=False):
            continue  # identical: keep its timestamp, so that make redoes nothing for it
        if target.exists():
            replaced.append(str(relative))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
    return replaced


def _missing_ancestors(folder: Path) -> list[Path]:
    """The outermost-first list of ``folder`` and its parents that do not exist yet."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return list(reversed(missing))
