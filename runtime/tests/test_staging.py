"""The one atomic replacement of a folder (torch_deploy.staging), which export and the Triton repository both use:
what each destination becomes, what a failure leaves, where the system cannot exchange, and a writer killed at every
step of it (a real child process, SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from torch_deploy import staging
from torch_deploy.staging import atomic_folder


def write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).write_text(text)


def contents(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in folder.iterdir()}


@pytest.fixture(params=["exchange", "two renames"])
def system(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of switching: renameat2's exchange, and the two renames where a system lacks it."""
    if request.param == "two renames":
        monkeypatch.setattr(staging, "exchange", lambda first, second: False)
    else:
        probe = Path(os.environ.get("TMPDIR", "/tmp"))
        assert staging.exchange(probe / "no-such-a", probe / "no-such-b") is False  # callable, and honest on ENOENT
    return request.param


@pytest.mark.parametrize("before", ["nothing", "a folder", "a link into the store (an older runtime's)"])
def test_the_destination_becomes_a_folder_of_the_new_files_and_nothing_else_is_left(
    tmp_path: Path, system: str, before: str
) -> None:
    output_dir, store = tmp_path / "artifacts", tmp_path / ".artifacts"
    if before == "a folder":
        output_dir.mkdir()
        write(output_dir, {"model.pt": "old", "old-only.pt": "old"})
    elif before.startswith("a link"):
        (store / "export-1-ab").mkdir(parents=True)  # pid 1 runs: only the link tells that it goes
        write(store / "export-1-ab", {"model.pt": "old"})
        output_dir.symlink_to(".artifacts/export-1-ab")
    with atomic_folder(output_dir) as folder:
        assert folder.parent == store and folder.name.startswith(f"staging-{os.getpid()}-")
        assert oct(folder.stat().st_mode & 0o777) == oct(0o777 & ~current_umask())
        write(folder, {"model.pt": "new", "input.pt": "new"})
    assert output_dir.is_dir() and not output_dir.is_symlink()
    assert contents(output_dir) == {"model.pt": "new", "input.pt": "new"}
    assert not store.exists()  # the previous folder, the older runtime's store: all gone


def test_a_failure_inside_leaves_the_destination_as_it_was(tmp_path: Path, system: str) -> None:
    output_dir = tmp_path / "triton"
    output_dir.mkdir()
    write(output_dir, {"config.pbtxt": "old"})
    with pytest.raises(RuntimeError, match="export failed"), atomic_folder(output_dir) as folder:
        write(folder, {"config.pbtxt": "half"})
        raise RuntimeError("export failed")
    assert contents(output_dir) == {"config.pbtxt": "old"}
    assert not (tmp_path / ".triton").exists()


def test_leftovers_of_dead_writers_go_and_a_running_writers_stay(tmp_path: Path) -> None:
    store, output_dir = tmp_path / ".artifacts", tmp_path / "artifacts"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for name in (f"staging-{dead_pid}-x", f"previous-{dead_pid}-x", "export-adopted-x", f"staging-{running.pid}-y"):
            (store / name).mkdir(parents=True)
        (store / f"link-{dead_pid}").symlink_to("nowhere")
        with atomic_folder(output_dir) as folder:
            write(folder, {"model.pt": "new"})
        assert sorted(path.name for path in store.iterdir()) == [f"staging-{running.pid}-y"]
    finally:
        running.kill()
        running.wait()


# A writer that replaces the folder with files that all say its number, and stops (SIGSTOP) at the step it is told.
WRITER = """
import os, signal, sys
from pathlib import Path
from torch_deploy import staging
output_dir, number, stop_at = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
stop = lambda step: step == stop_at and os.kill(os.getpid(), signal.SIGSTOP)
for name in ("sync", "exchange", "remove"):
    def stopping(*args, _original=getattr(staging, name), _name=name):
        stop(_name)
        return _original(*args)
    setattr(staging, name, stopping)
with staging.atomic_folder(output_dir) as folder:
    for name in ("model.pt", "input.pt", "expected.pt"):
        (folder / name).write_text(number)
        stop(name)
"""


@pytest.mark.parametrize("step", ["model.pt", "expected.pt", "sync", "exchange", "remove"])
def test_a_writer_killed_at_each_step_leaves_one_complete_folder(tmp_path: Path, step: str) -> None:
    """Killed before its switch, the writer leaves the previous files; after it, its own: never a mix. The next
    writer clears what it left."""
    output_dir = tmp_path / "artifacts"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    assert subprocess.run([sys.executable, "-c", WRITER, output_dir, "1", "none"], env=env).returncode == 0
    writer = subprocess.Popen([sys.executable, "-c", WRITER, output_dir, "2", step], env=env)
    os.waitpid(writer.pid, os.WUNTRACED)  # stopped at the step
    writer.send_signal(signal.SIGKILL)
    assert writer.wait() == -signal.SIGKILL
    values = set(contents(output_dir).values())
    assert values == ({"2"} if step == "remove" else {"1"}), contents(output_dir)
    assert len(contents(output_dir)) == 3
    assert subprocess.run([sys.executable, "-c", WRITER, output_dir, "3", "none"], env=env).returncode == 0
    assert set(contents(output_dir).values()) == {"3"} and not (tmp_path / ".artifacts").exists()


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask
