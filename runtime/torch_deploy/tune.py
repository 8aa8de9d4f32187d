"""Choose, by measurement on this machine, the fastest way to run the model that still reproduces Python (make tune).

    python -m torch_deploy tune --runner build/ts-infer          # in the project folder: what `make tune` runs
    python -m torch_deploy tune --runner build/ts-infer --runs 200 --rounds 5 --threads 2

The candidates are the ways the runner can run what export.py wrote, on the CPU: model.pt in each --optimize mode
(onednn, ofi, none), in fp32 and, where the CPU has native bf16 (AVX512-BF16 or AMX), in bf16; and model.pt2 as
compiled. Each one first runs the checks make verify runs for it (parity on the reference input, and at the second
batch size; bf16 against Python's bf16 outputs with their measured tolerance, its drift from fp32 shown); a candidate
that fails them is out, whatever its speed. The others are timed by the runner's own --bench, in rounds that take
each candidate in turn (so that the machine's drift falls on all of them alike); the median of a candidate's p50s
decides. The table it chose from is printed, and bench/tune.json keeps it.

The choice goes to artifacts/tuned.txt: ts-infer and torch_deploy::Model, given the artifacts folder (the bundle's
share/<project>/, make install's) run that model file, and given that model file run it that way, unless they are told
another --optimize or --precision. make verify checks the choice (its mode; and bf16's reference, which tune adds
when bf16 wins and export did not write it). make export removes tuned.txt: a new export needs a new choice.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from torch_deploy.formats import BF16_EXPECTED, INPUT, MODES, TUNED_FILE, Check, ListingError, checks, exported
from torch_deploy.verify import PARITY_LINE

RESULTS = Path("bench") / "tune.json"


class TuneError(Exception):
    """Raised when no candidate can be chosen; the message says why and what to do."""


@dataclass(frozen=True)
class Candidate:
    """One way to run a model file: a TorchScript file's --optimize mode and precision; a package has neither."""

    model: str
    optimize: str | None = None
    precision: str = "fp32"

    @property
    def name(self) -> str:
        return " ".join([self.model, *([self.optimize, self.precision] if self.optimize else [])])

    def options(self) -> list[str]:
        return ["--optimize", self.optimize, "--precision", self.precision] if self.optimize else []

    def line(self) -> str:
        """Its line in tuned.txt."""
        settings = [f"optimize={self.optimize}", f"precision={self.precision}"] if self.optimize else []
        return " ".join([self.model, *settings])


def candidates(artifacts: Path, bf16: bool) -> list[Candidate]:
    """Every way to run the model files of ``artifacts`` on the CPU, the runner's default (the first format's file
    in its default mode) first."""
    found = []
    for entry in exported(artifacts):
        if not entry.runs_on("cpu"):
            continue  # a package compiled for GPUs
        if entry.format.name == "torchscript":
            found += [Candidate(entry.model_file, mode) for mode in MODES]
            found += [Candidate(entry.model_file, mode, "bf16") for mode in MODES if bf16]
        else:
            found.append(Candidate(entry.model_file))
    return found


def checks_of(candidate: Candidate, artifacts: Path, bf16_reference: Path | None) -> list[list[str]]:
    """The runner's arguments for each check of ``candidate``: make verify's checks of its model file (fp32), or the
    bf16 check against ``bf16_reference`` (bf16), each with the candidate's options."""
    if candidate.precision == "bf16":
        assert bf16_reference is not None
        fp32 = next(check for check in checks(artifacts) if check.model == candidate.model)
        check = Check("bf16", candidate.model, INPUT, bf16_reference.name, fp32.expected)
        arguments = check.arguments(artifacts)
        arguments[arguments.index("--expect") + 1] = str(bf16_reference)  # beside the artifacts until it is chosen
        return [arguments + candidate.options()]
    return [
        check.arguments(artifacts) + candidate.options()
        for check in checks(artifacts)
        if check.model == candidate.model and check.kind in ("parity", "second batch")
    ]


def parity(runner: Path, arguments: list[str]) -> tuple[bool, str]:
    """Whether one check passes, and its parity line's result (``PASS: max abs diff ...``)."""
    result = subprocess.run([str(runner), *arguments], capture_output=True, text=True)
    line = next((line for line in result.stdout.splitlines() if PARITY_LINE.match(line)), "")
    said = line.split(": ", 1)[1] if line else (result.stderr.strip().splitlines() or ["no parity line"])[-1]
    return result.returncode == 0 and said.startswith("PASS"), said


def summary(said: str) -> str:
    """A parity result in a few words: PASS or FAIL, the max abs diff, and bf16's drift from fp32."""
    diff = re.search(r"max abs diff ([-+.e0-9]+)", said)
    drift = re.search(r"drift from [^:]*: max abs diff ([-+.e0-9]+)", said)
    words = [said.split(":")[0]]
    words += [f"max abs diff {diff.group(1)}"] if diff else [said[:60]]
    words += [f"drift from fp32 {drift.group(1)}"] if drift else []
    return ", ".join(words)


def bf16_reference(artifacts: Path, folder: Path) -> Path | None:
    """Python's bf16 outputs of model.pt with their measured tolerance: export's when it wrote them (a bf16 project),
    else made now into ``folder`` the way export makes them (torch_deploy.export.record_bf16). None when model.pt
    does not run in bf16 (the candidates in bf16 are then out)."""
    if (artifacts / BF16_EXPECTED).is_file():
        return artifacts / BF16_EXPECTED
    from torch_deploy import export
    from torch_deploy.artifacts import load_tensors

    torchscript = next(entry for entry in exported(artifacts) if entry.format.name == "torchscript")
    named_inputs, _ = load_tensors(artifacts / INPUT)
    fp32, _ = load_tensors(artifacts / torchscript.expected)
    (folder / torchscript.model_file).symlink_to((artifacts / torchscript.model_file).resolve())  # what it runs
    try:
        export.record_bf16(folder, named_inputs, list(fp32.values()), export.load_config())
    except export.ExportError as err:
        print(f"tune: bf16 left out: {err}")
        return None
    return folder / BF16_EXPECTED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torch_deploy tune", description=__doc__.splitlines()[0])
    parser.add_argument("--runner", type=Path, required=True, help="the C++ runner (build/ts-infer)")
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="the exported files")
    parser.add_argument("--runs", type=int, default=100, help="timed runs per candidate and round (default 100)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every candidate (default 3)")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (default: libtorch's choice)")
    args = parser.parse_args(argv)
    if min(args.runs, args.rounds) < 1 or min(args.warmup, args.threads) < 0:
        parser.error("--runs and --rounds take numbers >= 1, --warmup and --threads numbers >= 0")
    try:
        return tune(args)
    except (ListingError, TuneError) as err:
        print(f"tune: FAIL: {err}")
        return 1


def tune(args: argparse.Namespace) -> int:
    from torch_deploy.artifacts import native_bf16
    from torch_deploy.bench import time_cpp  # imports torch

    artifacts = args.artifacts
    (artifacts / TUNED_FILE).unlink(missing_ok=True)  # the runs below are the runner's defaults otherwise
    bf16 = native_bf16() and any(entry.format.name == "torchscript" for entry in exported(artifacts))
    if not bf16:
        print("tune: bf16 left out: this CPU has no native bf16 (AVX512-BF16 or AMX), where it is slower than fp32")
    with tempfile.TemporaryDirectory(prefix="tune-") as scratch:
        reference = bf16_reference(artifacts, Path(scratch)) if bf16 else None
        found = [c for c in candidates(artifacts, bf16) if c.precision == "fp32" or reference]
        checked = {}
        for candidate in found:
            results = [parity(args.runner, arguments) for arguments in checks_of(candidate, artifacts, reference)]
            failed = next((said for ok, said in results if not ok), None)
            checked[candidate] = (failed is None, summary(failed or results[0][1]))
        passing = [candidate for candidate in found if checked[candidate][0]]
        if not passing:
            raise TuneError("no way of running the model reproduces Python (lines above); run make verify")
        timings: dict[Candidate, list[float]] = {candidate: [] for candidate in passing}
        threads = args.threads
        for _ in range(args.rounds):
            for candidate in passing:
                measured = time_cpp(args.runner, artifacts / candidate.model, args.runs, args.warmup, args.threads,
                                    *candidate.options(), inputs=artifacts / INPUT)  # fmt: skip
                timings[candidate].append(measured["p50_ms"])
                threads = measured["threads"]
        medians = {candidate: statistics.median(times) for candidate, times in timings.items()}
        chosen = min(passing, key=medians.__getitem__)
        if chosen.precision == "bf16" and reference and reference.parent != artifacts:
            shutil.copy2(reference, artifacts / BF16_EXPECTED)  # make verify checks the choice from now on
    default = found[0]
    print(f"tune: {len(found)} candidates, {args.rounds} rounds of {args.runs} runs, {threads} threads")
    print(f"{'candidate':<28} {'p50 ms':>8}  {'x default':>9}  parity")
    for candidate in found:
        ok, said = checked[candidate]
        speed = (
            f"{medians[candidate]:8.3f}  {medians[candidate] / medians[default]:9.2f}" if ok else f"{'-':>8}  {'':>9}"
        )
        mark = "  <- chosen" if candidate == chosen else ""
        print(f"{candidate.name:<28} {speed}  {said}{mark}")
    write_tuned(artifacts, chosen, threads)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "threads": threads,
                "rounds": args.rounds,
                "runs": args.runs,
                "chosen": chosen.name,
                "candidates": [
                    {"name": c.name, "parity": checked[c][1], "passed": checked[c][0], "p50_ms": timings.get(c)}
                    for c in found
                ],
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    ratio = medians[chosen] / medians[default]
    print(f"tune: chose {chosen.name}: {ratio:.2f} x the default ({default.name}); wrote {artifacts / TUNED_FILE}")
    return 0


def write_tuned(artifacts: Path, chosen: Candidate, threads: int) -> None:
    """artifacts/tuned.txt, which torch_deploy::read_tuned() reads."""
    (artifacts / TUNED_FILE).write_text(
        f"# make tune's choice, measured with {threads} threads on this machine: the fastest way to run the model that "
        "reproduces Python. ts-infer and torch_deploy::Model use it unless told otherwise; make export removes it.\n"
        f"{chosen.line()}\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    raise SystemExit(main())
