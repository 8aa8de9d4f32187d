"""Where the cookiecutter template is, the stdlib modules tsgen shares with it, and the one way tsgen renders it
(``render``, for ``tsgen new`` and ``tsgen update``).

The wheel carries the template under ``tsgen/template/`` (hatch force-include); a source checkout uses the
repository root. There is no second copy: the hooks, the answer rules (``hooks/answers.py``) and libtorch
discovery (``runtime/torch_deploy/discover.py``, the runtime that projects pin or vendor) are imported from there.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from cookiecutter.exceptions import CookiecutterException
from cookiecutter.main import cookiecutter

from tsgen.errors import TsgenError, last_line

PROJECT_DIR_NAME = "{{cookiecutter.project_slug}}"
PACKAGE_DIR = Path(__file__).resolve().parent


def find_template_dir(package_dir: Path = PACKAGE_DIR) -> Path:
    """The template root: installed beside the package, or the checkout that holds the package."""
    for candidate in (package_dir / "template", package_dir.parent.parent):
        if (candidate / "cookiecutter.json").is_file() and (candidate / PROJECT_DIR_NAME).is_dir():
            return candidate
    raise RuntimeError(f"tsgen's template is missing next to {package_dir}; reinstall tsgen")


@functools.cache
def load_module(relative_path: str) -> ModuleType:
    """Import a stdlib-only module from the template (e.g. ``hooks/answers.py``) under its file stem."""
    path = find_template_dir() / relative_path
    spec = importlib.util.spec_from_file_location(f"tsgen._template_{path.stem}", path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    # No __pycache__ inside the template: cookiecutter would copy it into every generated project.
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return module


def answers() -> ModuleType:
    """The template's answer rules (hooks/answers.py)."""
    return load_module("hooks/answers.py")


def post_gen_hook() -> ModuleType:
    """The post_gen_project hook, imported unrendered for its first_build() and finish() (tsgen moves the
    project into place before building it)."""
    return load_module("hooks/post_gen_project.py")


def discover() -> ModuleType:
    """Libtorch and build-tool discovery (the runtime's discover.py, beside the template)."""
    return load_module("runtime/torch_deploy/discover.py")


def devices() -> ModuleType:
    """Which devices this machine can run models on (the runtime's device.py, beside the template)."""
    return load_module("runtime/torch_deploy/device.py")


@contextlib.contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the hooks cookiecutter runs (they are subprocesses), restored afterwards."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def hook_scripts_removed() -> Iterator[None]:
    """cookiecutter writes each hook, rendered, to a temporary file that it never deletes (one per hook and
    generation). Around a cookiecutter call, the temporary folder is a private one, removed afterwards."""
    folder = tempfile.mkdtemp(prefix="tsgen-hooks-")
    saved, tempfile.tempdir = tempfile.tempdir, folder
    try:
        yield
    finally:
        tempfile.tempdir = saved
        shutil.rmtree(folder, ignore_errors=True)


def render(
    template_dir: Path,
    answers: dict[str, object],
    output_dir: Path,
    variables: dict[str, str],
    failure: str,
    **options: object,
) -> Path:
    """cookiecutter renders ``template_dir`` with ``answers`` (no prompts) into ``output_dir``, its hooks seeing
    ``variables`` in their environment and leaving no scripts behind. A failure is one TsgenError, ``failure: <why>``
    with the last line cookiecutter logged (it logs a hook's failure with a traceback; the hook already printed the
    one line that matters)."""
    try:
        with environment(variables), hook_scripts_removed(), contextlib.redirect_stderr(io.StringIO()) as noise:
            return Path(
                cookiecutter(
                    str(template_dir), no_input=True, extra_context=answers, output_dir=str(output_dir), **options
                )
            )
    except (CookiecutterException, ValueError) as err:  # ValueError: an answer that is not one of a choice's
        logged = last_line(noise.getvalue())
        raise TsgenError(f"{failure}: {err}{f' ({logged})' if logged else ''}") from err
