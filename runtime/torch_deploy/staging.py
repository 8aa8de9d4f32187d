"""What the runtime's atomic writers share (standard library only): export's artifacts and the Triton repository are
each written into a new folder of a store beside their destination (``.artifacts`` for ``artifacts``), put on disk,
then switched in; a writer that died leaves folders named after its process, which a later one clears."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def staging_folder(output_dir: Path) -> Path:
    """A new folder, ``staging-<pid>-...``, in the store beside ``output_dir``, as readable as other files (mkdtemp's
    folders are private)."""
    store = output_dir.parent / f".{output_dir.name}"
    store.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"staging-{os.getpid()}-", dir=store))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def sync(folder: Path) -> None:
    """Every file below ``folder`` on disk, before the switch: in case the machine, not only the process, dies."""
    for file in folder.rglob("*"):
        if file.is_file() and not file.is_symlink():
            with file.open("rb") as data:
                os.fsync(data.fileno())


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a writer whose folders must be left alone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
