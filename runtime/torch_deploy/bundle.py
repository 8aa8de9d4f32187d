"""The bundle `make package` writes (dist/<project>-<version>-linux-<arch>.tar.gz): what it holds, and the proof that
it runs where there is nothing else. Standard library only.

  python -m torch_deploy package BUILD_DIR [--bundle DIR]        the archive (or an unpacked bundle) and every library
                                                                  in it, with sizes
  python -m torch_deploy package-check BUILD_DIR [--bundle DIR] [--device D]
                                                                  unpack it (or take an unpacked one) and run the
                                                                  parity checks and the tutorial's lines in a bare root

The bare root holds the bundle and the system's C and C++ runtime (cmake/system-libraries.txt beside this file) and
nothing else: no Python, no torch, no build tree, no environment variable. It is a private mount namespace (unshare)
with /proc, /sys and /dev bound in, entered with chroot; no daemon is needed. Any library the bundle misses is named in
one line. The checks run on the project's device (deploy.json's) where this machine has it, the NVIDIA driver's
libraries then given to the root as the machine's (a GPU bundle never carries them); else on the CPU, and a line says
so: a GPU bundle runs on the CPU too.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from torch_deploy import device as devices
from torch_deploy.formats import ListingError, checks

HERE = Path(__file__).resolve().parent
MB = 1e6
# What the dynamic loader says when a library cannot be found (at start-up, or when a .pt2's model code is opened).
MISSING = re.compile(r"([^\s:]+\.so[.\d]*): cannot open shared object file")


class CheckError(Exception):
    """A failure the user can act on: one line."""


def system_libraries() -> list[re.Pattern[str]]:
    lines = (HERE / "cmake" / "system-libraries.txt").read_text().splitlines()
    return [re.compile(line) for line in lines if line and not line.startswith("#")]


def cpack_setting(build: Path, name: str) -> str:
    config = build / "CPackConfig.cmake"
    if not config.exists():
        raise CheckError(f"{config} is missing; run make build (or make package) first")
    match = re.search(rf'^set\({name} "([^"]*)"\)', config.read_text(), re.MULTILINE)
    if not match:
        raise CheckError(f"{config} sets no {name}; configure again: rm -rf {build} && make package")
    return match.group(1)


def archive_of(build: Path) -> Path:
    name = cpack_setting(build, "CPACK_PACKAGE_FILE_NAME")
    archive = Path(cpack_setting(build, "CPACK_PACKAGE_DIRECTORY")) / f"{name}.tar.gz"
    if not archive.exists():
        raise CheckError(f"{archive} is missing; run make package first")
    return archive


def libtorch_of(build: Path) -> Path | None:
    """The libtorch folder this build linked, as the plugin recorded it in the cache."""
    match = re.search(r"^_TORCH_DEPLOY_PREFIX:INTERNAL=(.*)$", (build / "CMakeCache.txt").read_text(), re.MULTILINE)
    return Path(match.group(1)) if match else None


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


# The CUDA libraries a GPU bundle carries: libtorch's own and those of NVIDIA's wheels (cuDNN, cuBLAS, NCCL, ...).
CUDA_LIBRARY = re.compile(r"^lib(torch_cuda|c10_cuda|torch_nvshmem|cu|nv|nccl)[^/]*\.so")


def contents(build: Path, bundle: Path | None) -> tuple[str, list[tuple[str, int]]]:
    """What a bundle holds: its name for people ("dist/x.tar.gz (812.3 MB; 2012.4 MB unpacked)", or the unpacked
    folder with its size), and each file below its top folder with its size."""
    if bundle is not None:
        paths = [path for path in bundle.rglob("*") if path.is_file() and not path.is_symlink()]
        files = [(str(path.relative_to(bundle)), path.stat().st_size) for path in paths]
        return f"{bundle} ({sum(size for _, size in files) / MB:.1f} MB)", files
    archive = archive_of(build)
    with tarfile.open(archive) as tar:
        files = [(member.name.split("/", 1)[-1], member.size) for member in tar.getmembers() if member.isfile()]
    unpacked = sum(size for _, size in files)
    return f"{archive} ({archive.stat().st_size / MB:.1f} MB; {unpacked / MB:.1f} MB unpacked)", files


def report(build: Path, bundle: Path | None = None) -> None:
    """The bundle and each library in it, largest first, with sizes, and how much of it is CUDA's."""
    name, files = contents(build, bundle)
    libraries = sorted(((path, size) for path, size in files if re.fullmatch(r"lib/[^/]+\.so[.\d]*", path)),
                       key=lambda item: -item[1])  # fmt: skip
    print(f"package: {name}")
    for path, size in libraries:
        print(f"  {size / MB:9.1f} MB  {path}")
    total = sum(size for _, size in libraries)
    cuda = [size for path, size in libraries if CUDA_LIBRARY.match(Path(path).name)]
    if cuda:
        print(f"  {sum(cuda) / MB:9.1f} MB  in its {len(cuda)} CUDA libraries (from the torch and nvidia wheels; the "
              "NVIDIA driver's libcuda.so.1 is the machine's, never the bundle's)")  # fmt: skip
    libtorch = libtorch_of(build)
    against = ""
    if libtorch and (libtorch / "lib").is_dir():
        against = f" (the libtorch it came from: {folder_size(libtorch / 'lib') / MB:.1f} MB in {libtorch / 'lib'})"
    print(f"  {total / MB:9.1f} MB  in {len(libraries)} libraries{against}")
    print("package: check that it runs alone with: make package-check")


def is_elf(path: Path) -> bool:
    with path.open("rb") as file:  # the magic alone: libtorch_cpu.so is 450 MB
        return file.read(4) == b"\x7fELF"


def elf_files(bundle: Path) -> list[Path]:
    return [
        path
        for path in sorted((bundle / "bin").iterdir()) + sorted((bundle / "lib").iterdir())
        if path.is_file() and not path.is_symlink() and is_elf(path)
    ]


def runtime_files(bundle: Path) -> set[Path]:
    """The system's C and C++ runtime libraries the bundle's programs and libraries use, and the dynamic loader, as
    this machine resolves them (ldd): all that the bare root is given besides the bundle."""
    patterns = system_libraries()
    found: set[Path] = set()
    for elf in elf_files(bundle):
        listing = subprocess.run(["ldd", str(elf)], capture_output=True, text=True).stdout
        for line in listing.splitlines():
            match = re.match(r"\s*(\S+)(?: => (\S+))? \(0x", line)
            if not match:
                continue
            name, path = match.group(1), match.group(2) or match.group(1)
            if path.startswith("/") and any(pattern.search(Path(name).name) for pattern in patterns):
                found.add(Path(path))
    return found


def driver_files() -> set[Path]:
    """The NVIDIA driver's user-space libraries, as this machine has them: libcuda.so.1 (which a GPU bundle never
    carries: it must match the kernel's driver), the libnvidia-*.so libraries beside it that it loads, and the system
    libraries they need. Given to a bare root that checks a bundle on the GPU."""
    import ctypes  # noqa: PLC0415  (only a check on the GPU needs it)

    ctypes.CDLL(devices.DRIVER)  # loaded, so that its file is in this process's map
    maps = Path("/proc/self/maps").read_text()
    driver = next((Path(line.split()[-1]) for line in maps.splitlines() if "/libcuda.so" in line), None)
    if driver is None:
        return set()
    found = {path for pattern in ("libcuda.so*", "libnvidia-*.so*") for path in driver.parent.glob(pattern)}
    for library in list(found):
        listing = subprocess.run(["ldd", str(library)], capture_output=True, text=True).stdout
        found.update(Path(path) for path in re.findall(r"=> (/\S+) \(0x", listing))
    return found


def make_root(root: Path, bundle: Path, extra: set[Path] | None = None) -> list[str]:
    """A root holding the system runtime at the paths the loader looks in (and ``extra`` files, at their paths),
    and empty mount points."""
    for folder in ("proc", "sys", "dev", "bundle"):
        (root / folder).mkdir(parents=True)
    (root / "tmp").mkdir(mode=0o1777)
    os.chmod(root / "tmp", 0o1777)  # an AOTInductor package unpacks its model code there
    runtime = runtime_files(bundle) | (extra or set())
    for path in runtime:
        target = root / path.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path.resolve(), target)
    return sorted(path.name for path in runtime)


def run_in_root(root: Path, bundle: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """`args` (paths inside the root, the bundle at /bundle) run by chroot with an empty environment."""
    # $0 is the root, $1 the bundle; private propagation: nothing mounted here is seen outside, nor removed with it.
    script = (
        'set -e; for d in proc sys dev; do mount --rbind "/$d" "$0/$d"; done; mount --bind "$1" "$0/bundle"; '
        'shift; chroot=$1; shift; exec env -i "$chroot" "$0" "$@"'
    )
    namespace = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        namespace[1:1] = ["--user", "--map-root-user"]
    # Found before the environment is emptied (it is /usr/sbin/chroot, which a user's PATH may not have).
    chroot = shutil.which("chroot", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin") or "chroot"
    command = [*namespace, "sh", "-c", script, str(root), str(bundle), chroot, *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 and re.search(r"^(unshare|mount|chroot): ", result.stderr, re.MULTILINE):
        reason = result.stderr.strip().splitlines()[-1]
        raise CheckError(
            f"cannot make a bare root here ({reason}); run it as root (sudo make package-check), or allow user "
            "namespaces (Ubuntu 24.04: sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0)"
        )
    return result


def checked_device(asked: str | None) -> devices.Device:
    """The device the bundle is checked on: the one asked for, which must be usable here; else the project's
    (deploy.json's) where this machine has it, else the CPU, with a line saying why."""
    if asked:
        device = devices.parse(asked)
        missing = devices.problem(device)
        if missing:
            raise CheckError(f"--device {device}: {missing}; check it on the CPU (--device cpu), or where the GPU is")
        return device
    device = devices.project_device(Path(devices.CONFIG_FILE))
    missing = devices.problem(device)
    if missing:
        print(f"package-check: note: {device} (deploy.json's device): {missing}; the bundle is checked on the CPU")
        return devices.Device("cpu")
    return device


def check(build: Path, bundle: Path | None, asked: str | None = None) -> None:
    device = checked_device(asked)
    origin = archive_of(build) if bundle is None else bundle
    if bundle is not None and not (bundle / "share").is_dir():
        raise CheckError(f"{bundle} is not an unpacked bundle of make package (it has no share/ folder)")
    # The new folder goes below the build folder, not /tmp: a bundle unpacks to several hundred MB.
    workdir = Path(tempfile.mkdtemp(prefix="package-check-", dir=build if build.is_dir() else None))
    try:
        if bundle is None:
            with tarfile.open(origin) as tar:
                tar.extractall(workdir / "unpacked", filter="tar")
            (bundle,) = (workdir / "unpacked").iterdir()
        bundle = bundle.resolve()
        shares = [folder for folder in (bundle / "share").iterdir() if (folder / "formats.txt").exists()]
        if len(shares) != 1:
            raise CheckError(f"{origin} is not a bundle of make package (no share/<project>/formats.txt)")
        share = Path("/bundle/share") / shares[0].name
        runtime = make_root(workdir / "root", bundle, driver_files() if device.is_gpu else None)
        lines = []
        try:
            listed = checks(shares[0], str(device))
        except ListingError as err:
            raise CheckError(
                f"the bundle has no valid formats.txt in share/ ({err}); run make export, then make package"
            ) from err
        runs = [(check.model, check.kind, check.arguments(share)) for check in listed]
        # The tutorial's lines on each model file; the first is given as the folder, as the Dockerfile's CMD gives it.
        # On another device than the project's (a GPU project checked on the CPU), the runner is told which.
        models = list(dict.fromkeys(c.model for c in listed))
        elsewhere = [] if device == devices.project_device(Path(devices.CONFIG_FILE)) else ["--device", str(device)]
        runs += [
            (model, "the tutorial's lines", [f"{share}/{model}" if model != models[0] else str(share), *elsewhere])
            for model in models
        ]
        for model, what, args in runs:
            result = run_in_root(workdir / "root", bundle, ["/bundle/bin/ts-infer", *args])
            output = result.stdout + result.stderr
            on = "" if device.type == "cpu" else f" on {device}"
            passed = (
                ("parity in bf16: PASS" if what == "bf16" else f"parity{on}: PASS") in output
                if "--expect" in args
                else all(line in output for line in ("Model loaded successfully", "DONE"))
            )
            if result.returncode != 0 or not passed:
                sys.stdout.write(output)
                if missing := MISSING.search(output):
                    raise CheckError(
                        f"the bundle lacks {missing.group(1)}, which ts-infer {model} loads (message above): "
                        "on another machine it would come from outside the bundle, or not at all; make package "
                        "again, and if the new bundle lacks it too, report it"
                    )
                shown = {"bf16": "in bf16", "second batch": "at the second batch size"}.get(what, what)
                raise CheckError(f"ts-infer {model} ({shown}) failed in the bare root (output above)")
            if what in ("parity", "bf16"):
                label = model + (" in bf16" if what == "bf16" else "")
                lines.append(f"{label}: {output.split(' PASS: ', 1)[1].splitlines()[0]}")
        on = "" if device.type == "cpu" else f" on {device}"
        print(
            f"package-check: PASS: {origin} runs alone{on}: parity ({'; '.join(lines)}) and the tutorial's lines, in a"
        )
        given = "the C and C++ runtime" + (" and the NVIDIA driver" if device.is_gpu else "")
        print(f"  root holding only the bundle and {given} ({', '.join(runtime)}), environment empty")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torch_deploy package", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["report", "check"])
    parser.add_argument("build", type=Path, help="the build folder (make's BUILD_DIR)")
    parser.add_argument("--bundle", type=Path, help="this unpacked bundle instead of the archive")
    parser.add_argument(
        "--device", help="check: run on this device (default: deploy.json's, where this machine has it)"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "report":
            report(args.build, args.bundle)
        else:
            check(args.build, args.bundle, args.device)
    except (CheckError, devices.DeviceError) as error:
        print(f"package-check: FAIL: {error}" if args.command == "check" else f"package: FAIL: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
