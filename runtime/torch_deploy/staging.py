"""One way to replace a folder atomically, for every folder the runtime writes (export's ``artifacts``, the Triton
repository); standard library only.

The new files are written into a staging folder of a store beside the destination (``.artifacts`` for
``artifacts``), put on disk, then swapped with the destination in one step, so that a reader finds the previous
folder or the new one, complete, whenever the writer dies (SIGKILL and a power cut included). The destination stays
a plain folder, which cp, tar, rsync and docker copy like any other. A writer that died leaves folders named after
its process in the store; the next one clears them, and the store goes when it is empty.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_folder(output_dir: Path) -> Iterator[Path]:
    """Yield a new, empty staging folder to write into; when the block ends without an exception, it replaces
    ``output_dir`` (a folder, a link, or nothing yet) in one switch. On an exception ``output_dir`` is untouched."""
    store = output_dir.parent / f".{output_dir.name}"
    clear_leftovers(store)
    staging = staging_folder(store)
    try:
        yield staging
        switch(staging, output_dir)
    finally:
        if staging.is_symlink():  # the previous output_dir was an older runtime's link into the store
            target = (output_dir.parent / os.readlink(staging)).resolve()
            if target.parent == store.resolve():
                remove(target)
        remove(staging)  # the previous folder after a switch, the unfinished one after a failure
        with contextlib.suppress(OSError):  # not empty: another writer is at work
            store.rmdir()


def staging_folder(store: Path) -> Path:
    """A new folder, ``staging-<pid>-...``, in ``store``, as readable as other files (mkdtemp's folders are private)."""
    for _ in range(3):  # another writer may remove the store, empty, between the two calls
        store.mkdir(parents=True, exist_ok=True)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f"staging-{os.getpid()}-", dir=store))
            break
        except FileNotFoundError:
            continue
    else:
        raise FileNotFoundError(f"{store}: removed each time a folder was made in it")
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def switch(staging: Path, output_dir: Path) -> None:
    """Put ``staging``'s files on disk, then make it ``output_dir``; the previous ``output_dir`` ends at ``staging``'s
    path. One exchange where the system has it; elsewhere two renames (the previous folder out of the way, the new one
    in): never half written, but absent for the instant between."""
    sync(staging)
    if not (output_dir.exists() or output_dir.is_symlink()):
        os.rename(staging, output_dir)
    elif not exchange(staging, output_dir):
        previous = staging.with_name(staging.name.replace("staging-", "previous-", 1))
        os.rename(output_dir, previous)
        os.rename(staging, output_dir)
        os.rename(previous, staging)


def exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step: Linux's renameat2 with RENAME_EXCHANGE (glibc 2.28 and newer); False where the C
    library, the kernel or the file system lacks it."""
    at_fdcwd, rename_exchange = -100, 2
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0


def sync(folder: Path) -> None:
    """Every file below ``folder`` on disk, before the switch: in case the machine, not only the process, dies."""
    for file in folder.rglob("*"):
        if file.is_file() and not file.is_symlink():
            with file.open("rb") as data:
                os.fsync(data.fileno())


def clear_leftovers(store: Path) -> None:
    """Remove what writers that died left in ``store`` (named ``<kind>-<pid>-...``); a writer still running keeps its
    own. Entries of an older runtime's store (``export-*`` folders, ``link-*`` links) go the same way."""
    for path in store.iterdir() if store.is_dir() else []:
        pid = path.name.split("-")[1] if "-" in path.name else ""
        if not (pid.isdigit() and process_alive(int(pid))):
            remove(path)


def remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


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
