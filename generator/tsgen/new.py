"""``tsgen new``: answers from flags -> validated context -> cookiecutter renders the one template -> hooks.

The same template and hooks serve ``cookiecutter <repo>``; this module only turns flags into answers, refuses
bad ones before anything is written, and calls cookiecutter's API.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from cookiecutter.exceptions import CookiecutterException
from cookiecutter.generate import generate_context
from cookiecutter.main import cookiecutter
from cookiecutter.prompt import prompt_for_config

from tsgen import template
from tsgen.errors import TsgenError

# The flag that sets each answer, so that errors name what the user typed.
FLAGS = {
    "project_name": "NAME",
    "project_slug": "--slug",
    "model": "--model",
    "description": "--description",
    "export_method": "--export-method",
    "input_shape": "--input-shape",
    "top_k": "--top-k",
    "atol": "--atol",
    "rtol": "--rtol",
    "seed": "--seed",
    "python": "--python",
    "libtorch": "--libtorch",
    "first_build": "--no-build",
}


@dataclass
class NewProject:
    """What ``tsgen new`` was asked for: the answers given (others keep the template's defaults) and where."""

    answers: dict[str, object] = field(default_factory=dict)
    output_dir: Path = Path(".")
    force: bool = False


def resolve_answers(request: NewProject) -> dict[str, object]:
    """The full answer set cookiecutter will use (defaults and derived values such as the slug rendered)."""
    template_dir = template.find_template_dir()
    extra = {key: value for key, value in request.answers.items() if value is not None}
    model = str(extra.get("model", ""))
    if ".py:" in model:
        extra["model"] = str(Path(model).expanduser().resolve())  # the hooks run in the new folder, not here
    context = generate_context(context_file=str(template_dir / "cookiecutter.json"), extra_context=extra)
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
        raise TsgenError(f"{FLAGS.get(err.answer, err.answer)} {err.value!r}: {err.why}; {err.fix}") from err


def new_project(request: NewProject) -> Path:
    """Generate the project and return its folder; raises TsgenError for anything the user can fix."""
    answers_given = resolve_answers(request)
    validate(answers_given, slug_given=request.answers.get("project_slug") is not None)
    destination = request.output_dir.resolve() / str(answers_given["project_slug"])
    if destination.exists() and not request.force:
        raise TsgenError(
            f"{destination} already exists; choose another NAME or --output-dir, or pass --force to regenerate into it"
        )
    request.output_dir.mkdir(parents=True, exist_ok=True)
    try:
        # cookiecutter logs hook failures with a traceback; the hooks already printed the one line that matters.
        with contextlib.redirect_stderr(io.StringIO()) as noise:
            project = cookiecutter(
                str(template.find_template_dir()),
                no_input=True,
                extra_context={k: v for k, v in answers_given.items() if not k.startswith("_")},
                output_dir=str(request.output_dir),
                overwrite_if_exists=request.force,
            )
    except CookiecutterException as err:
        raise TsgenError(f"generation failed: {err}{_last_line(noise.getvalue())}") from err
    return Path(project)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return f" ({lines[-1]})" if lines else ""
