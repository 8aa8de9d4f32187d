"""python -m torch_deploy: the runtime's commands, and where its CMake package is.

python -m torch_deploy --version
python -m torch_deploy --cmakedir            # for CMake: find_package(TorchDeploy) with TorchDeploy_DIR=<this>
python -m torch_deploy COMMAND [ARGS...]     # in the project folder: export, formats, device, reference, verify,
                                             # bench, tune, predict, triton, package, package-check, requirements,
                                             # libtorch
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import torch_deploy

HERE = Path(__file__).resolve().parent

# Each command and the module whose main(argv) runs it (imported only when asked for: most import torch).
COMMANDS = {
    "export": ("export", "export the model and record the reference outputs (make export)"),
    "formats": ("formats", "the model files export.py wrote (--first: the one make predict runs)"),
    "device": ("device", "the device models run on, and whether this machine has it (--check)"),
    "reference": ("reference", "model.pt's reference outputs on a GPU (make verify DEVICE=cuda makes them)"),
    "verify": ("verify", "the C++ runner against Python's reference outputs (make verify)"),
    "bench": ("bench", "time C++, Python, ONNX Runtime and OpenVINO side by side (make bench)"),
    "tune": ("tune", "choose the fastest way to run the model that reproduces Python (make tune)"),
    "predict": ("predict", "classify images in Python, the reference of ts-infer --image"),
    "triton": ("triton_repository", "write a Triton Inference Server model repository (make triton)"),
    "package": ("bundle", "report the bundle of make package"),
    "package-check": ("bundle", "run the bundle's parity check in a bare root (make package-check)"),
    "requirements": ("discover", "check that this Python has the project's packages (make requirements)"),
    "libtorch": ("discover", "the libtorch a build would use"),
}

# The commands whose module imports torch (the others are standard library only).
NEEDS_TORCH = {"export", "reference", "bench", "tune", "predict", "triton"}
# The commands that are a subcommand of their module's own command line.
SUBCOMMANDS = {"package": "report", "package-check": "check", "requirements": "requirements", "libtorch": "libtorch"}


def usage() -> str:
    lines = [__doc__.strip().splitlines()[0], "", "commands:"]
    lines += [f"  {name:<15}{text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(torch_deploy.__version__)
        return 0
    if argv[0] == "--cmakedir":
        print(HERE / "cmake")
        return 0
    if argv[0] not in COMMANDS:
        print(f"python -m torch_deploy: unknown command {argv[0]!r}; {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    if argv[0] in NEEDS_TORCH and importlib.util.find_spec("torch") is None:  # a fresh machine's first error: one line
        print(
            f"ERROR: torch is not installed for {sys.executable}; {sys.executable} -m pip install -r requirements.txt, "
            "or run make with PYTHON=/path/to/the/python/that/has/torch",
            file=sys.stderr,
        )
        return 1
    module = importlib.import_module(f"torch_deploy.{COMMANDS[argv[0]][0]}")
    subcommand = SUBCOMMANDS.get(argv[0])
    args = [*([subcommand] if subcommand else []), *argv[1:]]
    if argv[0] == "libtorch" and "--python" not in args:  # this Python's torch, unless another one is named
        args += ["--python", sys.executable]
    return int(module.main(args))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
