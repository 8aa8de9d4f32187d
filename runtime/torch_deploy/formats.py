"""The exported formats, and the one reader of the list export.py writes of them (standard library only: make, CMake
and the bundle check call it without importing torch).

artifacts/formats.txt holds ``<format> <model file> <reference outputs> [<reference outputs at the second batch
size>]`` per exported format, in deploy.json's order (the first is what make predict runs). ``exported()`` reads it;
``checks()`` says what each model file is checked against, the one list that make verify, ctest and make
package-check run (torch_deploy.verify).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

FORMATS_FILE = "formats.txt"
BF16_EXPECTED = "expected_bf16.pt"  # model.pt's reference outputs in bf16 (deploy.json's "precision" bf16)
INPUT = "input.pt"
BATCH_INPUT = "input_batch.pt"  # the reference inputs at the second batch size (a dynamic batch)


class ListingError(Exception):
    """Raised when formats.txt is missing or is not export.py's; the message names the file and says run make export."""


@dataclass(frozen=True)
class Format:
    """One way to export the model: its name in deploy.json, its model file, and the reference outputs that the
    Python run of that file recorded (what C++ must reproduce from it)."""

    name: str
    title: str
    model_file: str
    expected_file: str

    def expected(self, batch: bool = False) -> str:
        """The reference outputs' file; at the second batch size of a dynamic batch, ``<name>_batch.pt``."""
        return self.expected_file.replace(".pt", "_batch.pt") if batch else self.expected_file


FORMATS = {
    "torchscript": Format("torchscript", "TorchScript", "model.pt", "expected.pt"),
    "aoti": Format("aoti", "AOTInductor", "model.pt2", "expected_aoti.pt"),
}


@dataclass(frozen=True)
class Entry:
    """One line of formats.txt: a format, its model file, and its reference outputs (at the second batch size too,
    with a dynamic batch)."""

    format: Format
    model_file: str
    expected: str
    expected_batch: str | None = None

    def line(self) -> str:
        return " ".join([self.format.name, self.model_file, self.expected, *filter(None, [self.expected_batch])])


def write(folder: Path, entries: list[Entry]) -> None:
    """formats.txt in ``folder``, listing ``entries`` in order."""
    (folder / FORMATS_FILE).write_text(
        "# format, model file, reference outputs [at the second batch size]: written by export.py, checked by make\n"
        + "".join(entry.line() + "\n" for entry in entries),
        encoding="utf-8",
    )


def exported(folder: Path) -> list[Entry]:
    """formats.txt of ``folder``: what export.py exported, in deploy.json's order."""
    listed = folder / FORMATS_FILE
    if not listed.is_file():
        raise ListingError(f"{listed} is missing: run make export")
    entries = []
    for line in listed.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0] not in FORMATS or len(fields) not in (3, 4):
            raise ListingError(f"{listed} is malformed ({line!r}); run make export")
        entries.append(Entry(FORMATS[fields[0]], fields[1], fields[2], fields[3] if len(fields) == 4 else None))
    if not entries:
        raise ListingError(f"{listed} lists no model file; run make export")
    return entries


@dataclass(frozen=True)
class Check:
    """One run of the C++ runner against Python's reference outputs: ``model`` on ``input`` must reproduce
    ``expected`` (bf16's outputs when ``expected`` is expected_bf16.pt, which records bf16 = 1: the runner takes
    its precision from the file). ``kind`` is "parity", "second batch" or "bf16"; ``drift_from`` the fp32 reference
    that bf16 is also compared with."""

    kind: str
    model: str
    input: str
    expected: str
    drift_from: str | None = None

    def arguments(self, folder: str | Path) -> list[str]:
        """The runner's arguments, with the files in ``folder`` (the artifacts, or where a bundle holds them)."""
        args = [f"{folder}/{self.model}", "--input", f"{folder}/{self.input}", "--expect", f"{folder}/{self.expected}"]
        return args + (["--drift-from", f"{folder}/{self.drift_from}"] if self.drift_from else [])


def checks(folder: Path) -> list[Check]:
    """Every check of the artifacts in ``folder``: each format's model file on the reference input; at the second
    batch size when formats.txt names its outputs; model.pt in bf16 when the project's precision is bf16 (export.py
    then wrote expected_bf16.pt)."""
    entries = exported(folder)
    found = []
    for entry in entries:
        found.append(Check("parity", entry.model_file, INPUT, entry.expected))
        if entry.expected_batch:
            found.append(Check("second batch", entry.model_file, BATCH_INPUT, entry.expected_batch))
    torchscript = next((e for e in entries if e.format.name == "torchscript"), None)
    if torchscript and (folder / BF16_EXPECTED).is_file():
        found.append(Check("bf16", torchscript.model_file, INPUT, BF16_EXPECTED, drift_from=torchscript.expected))
    return found


def main(argv: list[str] | None = None) -> int:
    """``python -m torch_deploy formats [--first] [FOLDER]``: the model files exported into FOLDER (artifacts), one a
    line as paths, or the first alone (what make predict runs)."""
    parser = argparse.ArgumentParser(prog="python -m torch_deploy formats", description=main.__doc__)
    parser.add_argument("folder", nargs="?", type=Path, default=Path("artifacts"))
    parser.add_argument("--first", action="store_true", help="only the first format's model file")
    args = parser.parse_args(argv)
    try:
        entries = exported(args.folder)
    except ListingError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    for entry in entries[:1] if args.first else entries:
        print(args.folder / entry.model_file)
    return 0
