"""The one parity driver: the C++ runner against every reference output export.py recorded (standard library only).

    python -m torch_deploy verify --runner build/ts-infer [--device cuda] [--artifacts artifacts] [--log build/parity.log]
    python -m torch_deploy verify --summary --log build/parity.log --tests build/tests.log

The first form runs each check of ``torch_deploy.formats.checks()`` on the device (deploy.json's by default: each
format's model file that runs there on the reference input, at the second batch size, and in bf16) and prints the
runner's parity lines, labelled by model file when there are several formats and by device off the CPU; on the first
failure it prints one ``verify: FAIL:`` line and exits 1. make verify runs it, then the
project's tests, then the second form, which prints the one summary line. ctest runs the first form too (``--label
ctest``), and make package-check runs the same checks in a bare root (torch_deploy.bundle).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from torch_deploy import device as devices
from torch_deploy.formats import Check, ListingError, checks, not_checked, stale_references

# What each kind of check is called in its parity line, after the runner's own "parity" / "parity in bf16".
_SUFFIXES = {"parity": "", "second batch": " at the second batch size", "bf16": ""}


# The runner's parity line: "parity", "parity in bf16", "parity on cuda:0" (off the CPU).
PARITY_LINE = re.compile(r"^parity( in bf16)?( on \S+)?:", re.MULTILINE)


def label(check: Check, several: bool) -> str:
    """``parity``, ``parity of model.pt`` (several formats), ``parity at the second batch size``, ``parity in bf16``,
    and ``on cuda`` after the first words off the CPU."""
    of = f" of {check.model}" if several and check.kind != "bf16" else ""
    on = f" on {check.device}" if check.device != "cpu" else ""
    return ("parity in bf16" if check.kind == "bf16" else "parity" + of) + on + _SUFFIXES[check.kind]


def failure(check: Check) -> str:
    """The one line that says which check failed, and what to do."""
    if check.kind == "bf16":
        return f"the C++ output of {check.model} in bf16 differs from Python's in bf16 (line above)"
    if check.kind == "second batch":
        return f"the C++ output of {check.model} differs from Python's at the second batch size (line above)"
    return f"the C++ output of {check.model} differs from Python's (parity line above); if the model changed run make export"


def run_checks(runner: list[str], artifacts: Path, shown: str | Path, log: Path | None, device: str = "cpu") -> bool:
    """Run every check of ``artifacts`` on ``device`` with ``runner`` (a command: the runner, or the runner inside a
    bare root), its files named under ``shown``. Prints the first form's output; False after the first failure."""
    found = checks(artifacts, device)
    for line in not_checked(artifacts, device):
        print(f"verify: note: {line}")
    several = len({check.model for check in found}) > 1
    lines: list[str] = []
    ok = True
    for check in found:
        result = subprocess.run([*runner, *check.arguments(shown)], capture_output=True, text=True)
        sys.stderr.write(result.stderr)
        named = label(check, several)
        output = PARITY_LINE.sub(f"{named}:", result.stdout)
        parity = [line for line in output.splitlines() if line.startswith(f"{named}:")]
        # The whole output of the main checks (the tutorial's lines, the top-5); the parity line alone of the others.
        sys.stdout.write(output if check.kind == "parity" else "".join(line + "\n" for line in parity))
        lines += parity
        if result.returncode != 0 or not parity:
            print(f"verify: FAIL: {failure(check)}")
            ok = False
            break
    sys.stdout.flush()
    if log:
        log.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return ok


def make_references(artifacts: Path, device: devices.Device) -> bool:
    """model.pt's reference outputs on ``device`` (a GPU), made by Python there (torch_deploy.reference, which needs
    torch: this module does not import it); False after its one FAIL line."""
    command = [
        sys.executable,
        "-m",
        "torch_deploy",
        "reference",
        "--device",
        str(device),
        "--artifacts",
        str(artifacts),
    ]
    sys.stdout.flush()
    return subprocess.run(command).returncode == 0


def summary(log: Path, tests: Path) -> str:
    """make verify's last line: each parity result, the tests' result, and whether it is last run's."""
    lines = log.read_text(encoding="utf-8").splitlines()
    parts, on = [], ""
    for line in lines:
        if " at the second batch size: " in line:
            continue
        match = re.match(r"parity(?: of (\S+))?(?: on (\S+))?: PASS: (.*?)(?:; drift from [^:]*: ([^;]*)(.*))?$", line)
        if match:
            model, device, result, drift, rest = match.groups()
            on = f" on {device}" if device else on
            # a drift is from the CPU's outputs on a GPU, and from fp32's for the int8 package (CPU only)
            shown = f"{result}{rest} (drift from {'the CPU' if device else 'fp32'}: {drift})" if drift else result
            parts.append(f"{model}: {shown}" if model else shown)
        match = re.match(r"parity in bf16: PASS: (.*); drift from [^:]*: ([^;]*)(.*)", line)
        if match:  # the drift (up to the relative diff and any note) goes last, in parentheses
            parts.append(f"bf16: {match.group(1)}{match.group(3)} (drift from fp32: {match.group(2)})")
    batch = ", also at a second batch size" if any("at the second batch size: PASS" in line for line in lines) else ""
    rerun = "" if tests.stat().st_mtime_ns > log.stat().st_mtime_ns else " (inputs unchanged: last run's result)"
    tested = tests.read_text(encoding="utf-8").splitlines()[-1]
    return f"verify: PASS: C++ reproduces Python{on} ({'; '.join(parts)}{batch}); tests: {tested}{rerun}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torch_deploy verify", description=__doc__.splitlines()[0])
    parser.add_argument("--runner", type=Path, help="the C++ runner (build/ts-infer)")
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="the exported files")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: TORCH_DEPLOY_DEVICE, else deploy.json's)")
    parser.add_argument("--log", type=Path, help="where the parity lines are kept (for the summary)")
    parser.add_argument("--summary", action="store_true", help="print the summary line of --log and --tests")
    parser.add_argument("--tests", type=Path, help="with --summary: the project's test log")
    args = parser.parse_args(argv)
    if args.summary:
        if not (args.log and args.tests):
            parser.error("--summary needs --log and --tests")
        print(summary(args.log, args.tests))
        return 0
    if not args.runner:
        parser.error("--runner is missing")
    try:
        asked = args.device or os.environ.get("TORCH_DEPLOY_DEVICE")  # make's DEVICE, for ctest too
        device = devices.parse(asked) if asked else devices.project_device(Path(devices.CONFIG_FILE))
        missing = devices.problem(device)
        if missing:
            print(f"verify: FAIL: {device}: {missing}; verify on the CPU (DEVICE=cpu), or where the GPU is")
            return 1
        if stale_references(args.artifacts, str(device)) and not make_references(args.artifacts, device):
            return 1
        return 0 if run_checks([str(args.runner)], args.artifacts, args.artifacts, args.log, str(device)) else 1
    except (ListingError, devices.DeviceError) as err:
        print(f"verify: FAIL: {err}")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
