"""The exported formats, and the one reader of the list export.py writes of them (standard library only: make, CMake
and the bundle check call it without importing torch).

artifacts/formats.txt holds ``<format> <model file> <reference outputs> [<reference outputs at the second batch
size>] [device=<type>]`` per exported format, in deploy.json's order (the first is the default model file);
``device=cuda`` marks a model file compiled for GPUs (an AOTInductor package runs on the kind of device it was
compiled for; a TorchScript file runs on any). ``exported()`` reads it; ``checks()`` says what each model file is
checked against on a device, the one list that make verify, ctest and make package-check run (torch_deploy.verify).
``read_tuned()`` reads make tune's choice (tuned.txt), and ``default_model()`` names the model file that ts-infer and
torch_deploy::Model run when given the folder: that choice, else the first format's.
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
TUNED_FILE = "tuned.txt"  # make tune's choice (torch_deploy.tune); a new export removes it


MODES = ("onednn", "ofi", "none")  # ts-infer's --optimize modes, as tuned.txt names them
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Tuned:
    """make tune's choice (tuned.txt): a model file, and for a TorchScript file the --optimize mode and precision."""

    model_file: str
    optimize: str | None = None
    precision: str | None = None


def read_tuned(folder: Path) -> Tuned | None:
    """The choice in ``folder``/tuned.txt, read as torch_deploy::read_tuned() reads it: one line (after # comments)
    ``<model file> [optimize=<mode>] [precision=<precision>]``; None without the file. A malformed one raises
    ListingError."""
    file = folder / TUNED_FILE
    if not file.is_file():
        return None
    lines = [line.split() for line in file.read_text(encoding="utf-8").splitlines() if line.split()]
    lines = [fields for fields in lines if not fields[0].startswith("#")]
    settings = dict(field.partition("=")[::2] for field in lines[0][1:]) if len(lines) == 1 else {}
    valid = settings.keys() <= {"optimize", "precision"} and settings.get("optimize", MODES[0]) in MODES
    if len(lines) != 1 or not valid or settings.get("precision", PRECISIONS[0]) not in PRECISIONS:
        raise ListingError(
            f"{file}: not make tune's ({' / '.join(map(' '.join, lines))}); run make tune again, or delete it"
        )
    return Tuned(lines[0][0], settings.get("optimize"), settings.get("precision"))


def default_model(folder: Path) -> Path:
    """The model file that ts-infer and torch_deploy::Model run when given ``folder``: make tune's choice, else the
    first format's (torch_deploy::model_file())."""
    tuned = read_tuned(folder)
    return folder / (tuned.model_file if tuned else exported(folder)[0].model_file)


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

    def expected(self, batch: bool = False, device: str = "cpu") -> str:
        """The reference outputs' file; at the second batch size of a dynamic batch, ``<name>_batch.pt``. A model file
        that runs on any device (TorchScript) has its own on a GPU, ``<name>_cuda.pt`` (torch_deploy.reference): on a
        device of another type than the CPU, TF32 and other kernels give other numbers, as right as the CPU's."""
        name = self.expected_file
        if device != "cpu" and self.any_device:
            name = name.replace(".pt", f"_{device}.pt")
        return name.replace(".pt", "_batch.pt") if batch else name

    @property
    def any_device(self) -> bool:
        """Whether the model file runs on any device (TorchScript), rather than on the one it was compiled for."""
        return self.name == "torchscript"

    @property
    def packaged(self) -> bool:
        """Whether the model file is an AOTInductor package (.pt2)."""
        return self.name != "torchscript"

    @property
    def int8(self) -> bool:
        """Whether the model is quantized to int8 (its outputs drift from fp32's, within deploy.json's int8 gate)."""
        return self.name == "aoti_int8"


FORMATS = {
    "torchscript": Format("torchscript", "TorchScript", "model.pt", "expected.pt"),
    "aoti": Format("aoti", "AOTInductor", "model.pt2", "expected_aoti.pt"),
    "aoti_int8": Format("aoti_int8", "AOTInductor int8", "model_int8.pt2", "expected_int8.pt"),
}


@dataclass(frozen=True)
class Entry:
    """One line of formats.txt: a format, its model file, and its reference outputs (at the second batch size too,
    with a dynamic batch); ``device``, the type of device an AOTInductor package was compiled for (and ran on, to make
    its reference outputs)."""

    format: Format
    model_file: str
    expected: str
    expected_batch: str | None = None
    device: str = "cpu"

    def line(self) -> str:
        gpu = f"device={self.device}" if self.device != "cpu" else None
        return " ".join([self.format.name, self.model_file, self.expected, *filter(None, [self.expected_batch, gpu])])

    def runs_on(self, device: str) -> bool:
        """Whether the model file runs on ``device`` (cpu, cuda, cuda:N)."""
        return self.format.any_device or device.split(":")[0] == self.device


def write(folder: Path, entries: list[Entry]) -> None:
    """formats.txt in ``folder``, listing ``entries`` in order."""
    (folder / FORMATS_FILE).write_text(
        "# format, model file, reference outputs [at the second batch size] [device=<the GPU a package is compiled "
        "for>]: written by export.py, checked by make\n" + "".join(entry.line() + "\n" for entry in entries),
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
        device = fields.pop()[len("device=") :] if fields[-1].startswith("device=") else "cpu"
        if fields[0] not in FORMATS or len(fields) not in (3, 4):
            raise ListingError(f"{listed} is malformed ({line!r}); run make export")
        entries.append(Entry(FORMATS[fields[0]], fields[1], fields[2], fields[3] if len(fields) == 4 else None, device))
    if not entries:
        raise ListingError(f"{listed} lists no model file; run make export")
    return entries


@dataclass(frozen=True)
class Check:
    """One run of the C++ runner against Python's reference outputs: ``model`` on ``input`` on ``device`` must
    reproduce ``expected`` (bf16's outputs when ``expected`` is expected_bf16.pt, which records bf16 = 1: the runner
    takes its precision from the file). ``kind`` is "parity", "second batch" or "bf16"; ``drift_from`` the reference
    of the CPU or of fp32, which the outputs are also compared with."""

    kind: str
    model: str
    input: str
    expected: str
    drift_from: str | None = None
    device: str = "cpu"

    def arguments(self, folder: str | Path) -> list[str]:
        """The runner's arguments, with the files in ``folder`` (the artifacts, or where a bundle holds them)."""
        args = [f"{folder}/{self.model}", "--input", f"{folder}/{self.input}", "--expect", f"{folder}/{self.expected}"]
        args += ["--drift-from", f"{folder}/{self.drift_from}"] if self.drift_from else []
        return args + ["--device", self.device]


def checks(folder: Path, device: str = "cpu") -> list[Check]:
    """Every check of the artifacts in ``folder`` on ``device``: each format's model file that runs there on the
    reference input; at the second batch size when formats.txt names its outputs; model.pt in bf16 on the CPU when
    the project's precision is bf16 (export.py then wrote expected_bf16.pt). Off the CPU, model.pt is held to its
    reference on that type of device (torch_deploy.reference) and compared with the CPU's (the drift). The int8
    package's outputs are compared with the first fp32 format's reference too (its drift from fp32)."""
    kind = device.split(":")[0]
    found = []
    entries = exported(folder)
    fp32 = next((e for e in entries if not e.format.int8 and e.runs_on("cpu")), None) if kind == "cpu" else None
    for entry in entries:
        if not entry.runs_on(device):
            continue
        expected, batch = entry.expected, entry.expected_batch
        drift = None
        if kind != "cpu" and entry.format.any_device:  # the same file on a GPU: its reference there
            expected, batch, drift = entry.format.expected(False, kind), entry.format.expected(True, kind), expected
            batch = batch if entry.expected_batch else None
        if entry.format.int8 and fp32:  # its drift from the fp32 model's reference, shown beside its parity
            drift = fp32.expected
        found.append(Check("parity", entry.model_file, INPUT, expected, drift, device))
        if batch:
            found.append(Check("second batch", entry.model_file, BATCH_INPUT, batch, None, device))
    torchscript = next((e for e in entries if e.format.name == "torchscript"), None)
    if kind == "cpu" and torchscript and (folder / BF16_EXPECTED).is_file():
        found.append(Check("bf16", torchscript.model_file, INPUT, BF16_EXPECTED, torchscript.expected, device))
    return found


def not_checked(folder: Path, device: str) -> list[str]:
    """The model files of ``folder`` that do not run on ``device`` (a package compiled for another type of device),
    and why, one line each, for the parity driver to say."""
    return [
        f"{entry.model_file} is compiled for {'the CPU' if entry.device == 'cpu' else entry.device}: not checked on "
        f"{device} (make verify DEVICE={entry.device} checks it)"
        for entry in exported(folder)
        if not entry.runs_on(device)
    ]


def stale_references(folder: Path, device: str) -> list[str]:
    """The reference outputs on a GPU ``device`` of the model files that run on any device (model.pt) that ``folder``
    lacks, or holds from before the model file or input they come from: torch_deploy.reference makes them, after
    each export. None on the CPU, whose reference outputs are export's, as are those of a package compiled for GPUs."""
    if device.split(":")[0] == "cpu":
        return []
    any_device = {entry.model_file for entry in exported(folder) if entry.format.any_device}
    stale = []
    for check in checks(folder, device):
        expected = folder / check.expected
        sources = [folder / check.model, folder / check.input]
        if check.model in any_device and (
            not expected.is_file() or any(path.stat().st_mtime_ns > expected.stat().st_mtime_ns for path in sources)
        ):
            stale.append(check.expected)
    return stale


def main(argv: list[str] | None = None) -> int:
    """``python -m torch_deploy formats [--first | --default] [FOLDER]``: the model files exported into FOLDER
    (artifacts), one a line as paths; or the first format's alone; or the one ts-infer runs given the folder (make
    tune's choice, else the first)."""
    parser = argparse.ArgumentParser(prog="python -m torch_deploy formats", description=main.__doc__)
    parser.add_argument("folder", nargs="?", type=Path, default=Path("artifacts"))
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--first", action="store_true", help="only the first format's model file")
    which.add_argument("--default", action="store_true", help="only the one ts-infer runs given the folder")
    args = parser.parse_args(argv)
    try:
        entries = exported(args.folder)
        listed = [default_model(args.folder)] if args.default else [args.folder / e.model_file for e in entries]
    except ListingError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    print("\n".join(map(str, listed[:1] if args.first else listed)))
    return 0
