"""The generated project under stress: an export killed (SIGKILL) at any moment leaves the previous artifacts valid,
and two `make verify` started together in one project both pass, the second waiting for the first."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import lane_python, run
from tests.with_build.conftest import make, parity

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def project(default_project: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the default project, its sources and artifacts (not its build), to interrupt; exporting TorchScript
    only, so that its many exports take seconds (publishing does not depend on the formats)."""
    copy = tmp_path_factory.mktemp("reliability") / "demo"
    shutil.copytree(default_project.path, copy, ignore=shutil.ignore_patterns("build*"), symlinks=True)
    config = json.loads((copy / "deploy.json").read_text())
    (copy / "deploy.json").write_text(json.dumps({**config, "formats": ["torchscript"]}, indent=2))
    return copy


# When to kill an export: given its process and how long it has run, whether the moment has come.
Moment = Callable[[subprocess.Popen[bytes], float], bool]


def after(seconds: float) -> Moment:
    return lambda export, elapsed: elapsed >= seconds


def written(store: Path, name: str) -> Moment:
    """Once this export's staging folder holds ``name``."""
    return lambda export, elapsed: any(store.glob(f"staging-{export.pid}-*/{name}"))


def switched(artifacts: Path) -> Moment:
    """Once ``artifacts`` is another folder than when this export started (its own; the previous one is removed next)."""
    before: dict[int, int] = {}
    return lambda export, elapsed: artifacts.stat().st_ino != before.setdefault(export.pid, artifacts.stat().st_ino)


def test_an_export_killed_at_any_moment_leaves_the_previous_artifacts_valid(
    project: Path, default_project: SimpleNamespace
) -> None:
    """Exports with a new seed each time (so that files of two exports would not match) are killed at moments spread
    over a whole export and at each step of publishing it; after every kill the artifacts are one export's complete
    set, and `make verify` then passes without regenerating anything. Leftovers are cleared by the next export."""
    python, runner, store = lane_python("default"), default_project.path / "build/ts-infer", project / ".artifacts"
    started = time.monotonic()
    assert run([python, "export.py", "--seed", "1"], cwd=project).returncode == 0
    duration = time.monotonic() - started
    moments = [after(fraction * duration) for fraction in (0.1, 0.3, 0.5, 0.7, 0.85, 0.95)]
    moments += [written(store, "model.pt"), written(store, "expected.pt"), switched(project / "artifacts")]
    killed = 0
    for seed, moment in enumerate(moments, start=2):
        launched = time.monotonic()
        export = subprocess.Popen(
            [python, "export.py", "--seed", str(seed)],
            cwd=project,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while export.poll() is None and not moment(export, time.monotonic() - launched):
            time.sleep(0.0005)
        export.send_signal(signal.SIGKILL)
        killed += export.wait() == -signal.SIGKILL
        check = parity(project, runner)
        assert check.returncode == 0 and "parity: PASS" in check.stdout, f"after kill {seed}: {check.stdout}"
    assert killed >= 7, f"only {killed} exports were killed before they finished"

    verify = make(project, "verify")
    assert verify.returncode == 0, verify.stdout
    assert "==> export" not in verify.stdout and verify.stdout.splitlines()[-1].startswith("verify: PASS")
    assert run([python, "export.py"], cwd=project).returncode == 0
    assert not store.exists()  # the killed exports' folders and the previous artifacts: gone


def test_two_verifies_at_once_both_pass_and_the_second_waits(project: Path) -> None:
    """Two `make verify` started together after deploy.json changed: both pass; the export runs once, because the
    second make waits for the first (make's lock) and then finds the artifacts up to date."""
    (project / "deploy.json").touch()
    makes = [
        subprocess.Popen(["make", "verify"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=900)[0] for process in makes]
    for process, output in zip(makes, outputs, strict=True):
        assert process.returncode == 0, output
        assert output.splitlines()[-1].startswith("verify: PASS")
    assert sum("==> export:" in output for output in outputs) == 1, outputs
