"""The ``tsgen`` command line: parses flags, calls one function per command, prints errors as one line."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from tsgen import __version__, template
from tsgen import update as update_module
from tsgen.doctor import run_checks, setup_for
from tsgen.errors import TsgenError
from tsgen.new import FLAG_ALIASES, NewProject, new_project

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
console = Console(highlight=False, soft_wrap=True)


class TsgenGroup(click.Group):
    """Turns TsgenError into one red line and exit 1, and Ctrl-C into a message (copier's single catch point)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except TsgenError as err:
            if ctx.params.get("debug"):
                traceback.print_exc()
            err_console.print(f"[red]tsgen: error:[/red] {err}")
            raise SystemExit(1) from err
        except KeyboardInterrupt:
            err_console.print("[red]tsgen: interrupted[/red] (only what this run had created was removed)")
            raise SystemExit(130) from None


@click.group(cls=TsgenGroup)
@click.version_option(__version__, prog_name="tsgen")
@click.option("--debug", is_flag=True, help="Show the traceback behind an error message.")
def cli(debug: bool) -> None:
    """Generate TorchScript deployment projects: export in Python, run in C++ with libtorch, prove they agree."""


def answer_parameters(command: Callable[..., None]) -> Callable[..., None]:
    """One parameter per template answer, derived from cookiecutter.json (the one list of answers): its flag,
    choices, help text (the question's prompt) and default. Adding an answer to the template adds its flag."""
    for item in reversed(template.answers().questions()):
        if item.first:
            command = click.argument(item.name, metavar=item.flag)(command)
            continue
        names = [*([FLAG_ALIASES[item.name]] if item.name in FLAG_ALIASES else []), item.flag, item.name]
        default = item.default_value
        shown = "derived from NAME" if "{{" in str(default) else default
        help_text = f"No to: {item.help}" if default is True else item.help
        help_text += f"  [default: {shown}]" if shown not in ("", True, False) else ""
        if isinstance(default, bool):  # a yes/no answer: its flag sets the opposite of the default
            option = click.option(*names, flag_value=not default, default=None, help=help_text)
        else:
            choices = item.choices
            option = click.option(*names, type=click.Choice(choices) if choices else None, help=help_text)
        command = option(command)
    return command


@cli.command()
@answer_parameters
@click.option(
    "--output-dir",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to create the project in.",
)
@click.option("--force", is_flag=True, help="Regenerate into an existing project folder.")
@click.option("--no-git", is_flag=True, help="Do not make the new project a git repository with a first commit.")
def new(output_dir: Path, force: bool, no_git: bool, **answers: object) -> None:
    """Create the deployment project NAME (non-interactive; every template answer has a flag)."""
    started = time.monotonic()
    request = NewProject(answers=answers, output_dir=output_dir, force=force, git=not no_git)
    project = new_project(request)
    console.print(f"[green]tsgen[/green]: {project} ready in {time.monotonic() - started:.1f} s")


@cli.command()
@click.option("--libtorch", help="Check this libtorch or torch package folder instead of discovering one.")
@click.option("--python", "python", default=sys.executable, show_default=True, help="Interpreter whose torch to use.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for tools).")
def libtorch(libtorch: str | None, python: str, as_json: bool) -> None:
    """Print the libtorch CMake prefix a new project would use, and how it was found."""
    discover = template.discover()
    try:
        found = discover.find_libtorch(libtorch, python)
    except discover.LibtorchNotFound as err:
        looked = "".join(f"\n  looked at {place}" for place in err.looked)
        raise TsgenError(f"{err}{looked}") from err
    if as_json:
        click.echo(found.to_json())
    else:
        click.echo(found.prefix)
        console.print(f"{found.describe()}\nCMake: -DTORCH_DEPLOY_LIBTORCH={found.prefix}")


@cli.command()
@click.option("--python", "python", help="Interpreter that exports the model  [default: the project's, else this one]")
@click.option("--libtorch", help="Check this libtorch or torch package folder instead of discovering one.")
@click.option(
    "--project",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=Path("."),
    help="A generated project whose configuration to check too  [default: the current folder, if it is one]",
)
def doctor(python: str | None, libtorch: str | None, project: Path) -> None:
    """Check Python, torch, libtorch, CMake, the compiler and the build tools; exit 1 when a build cannot work."""
    checks = run_checks(setup_for(project.resolve(), python, libtorch))
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    for column in ("", "check", "found", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        mark = "[green]✓[/green]" if check.ok else ("[red]✗[/red]" if check.blocking else "[yellow]✗[/yellow]")
        table.add_row(mark, check.name, check.detail, check.fix)
    console.print(table)
    blocking = [check.name for check in checks if not check.ok and check.blocking]
    if blocking:
        raise TsgenError(f"a build cannot work until these are fixed: {', '.join(blocking)}")
    console.print("[green]doctor: everything a build needs is there[/green]")


@cli.command()
@click.argument("project", type=click.Path(file_okay=False, path_type=Path), default=Path("."), required=False)
@click.option(
    "--template",
    "source",
    help="The newer template: a folder or git URL of tsgen's template  [default: this tsgen's own]",
)
@click.option("--check", is_flag=True, help="Only say whether the project's template is older; exit 1 when it is.")
def update(project: Path, source: str | None, check: bool) -> None:
    """Bring the newer template into PROJECT (default: here) as a three-way merge in git: your edits stay, a
    change of yours in lines the template also changed becomes an ordinary git conflict."""
    if not project.is_dir():
        raise TsgenError(f"PROJECT {str(project)!r} is not a folder; give the folder of a generated project")
    if check:
        current, line = update_module.check(project.resolve(), source)
        console.print(line)
        raise SystemExit(0 if current else 1)
    report = update_module.update(project, source)
    if report.up_to_date:
        console.print(f"{project.resolve().name} is up to date with its template, {report.old}; nothing to do")
        return
    for line in update_module.describe(report):
        console.print(line, markup=False)
    if report.conflicts:
        raise SystemExit(1)


def main() -> int:
    cli.main(prog_name="tsgen", standalone_mode=True)
    return 0
