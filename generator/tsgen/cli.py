"""The ``tsgen`` command line: parses flags, calls one function per command, prints errors as one line."""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from tsgen import __version__, template
from tsgen.doctor import run_checks, setup_for
from tsgen.errors import TsgenError
from tsgen.new import NewProject, new_project

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


@cli.command()
@click.argument("name")
@click.option("--slug", help="Folder and CMake project name [default: NAME in lower case, - and spaces as _].")
@click.option(
    "--model", help="torchvision:<arch>, path/to/file.py:factory or path/to/model.pt  [default: torchvision:resnet18]"
)
@click.option(
    "--weights", help="torchvision weights: none, DEFAULT, a weights name or a .pt/.pth file  [default: none]"
)
@click.option("--description", help="One-line description for the README.")
@click.option(
    "--export-method",
    type=click.Choice(["script", "trace", "auto"]),
    help="torch.jit.script (default), trace, or auto (script, else trace).",
)
@click.option(
    "--formats",
    type=click.Choice(["torchscript", "aoti", "both"]),
    help="Export to TorchScript model.pt (default), AOTInductor model.pt2, or both (compare them).",
)
@click.option("--input-shape", help="Reference input shape, comma-separated  [default: 1,3,224,224]")
@click.option("--inputs", help="Several named inputs: name:shape:dtype;...  e.g. ids:1,16:int64;mask:1,16:bool")
@click.option("--top-k", help="Classes to print and compare for classifiers, 0 for none  [default: 5]")
@click.option(
    "--preprocess",
    help="Image preprocessing of ts-infer --image: auto, none, or resize=256 mean=r,g,b std=r,g,b "
    "interpolation=bilinear  [default: auto: the torchvision weights' transforms, else ImageNet's]",
)
@click.option(
    "--labels", help="Class names: auto (the torchvision weights' categories), none, or a .txt file  [default: auto]"
)
@click.option("--atol", help="Absolute tolerance of the C++ vs Python check  [default: 1e-4]")
@click.option("--rtol", help="Relative tolerance of the C++ vs Python check  [default: 1e-4]")
@click.option("--seed", help="Seed of the random weights and reference input  [default: 0]")
@click.option("--python", "python", help="Python with torch used for export  [default: this one, else python3]")
@click.option("--libtorch", help="libtorch or torch package folder  [default: discover, see `tsgen libtorch`]")
@click.option(
    "--dynamic-batch", is_flag=True, default=None, help="Also check export and parity at a second batch size."
)
@click.option("--no-build", is_flag=True, help="Skip the first configure + build.")
@click.option(
    "--output-dir",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to create the project in.",
)
@click.option("--force", is_flag=True, help="Regenerate into an existing project folder.")
def new(name: str, slug: str | None, no_build: bool, output_dir: Path, force: bool, **answers: str | None) -> None:
    """Create the deployment project NAME (non-interactive; every template answer has a flag)."""
    given: dict[str, object] = {"project_name": name, "project_slug": slug, **answers}
    if no_build:
        given["first_build"] = False
    started = time.monotonic()
    project = new_project(NewProject(answers=given, output_dir=output_dir, force=force))
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


def main() -> int:
    cli.main(prog_name="tsgen", standalone_mode=True)
    return 0
