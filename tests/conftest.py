"""Fixtures shared by the four tiers: the repository as a template, the lane interpreters, and runners."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests import updating

REPO = Path(__file__).resolve().parent.parent
VENVS = REPO / ".venvs"
PROJECT_TEMPLATE = REPO / "{{cookiecutter.project_slug}}"
RUNTIME = REPO / "runtime" / "torch_deploy"
RUNTIME_VERSION = re.search(r'^__version__ = "(.+)"', (RUNTIME / "__init__.py").read_text(), re.MULTILINE)[1]


def lane_python(lane: str) -> Path:
    """The interpreter of a lane venv made by scripts/setup.sh; a missing one fails the test with the fix."""
    python = VENVS / lane / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run scripts/setup.sh {lane}")
    return python


def torch_package(python: Path) -> Path:
    """The torch package folder of ``python`` (a libtorch prefix), found the way discover.py does."""
    code = "import importlib.util as u; print(u.find_spec('torch').submodule_search_locations[0])"
    return Path(subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip())


def run(
    command: Sequence[object], cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run a real process; stdout and stderr are kept apart, both as text."""
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def tsgen(
    *args: object, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed ``tsgen`` command, run by this interpreter (the default lane venv)."""
    return run([sys.executable, "-m", "tsgen", *args], cwd=cwd, env=env)


def tree(folder: Path) -> set[str]:
    """Every file below ``folder``, as relative paths."""
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


# Session and module fixtures that generate, build or package projects: 10 s to a minute each. pytest-xdist gives each
# worker a session of its own, so such a fixture whose tests are spread over both workers is made twice. default_project
# is left out: nearly every end-to-end test uses it, so both workers make it whatever the grouping.
BUILT_ONCE = {
    "cpu_lane_project", "bare_machine_build", "gpu_build", "dict_output_project", "dynamic_project", "pair_project",
    "made", "packaged", "installed", "int8_project", "squeeze_excitation", "consumer", "built", "project",
}  # fmt: skip


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that share one of BUILT_ONCE (directly, through another fixture, or by request.getfixturevalue with its
    name) form one group, and so run on one worker under scripts/test.sh's --dist loadgroup; tests linked through
    two such fixtures join their groups. The other tests are spread one by one, as with --dist load."""
    group: dict[str, str] = {}  # union-find over the fixtures' keys: each key's parent

    def root(key: str) -> str:
        while group.setdefault(key, key) != key:
            key = group[key]
        return key

    keys_of: dict[pytest.Item, list[str]] = {}
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        asked = {name for name in item.function.__code__.co_consts if isinstance(name, str)}  # getfixturevalue's
        keys = []
        for name in sorted(BUILT_ONCE & (set(item.fixturenames) | asked)):
            definitions = item.session._fixturemanager.getfixturedefs(name, item)
            scope = definitions[-1].scope if definitions else "function"  # a name no fixture visible here has
            if scope in ("session", "module"):
                keys.append(f"{item.module.__name__}:{name}" if scope == "module" else name)
        for key in keys[1:]:
            group[root(key)] = root(keys[0])
        keys_of[item] = keys
    for item, keys in keys_of.items():
        if keys:
            item.add_marker(pytest.mark.xdist_group(root(keys[0])))


@pytest.fixture(scope="session")
def template_git_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A ``git+file://`` URL of a fresh clone holding this working tree, as ``cookiecutter gh:...`` would see it."""
    source = tmp_path_factory.mktemp("template-repo")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    git = ["git", "-c", "user.name=tsgen-tests", "-c", "user.email=tests@tsgen.invalid"]
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "template"]):
        subprocess.run([*git, *command], cwd=source, check=True)
    return f"git+file://{source}"


@pytest.fixture(scope="session")
def cookiecutter_only() -> Path:
    """The ``cookiecutter`` command of a venv holding nothing but cookiecutter (no torch, no tsgen)."""
    return lane_python("cookiecutter").parent / "cookiecutter"


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """This environment without libtorch hints (discovery runs as on a user's machine), and a cookiecutter
    config of its own, so that clones and replay files go to a temporary folder rather than ~/.cookiecutters."""
    env = {k: v for k, v in os.environ.items() if k not in {"Torch_DIR", "LIBTORCH", "CMAKE_PREFIX_PATH"}}
    config = tmp_path / "cookiecutter-config.yaml"
    config.write_text(
        f"cookiecutters_dir: {tmp_path / 'cookiecutters'}\nreplay_dir: {tmp_path / 'replay'}\n", encoding="utf-8"
    )
    env["COOKIECUTTER_CONFIG"] = str(config)
    return env


@pytest.fixture(scope="session")
def newer_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the template's next version (tests/updating.py says what changes)."""
    return updating.template_version(tmp_path_factory.mktemp("newer") / "template", older=False)


@pytest.fixture(scope="session")
def older_template_url(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The template's previous version as a git repository: (its git+file URL, that version's commit)."""
    folder = updating.template_version(tmp_path_factory.mktemp("older") / "template", older=True)
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    return f"git+file://{folder}", updating.commit_all(folder, "An older template")
