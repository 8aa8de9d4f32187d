"""Find libtorch and the build tools for this project, and judge whether they fit (standard library only).

This file is the single home of libtorch discovery, of the rule on the exporting torch against the libtorch that
runs the model, and of the check that a Python has the project's packages. Three callers share it:

* the runtime's ``cmake/TorchDeploy.cmake`` runs ``python3 <runtime>/discover.py libtorch --json`` at configure time;
* the template's ``post_gen_project`` hook imports it from the runtime beside the template (``runtime/torch_deploy/``);
* ``tsgen libtorch`` and ``tsgen doctor`` import it from the same copy, shipped in the tsgen wheel.

Discovery order (the first hit wins, and the result says which one it was):

1. an explicit path: a libtorch folder, a ``torch`` package folder, or a ``share/cmake/Torch`` folder
   (from the generator's answer, ``-DTORCH_DEPLOY_LIBTORCH`` or ``-DTorch_DIR``), then the entries of the CMake
   variable ``CMAKE_PREFIX_PATH``;
2. the environment: ``Torch_DIR``, ``LIBTORCH``, then each entry of ``CMAKE_PREFIX_PATH``;
3. the ``torch`` package of the given Python interpreter, then of ``python3`` on PATH.

An explicit path that holds no libtorch is an error of its own: it is never silently skipped.

Command line (CMake runs the first; the Makefile the second, with the project's Python; missing_packages() the
third, with the Python it asks about):

    python3 discover.py libtorch [--libtorch P] [--python PY] [--json]    (python -m torch_deploy libtorch)
    python discover.py requirements requirements.txt                       (python -m torch_deploy requirements)
    python discover.py missing NAME...
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

# The C++ standard each libtorch release needs: its headers stop compiling below it.
# torch >= 2.1 needs C++17; the 2.14 headers use C++20 features (measured with 2.14.1).
_CXX20_FROM = (2, 14)

_VERSION_RE = re.compile(r'set\(PACKAGE_VERSION "([^"]+)"\)')
_CXX_FLAGS_RE = re.compile(r'set\(TORCH_CXX_FLAGS "([^"]*)"\)')
_CUDA_RE = re.compile(r"^cuda(?:\s*:\s*[^=]+)?\s*=\s*'([^']+)'", re.MULTILINE)


class LibtorchNotFound(Exception):
    """Raised when no libtorch is found; ``looked`` lists every place that was tried and why it failed."""

    def __init__(self, message: str, looked: list[str]) -> None:
        super().__init__(message)
        self.looked = looked


@dataclass
class Libtorch:
    """A libtorch installation: where it is, how it was found, and what it needs to build against."""

    prefix: str
    how: str
    version: str
    cxx_standard: int
    cuda: str | None = None
    cxx_flags: str = ""  # e.g. "-D_GLIBCXX_USE_CXX11_ABI=0" for wheels before torch 2.7
    looked: list[str] = field(default_factory=list)

    @property
    def cmake_dir(self) -> str:
        return str(Path(self.prefix) / "share" / "cmake" / "Torch")

    @property
    def flavour(self) -> str:
        return f"CUDA {self.cuda} wheel" if self.cuda else "CPU build"

    def describe(self) -> str:
        """One line for people: version, standard, flavour, where and how."""
        return (
            f"libtorch {self.version} ({self.flavour}, C++{self.cxx_standard}) at {self.prefix} (found via {self.how})"
        )

    def to_json(self) -> str:
        data = asdict(self)
        data["cmake_dir"] = self.cmake_dir
        return json.dumps(data)


def cxx_standard_for(version: str) -> int:
    """The C++ standard that libtorch ``version`` needs (17, or 20 from 2.14 on)."""
    numbers = re.findall(r"\d+", version)[:2]
    major_minor = tuple(int(n) for n in numbers) if len(numbers) == 2 else (0, 0)
    return 20 if major_minor >= _CXX20_FROM else 17


def _prefix_of(path: Path) -> Path | None:
    """The libtorch prefix that ``path`` names, accepting the forms users pass around."""
    candidates = [path, path.parent.parent.parent]
    for candidate in candidates:
        if (candidate / "share" / "cmake" / "Torch" / "TorchConfig.cmake").is_file():
            return candidate
    return None


def _cuda_of(prefix: Path) -> str | None:
    """The CUDA version a libtorch was built with, or None for a CPU build."""
    version_py = prefix / "version.py"  # present in a torch package folder
    if version_py.is_file():
        match = _CUDA_RE.search(version_py.read_text(encoding="utf-8", errors="replace"))
        return match.group(1) if match else None
    lib = prefix / "lib"
    if any((lib / name).exists() for name in ("libtorch_cuda.so", "torch_cuda.dll", "libtorch_cuda.dylib")):
        build_version = prefix / "build-version"  # the libtorch zip's "2.5.1+cu124"
        text = build_version.read_text().strip() if build_version.is_file() else ""
        match = re.search(r"\+cu(\d+)(\d)$", text)
        return f"{match.group(1)}.{match.group(2)}" if match else "unknown"
    return None


def inspect(path: str | os.PathLike[str], how: str) -> Libtorch | None:
    """Describe the libtorch at ``path`` (any accepted form), or None when there is none."""
    prefix = _prefix_of(Path(path).expanduser().resolve())
    if prefix is None:
        return None
    version_file = prefix / "share" / "cmake" / "Torch" / "TorchConfigVersion.cmake"
    text = version_file.read_text(encoding="utf-8", errors="replace") if version_file.is_file() else ""
    match = _VERSION_RE.search(text)
    version = match.group(1) if match else "unknown"
    config = (prefix / "share" / "cmake" / "Torch" / "TorchConfig.cmake").read_text(encoding="utf-8", errors="replace")
    flags = _CXX_FLAGS_RE.search(config)
    return Libtorch(
        prefix=str(prefix),
        how=how,
        version=version,
        cxx_standard=cxx_standard_for(version),
        cuda=_cuda_of(prefix),
        cxx_flags=flags.group(1) if flags else "",
    )


def package_folder(python: str, package: str) -> Path | None:
    """The folder of ``package`` as installed for interpreter ``python``, found without importing it (fast)."""
    code = (
        f"import importlib.util as u; s = u.find_spec({package!r}); "
        "print(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')"
    )
    try:
        result = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    folder = result.stdout.strip()
    return Path(folder) if result.returncode == 0 and folder else None


def installed_version(python: str, package: str) -> str | None:
    """The version of ``package`` (torch, torchvision) for interpreter ``python``, read from its version.py."""
    folder = package_folder(python, package)
    version_py = folder / "version.py" if folder else None
    if version_py is None or not version_py.is_file():
        return None
    match = re.search(r"^__version__\s*=\s*'([^']+)'", version_py.read_text(encoding="utf-8"), re.MULTILINE)
    return match.group(1) if match else "unknown"


# What torchvision's operator library NEEDs that the runtime loads itself or a process already has: libtorch's
# libraries (linked, or stood in for: see the runtime's src/operators.cpp) and the C and C++ runtime.
_PROVIDED_RE = re.compile(
    r"^(libtorch|libc10|libtorch_cpu|libtorch_python|libtorch_cuda|libc10_cuda|libc|libm|libdl|"
    r"libpthread|librt|libstdc\+\+|libgcc_s|ld-linux[-_.a-z0-9]*)\.so"
)


def needed_libraries(library: Path) -> list[str]:
    """The DT_NEEDED entries of a 64-bit little-endian ELF shared library (what ``readelf -d`` lists as NEEDED)."""
    data = library.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    (section_offset,) = struct.unpack_from("<Q", data, 0x28)  # e_shoff
    section_size, section_count = struct.unpack_from("<HH", data, 0x3A)  # e_shentsize, e_shnum
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", data, section_offset + i * section_size) for i in range(section_count)
    ]
    needed = []
    for _, kind, _, _, offset, size, link, _, _, entry_size in sections:
        if kind != 6:  # SHT_DYNAMIC; its sh_link is the string table its names are in
            continue
        strings = sections[link][4]
        for at in range(offset, offset + size, entry_size):
            tag, value = struct.unpack_from("<qQ", data, at)
            if tag == 1:  # DT_NEEDED
                needed.append(data[strings + value : data.index(b"\0", strings + value)].decode())
    return needed


def torchvision_operators(python: str) -> dict[str, str]:
    """torchvision's C++ operator library for interpreter ``python`` (empty values when it has none), its version,
    and the libraries of the wheel it NEEDs that nothing loads for it (the CUDA wheel's libcudart), ;-separated."""
    folder = package_folder(python, "torchvision")
    names = ("_C_stable.so", "_C.so")  # the stable-ABI library (0.29 has it), else the one of torch's own ABI
    library = next((folder / name for name in names if (folder / name).is_file()), None) if folder else None
    if folder is None or library is None:
        return {"torchvision_version": "", "torchvision_ops": "", "torchvision_companions": ""}
    wheel_libraries = [folder.parent / "torch" / "lib", *sorted((folder.parent / "nvidia").glob("*/lib"))]
    companions = []
    for name in needed_libraries(library):
        found = next((d / name for d in wheel_libraries if (d / name).is_file()), None)
        if found is not None and not _PROVIDED_RE.match(name):
            companions.append(str(found))
    return {
        "torchvision_version": installed_version(python, "torchvision") or "",
        "torchvision_ops": str(library),
        "torchvision_companions": ";".join(companions),
    }


def torch_package_of(python: str) -> Path | None:
    """The ``torch`` package folder of interpreter ``python`` (a libtorch prefix)."""
    return package_folder(python, "torch")


def torch_version_of(python: str) -> str | None:
    """The torch version installed for interpreter ``python``, or None."""
    return installed_version(python, "torch")


def find_libtorch(
    explicit: str | None = None,
    python: str | None = None,
    environ: dict[str, str] | None = None,
    explicit_how: str = "the explicit path",
    prefix_path: list[str] | None = None,
) -> Libtorch:
    """Find libtorch in the documented order; raise LibtorchNotFound naming every place tried.

    ``explicit_how`` names where the explicit path came from (CMake passes "the CMake variable Torch_DIR" when a
    user wrote -DTorch_DIR); ``prefix_path`` is CMake's CMAKE_PREFIX_PATH variable, searched right after it,
    as the tutorial's ``cmake -DCMAKE_PREFIX_PATH=/path/to/libtorch`` expects.
    """
    env = os.environ if environ is None else environ
    looked: list[str] = []

    if explicit:
        found = inspect(explicit, explicit_how)
        if found is None:
            raise LibtorchNotFound(
                f"libtorch={explicit} ({explicit_how}): no share/cmake/Torch/TorchConfig.cmake there; "
                "give the folder that holds include/, lib/ and share/ (or a torch package folder)",
                [f"{explicit_how} {explicit}: no libtorch"],
            )
        return found

    def attempt(path: str, how: str) -> Libtorch | None:
        found = inspect(path, how)
        looked.append(f"{how}: {path}" + ("" if found else " (no libtorch there)"))
        if found:
            found.looked = looked
        return found

    for entry in prefix_path or []:
        found = attempt(entry, "the CMake variable CMAKE_PREFIX_PATH")
        if found:
            return found

    for variable in ("Torch_DIR", "LIBTORCH"):
        if env.get(variable):
            found = attempt(env[variable], f"environment variable {variable}")
            if found:
                return found
        else:
            looked.append(f"environment variable {variable}: not set")
    prefix_path = [p for p in env.get("CMAKE_PREFIX_PATH", "").split(os.pathsep) if p]
    for entry in prefix_path:
        found = attempt(entry, "environment variable CMAKE_PREFIX_PATH")
        if found:
            return found
    if not prefix_path:
        looked.append("environment variable CMAKE_PREFIX_PATH: not set")

    interpreters: list[str] = []
    if python:
        interpreters.append(python)
    on_path = shutil.which("python3", path=env.get("PATH"))
    if on_path and on_path not in interpreters:
        interpreters.append(on_path)
    for interpreter in interpreters:
        package = torch_package_of(interpreter)
        if package is None:
            looked.append(f"torch package of {interpreter}: torch is not installed there")
            continue
        found = attempt(str(package), f"the torch package of {interpreter}")
        if found:
            return found
    if not interpreters:
        looked.append("python3 on PATH: none")

    raise LibtorchNotFound(
        "libtorch not found; install torch in this Python (pip install torch) or pass the libtorch "
        "folder (tsgen new --libtorch PATH, make LIBTORCH=PATH, cmake -DTORCH_DEPLOY_LIBTORCH=PATH)",
        looked,
    )


@dataclass
class Agreement:
    """The verdict on exporting with torch ``exporter`` and running the model with libtorch ``runtime``: TorchScript
    files are read by the libtorch of the same release line. ``level`` is "same", "minor" (another minor release:
    a warning, a file saved by a newer torch may use features an older libtorch cannot read), "major" (refused)
    or "unknown" (no exporting torch to compare with)."""

    level: str
    exporter: str | None
    runtime: str
    message: str = ""  # one line for people, "" when there is nothing to say
    fix: str = ""

    @property
    def blocking(self) -> bool:
        return self.level == "major"


def _major_minor(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version)[:2])


def agreement(exporter: str | None, libtorch: Libtorch, python: str | None) -> Agreement:
    """How the torch of ``python`` (version ``exporter``), which exports the model, and ``libtorch`` agree."""
    if not exporter or libtorch.version == "unknown":
        return Agreement("unknown", exporter, libtorch.version)
    ours, theirs = _major_minor(exporter), _major_minor(libtorch.version)
    pair = f"libtorch {libtorch.version} at {libtorch.prefix} and torch {exporter} of {python}"
    pair += ", which exports the model"
    if ours == theirs:
        return Agreement("same", exporter, libtorch.version)
    if ours[:1] != theirs[:1]:
        fix = (
            "use that torch's own libtorch (make LIBTORCH= to discover it) or export with torch "
            f"{theirs[0]}.x (make PYTHON=...)"
        )
        return Agreement("major", exporter, libtorch.version, f"{pair}, differ in major version; {fix}", fix)
    fix = "make LIBTORCH= uses the exporting torch's own libtorch"
    versions = f"{'.'.join(map(str, ours))} vs {'.'.join(map(str, theirs))}"
    message = f"{pair}, differ ({versions}); models load most reliably when both are the same release: {fix}"
    return Agreement("minor", exporter, libtorch.version, message, fix)


# Requirements whose import name is not their name (pip install pillow, import PIL).
_IMPORT_NAMES = {
    "pillow": "PIL", "opencv-python": "cv2", "scikit-learn": "sklearn", "pyyaml": "yaml", "tsgen-runtime": "torch_deploy",
}  # fmt: skip


def requirement_names(file: Path) -> list[str]:
    """The package names a requirements file lists (versions, markers, comments and options left out)."""
    names = []
    for line in file.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.append(re.split(r"[\s<>=!~;\[@]", line, maxsplit=1)[0])
    return names


def model_packages(config: dict) -> dict[str, str]:
    """The packages besides torch that deploy.json needs to build and export the model (what requirements.txt must
    list for it), each with what of deploy.json needs it: torchvision for a ``torchvision:<arch>`` model, torchao for
    the int8 format (its quantizer)."""
    needed = {}
    if str(config.get("model", "")).startswith("torchvision:"):
        needed["torchvision"] = f"model {config['model']}"
    if "aoti_int8" in (config.get("formats") or []):
        needed["torchao"] = "format aoti_int8"
    return needed


def unlisted(config_file: Path, requirements: Path) -> str | None:
    """One line when deploy.json (edited since generation, say) needs a package that requirements.txt does not list."""
    config = json.loads(config_file.read_text(encoding="utf-8"))
    listed = {name.lower() for name in requirement_names(requirements)}
    name, needs = next(((n, why) for n, why in model_packages(config).items() if n.lower() not in listed), ("", ""))
    if not name:
        return None
    return (
        f"{config_file}'s {needs} needs {name}, which {requirements} does not list; add "
        f"{name} to {requirements}, then {sys.executable} -m pip install -r {requirements}"
    )


def missing_here(names: list[str]) -> list[str]:
    """The packages among ``names`` that this interpreter cannot import (looked up, not imported: fast)."""
    modules = {name: _IMPORT_NAMES.get(name.lower(), name.replace("-", "_")) for name in names}
    return [name for name, module in modules.items() if importlib.util.find_spec(module) is None]


def pinned(file: Path) -> dict[str, str]:
    """The ``name==version`` pins of a requirements file (the runtime's, above all)."""
    pins = {}
    for line in file.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*([A-Za-z0-9._-]+)\s*==\s*([^\s;#]+)", line)
        if match:
            pins[match.group(1)] = match.group(2)
    return pins


def wrong_versions(pins: dict[str, str]) -> list[str]:
    """The pins this interpreter has another version of, as ``name version (pinned: version)``."""
    wrong = []
    for name, wanted in pins.items():
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # missing_here() names it
        if have != wanted:
            wrong.append(f"{name} {have} (this project pins {wanted})")
    return wrong


def missing_packages(python: str, names: list[str]) -> list[str] | None:
    """missing_here() as interpreter ``python`` sees it (this file runs there), or None when ``python`` does not
    run."""
    try:
        result = subprocess.run(
            [python, __file__, "missing", *names], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return json.loads(result.stdout) if result.returncode == 0 else None


def missing_message(python: str, missing: list[str], requirements: str) -> str:
    """One line naming what ``python`` lacks, and the command that installs it."""
    return f"{python} lacks {', '.join(missing)}, which this project needs; {python} -m pip install -r {requirements}"


def find_python(candidates: list[str]) -> str | None:
    """The first interpreter among ``candidates`` (then python3 on PATH) that has torch installed."""
    on_path = shutil.which("python3")
    for python in [*candidates, *([on_path] if on_path else [])]:
        if python and torch_version_of(python):
            return python
    return None


def find_cmake(minimum: tuple[int, int] = (3, 21), beside: str | None = None) -> tuple[str, str] | None:
    """A CMake >= ``minimum``: the one on PATH, else the one pip installed beside interpreter ``beside``.

    Returns (path, version), or None when neither is new enough.
    """
    candidates = [shutil.which("cmake")]
    if beside:
        candidates.append(shutil.which("cmake", path=str(Path(beside).parent)))
    for cmake in filter(None, candidates):
        version = cmake_version(cmake)
        if version and tuple(int(n) for n in version.split(".")[:2]) >= minimum:
            return cmake, version
    return None


def cmake_version(cmake: str) -> str | None:
    """The version ``cmake --version`` reports ("3.25.1"), or None when it does not run."""
    try:
        output = subprocess.run([cmake, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"version (\d+\.\d+\S*)", output)
    return match.group(1) if match else None


def main(argv: list[str] | None = None) -> int:
    """Command line for CMake, make and people (see the module's docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="what", required=True)
    found = commands.add_parser("libtorch", help="the libtorch a build would use")
    found.add_argument("--libtorch", default="", help="explicit libtorch or torch package folder")
    found.add_argument("--how", default="the explicit path", help="where --libtorch came from, for messages")
    found.add_argument("--prefix-path", default="", help="CMake's CMAKE_PREFIX_PATH (a ;-separated list)")
    found.add_argument("--python", default="", help="interpreter whose torch package to use")
    found.add_argument("--json", action="store_true", help="print one JSON object (for CMake and tools)")
    needs = commands.add_parser("requirements", help="exit 1 with one line when this Python lacks a requirement")
    needs.add_argument("file", type=Path, help="the project's requirements.txt")
    needs.add_argument(
        "--config", type=Path, help="the project's deploy.json: also check that the file lists what it needs"
    )
    lacks = commands.add_parser("missing", help="print which of these packages this Python lacks, as JSON")
    lacks.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    if args.what == "missing":
        print(json.dumps(missing_here(args.names)))
        return 0
    if args.what == "requirements":
        line = unlisted(args.config, args.file) if args.config else None
        if line:
            print(f"setup: FAIL: {line}")
            return 1
        missing = missing_here(requirement_names(args.file))
        if missing:
            print(f"setup: FAIL: {missing_message(sys.executable, missing, str(args.file))}")
            return 1
        wrong = wrong_versions(pinned(args.file))
        if wrong:
            print(
                f"setup: FAIL: {sys.executable} has {', '.join(wrong)}; {sys.executable} -m pip install -r {args.file}"
            )
            return 1
        return 0
    try:
        libtorch = find_libtorch(
            args.libtorch or None,
            args.python or None,
            explicit_how=args.how,
            prefix_path=[p for p in args.prefix_path.split(";") if p],
        )
    except LibtorchNotFound as err:
        print(f"ERROR: {err}", file=sys.stderr)
        for place in err.looked:
            print(f"  looked at {place}", file=sys.stderr)
        return 1
    if not args.json:
        print(libtorch.describe())
        return 0
    data = json.loads(libtorch.to_json())
    # The torch that exports the model (read from its files, not imported) and the verdict on the pair, for CMake.
    exporter = torch_version_of(args.python) if args.python else None
    verdict = agreement(exporter, libtorch, args.python)
    data.update(python_torch=exporter, agreement=verdict.level, agreement_message=verdict.message)
    data.update(torchvision_operators(args.python or sys.executable))
    print(json.dumps(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
