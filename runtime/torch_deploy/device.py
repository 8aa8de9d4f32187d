"""The device a model runs on, and whether this machine can run models there (standard library only: make, export and
the bundle check ask it without importing torch).

Devices are written as torch writes them: ``cpu``, ``cuda`` (the first GPU) and ``cuda:N``. deploy.json's "device" is
the project's (``cpu`` when it names none); make's ``DEVICE=`` and ts-infer's ``--device`` choose another for a run.
Whether a GPU can run models is asked of the NVIDIA driver itself (libcuda.so.1, through ctypes), as the C++ library
asks it (the runtime's src/device.cpp), so that Python and C++ give the same answer in the same words.

    python -m torch_deploy device [DEVICE] [--config deploy.json]   the device to use: DEVICE, else deploy.json's
    python -m torch_deploy device --check [DEVICE]                  exit 1 with one line when no model can run there
"""

from __future__ import annotations

import argparse
import ctypes
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = "deploy.json"
DEVICE_PATTERN = re.compile(r"(cpu|cuda)(?::(\d+))?")
DRIVER = "libcuda.so.1"  # the NVIDIA driver's library: it comes with the machine's driver, never with a program


class DeviceError(Exception):
    """Raised for a device that is not one, or one that this machine cannot run models on; the message is one line."""


@dataclass(frozen=True)
class Device:
    """A device as torch names it: its type (cpu, cuda) and, for a GPU, its index when one was given."""

    type: str
    index: int | None = None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    @property
    def is_gpu(self) -> bool:
        return self.type == "cuda"


def parse(text: str) -> Device:
    """``cpu``, ``cuda`` or ``cuda:N``; anything else raises DeviceError naming it and what to write instead."""
    match = DEVICE_PATTERN.fullmatch(text.strip())
    if not match or (match.group(1) == "cpu" and match.group(2) is not None):
        raise DeviceError(f"device {text!r} is not a device: use cpu, cuda or cuda:N (N: a GPU's index, from 0)")
    return Device(match.group(1), None if match.group(2) is None else int(match.group(2)))


def of_config(config: dict) -> Device:
    """deploy.json's "device" (cpu when it names none: a project made before there was a choice)."""
    value = config.get("device", "cpu")
    try:
        return parse(str(value))
    except DeviceError as err:
        raise DeviceError(f'{err}; fix "device" in {CONFIG_FILE}') from err


def project_device(file: Path) -> Device:
    """The device a project's deploy.json (``file``) names, else cpu (also when there is no such file)."""
    if not file.is_file():
        return Device("cpu")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DeviceError(f"{file}: not valid JSON ({err}); fix it, or take it back from git") from err
    return of_config(config)


def driver_problem() -> str | None:
    """Why the NVIDIA driver cannot run anything here, or None: its library missing, or cuInit failing."""
    try:
        driver = ctypes.CDLL(DRIVER)
    except OSError as err:
        return f"no NVIDIA driver on this machine ({DRIVER}: {str(err).split(': ', 1)[-1]})"
    status = driver.cuInit(0)
    if status != 0:
        return f"the NVIDIA driver does not start (cuInit: {driver_error(driver, status)})"
    return None


def driver_error(driver: ctypes.CDLL, status: int) -> str:
    """The driver's own name of an error code: "CUDA_ERROR_NO_DEVICE, no CUDA-capable device is detected"."""
    name, text = ctypes.c_char_p(), ctypes.c_char_p()
    driver.cuGetErrorName(status, ctypes.byref(name))
    driver.cuGetErrorString(status, ctypes.byref(text))
    return ", ".join(part.value.decode() for part in (name, text) if part.value) or f"error {status}"


def gpu_count() -> int:
    """How many GPUs the NVIDIA driver sees (0 without a driver)."""
    if driver_problem():
        return 0
    count = ctypes.c_int(0)
    return count.value if ctypes.CDLL(DRIVER).cuDeviceGetCount(ctypes.byref(count)) == 0 else 0


def problem(device: Device) -> str | None:
    """What this machine lacks to run models on ``device``, in a few words, or None (always None for the CPU). The
    C++ library says the same (src/device.cpp), and adds what a build of its own may lack."""
    if not device.is_gpu:
        return None
    missing = driver_problem()
    if missing:
        return missing
    count = gpu_count()
    if count == 0:
        return "the NVIDIA driver finds no GPU on this machine"
    if device.index is not None and device.index >= count:
        return f"{device} does not exist: this machine has {count} GPU{'s' if count > 1 else ''} (cuda:0 to cuda:{count - 1})"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torch_deploy device", description=__doc__.splitlines()[0])
    parser.add_argument("device", nargs="?", help="a device (default: deploy.json's)")
    parser.add_argument("--config", type=Path, default=Path(CONFIG_FILE), help="the project's deploy.json")
    parser.add_argument("--check", action="store_true", help="exit 1 with one line when no model can run there")
    args = parser.parse_args(argv)
    try:
        device = parse(args.device) if args.device else project_device(args.config)
    except DeviceError as err:
        print(f"device: FAIL: {err}", file=sys.stderr)
        return 2
    missing = problem(device) if args.check else None
    if missing:
        print(
            f"device: FAIL: {device}: {missing}; run it where an NVIDIA GPU and its driver are, or on the CPU: DEVICE=cpu"
        )
        return 1
    if not args.check:
        print(device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
