"""The generated project at its edges: the runner, the CMake plugin and `make verify` each fail with one message
naming the problem and the fix, a non-zero exit, and nothing of the project changed."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import lane_python, run, torch_package, tree
from tests.with_build.conftest import make, python_without

pytestmark = pytest.mark.e2e


def save_tensors(path: Path, numbers: dict[str, float] | None = None, **tensors: torch.Tensor) -> None:
    """A tensor file as export.py writes them (a TorchScript module whose buffers are the tensors, and whose float
    attributes are the numbers, such as atol)."""

    class TensorFile(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for name, tensor in tensors.items():
                self.register_buffer(name, tensor)
            for name, value in (numbers or {}).items():
                setattr(self, name, float(value))

    torch.jit.script(TensorFile()).save(str(path))


def with_version_record(source: Path, target: Path, version: bytes) -> None:
    """A copy of a TorchScript zip whose format version says it was written by a far newer torch."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = old.read(item.filename)
            new.writestr(item, version if item.filename.endswith("/version") else data)


def broken_files(folder: Path, model: Path) -> dict[str, Path]:
    """Every kind of bad file a user can hand the runner, made on the spot."""
    (folder / "empty.pt").write_bytes(b"")
    (folder / "truncated.pt").write_bytes(model.read_bytes()[:20000])
    with zipfile.ZipFile(folder / "not-torchscript.pt", "w") as archive:
        archive.writestr("archive/hello.txt", "hi")
    torch.save({"weight": torch.ones(2)}, folder / "state-dict.pt")
    with_version_record(model, folder / "newer.pt", b"99\n")
    save_tensors(folder / "bad-shape.pt", input_0=torch.rand(1, 1, 10))
    save_tensors(folder / "bad-dtype.pt", input_0=torch.ones(1, 3, 224, 224, dtype=torch.int64))
    save_tensors(folder / "two-outputs.pt", output_0=torch.zeros(1, 1000), output_1=torch.zeros(1))
    return {path.stem: path for path in folder.iterdir()}


# (runner arguments, with {model}, {input}, {expected} and {bad} placeholders; exit code; the message's words)
RUNNER_ERRORS = [
    (["{bad}/missing.pt"], 1, "missing.pt: cannot open the model (missing or unreadable); run make export"),
    (["{bad}/empty.pt"], 1, "empty.pt: not a TorchScript model that this libtorch (2.14.1) can load: "),
    (["{bad}/truncated.pt"], 1, "failed finding central directory; re-export it with make export"),
    (["{bad}/not-torchscript.pt"], 1, "not-torchscript.pt: not a TorchScript model"),
    (["{bad}/state-dict.pt"], 1, "state-dict.pt: not a TorchScript model"),
    (["{bad}/newer.pt"], 1, "Attempted to read a PyTorch file with version 99, but the maximum supported version"),
    (["{model}", "--input", "{bad}/bad-shape.pt"], 1, "the model failed on input [1, 1, 10] Float: RuntimeError:"),
    (["{model}", "--input", "{bad}/bad-dtype.pt"], 1, "the model failed on input [1, 3, 224, 224] Long: "),
    (["{model}", "--input", "{bad}/missing.pt"], 1, "missing.pt: cannot open the tensor file"),
    # the images are checked before the model is loaded (and the model here would fail to load)
    (["{bad}/empty.pt", "--image", "{bad}/missing.png"], 1, "missing.png: cannot open the image (missing or unread"),
    (["{bad}/empty.pt", "--image", "{bad}/state-dict.pt"], 1, "state-dict.pt: not a JPEG or PNG file (told by its"),
    (["{model}", "--input", "{input}", "--expect", "{bad}/empty.pt"], 1, "empty.pt: not a TorchScript tensor file"),
    (["{model}", "--threads", "x"], 2, "--threads x: not a number"),
    (["{model}", "--frobnicate"], 2, "unknown option --frobnicate"),
    (["{model}", "--expect", "{expected}"], 2, "--expect needs --input"),
    (["{model}", "--input"], 2, "--input needs a value"),
    (["{model}", "extra.pt"], 2, "unexpected argument extra.pt"),
    (["{model}", "--optimize", "fast"], 2, "--optimize fast: use onednn, ofi or none"),
    (["{model}", "--json"], 2, "--json goes with --bench N"),
    (["{model}", "--bench", "-1"], 2, "--bench, --warmup and --threads take numbers >= 0"),
]


@pytest.mark.parametrize(("args", "code", "words"), RUNNER_ERRORS, ids=[" ".join(c[0])[:40] for c in RUNNER_ERRORS])
def test_runner_fails_with_one_message(
    args: list[str], code: int, words: str, default_project: SimpleNamespace, tmp_path: Path
) -> None:
    """Bad files, inputs and options: one `ts-infer:` message (usage errors add the usage line), the exit code,
    no crash, and the project unchanged."""
    project = default_project.path
    bad = tmp_path / "bad"
    bad.mkdir()
    broken_files(bad, project / "artifacts/model.pt")
    before = tree(project)
    values = {
        "model": project / "artifacts/model.pt",
        "input": project / "artifacts/input.pt",
        "bad": bad,
        "expected": project / "artifacts/expected.pt",
    }
    result = run([project / "build/ts-infer", *(arg.format(**values) for arg in args)])
    assert result.returncode == code, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("ts-infer: ") and words in lines[0], result.stderr
    assert len(lines) == (2 if code == 2 else 1) and (code != 2 or lines[1].startswith("usage: ts-infer MODEL"))
    assert tree(project) == before


def test_runner_reports_a_different_number_of_outputs(default_project: SimpleNamespace, tmp_path: Path) -> None:
    """Parity against a file recording two outputs: a parity FAIL line naming both counts, exit 1."""
    bad = broken_files(tmp_path, default_project.path / "artifacts/model.pt")
    artifacts = default_project.path / "artifacts"
    result = run(
        [
            default_project.path / "build/ts-infer",
            artifacts / "model.pt",
            "--input",
            artifacts / "input.pt",
            "--expect",
            bad["two-outputs"],
        ]
    )
    assert result.returncode == 1
    assert "parity: FAIL: the model returned 1 tensors, Python recorded 2" in result.stdout


@pytest.fixture
def fake_libtorch(tmp_path: Path) -> Path:
    """A folder that claims to be libtorch 3.0.0 (config files only)."""
    cmake_dir = tmp_path / "libtorch3" / "share" / "cmake" / "Torch"
    cmake_dir.mkdir(parents=True)
    (cmake_dir / "TorchConfig.cmake").write_text("# fake\n")
    (cmake_dir / "TorchConfigVersion.cmake").write_text('set(PACKAGE_VERSION "3.0.0")\n')
    return tmp_path / "libtorch3"


@pytest.mark.parametrize(
    ("libtorch", "words"),
    [
        (
            "{tmp}/nowhere",
            "libtorch={tmp}/nowhere (the explicit path (TORCH_DEPLOY_LIBTORCH)): no "
            "share/cmake/Torch/TorchConfig.cmake there; give the folder that holds include/, lib/ and share/",
        ),
        ("{tmp}", "libtorch={tmp} (the explicit path (TORCH_DEPLOY_LIBTORCH)): no share/cmake/Torch/TorchConfig.cmake"),
        (
            "{fake}",
            "differ in major version; use that torch's own libtorch (make LIBTORCH= to discover it) or export "
            "with torch 3.x",
        ),
    ],
    ids=["missing folder", "folder without libtorch", "other major version"],
)
def test_plugin_names_a_wrong_libtorch_and_the_fix(
    libtorch: str, words: str, default_project: SimpleNamespace, fake_libtorch: Path, tmp_path: Path
) -> None:
    """A wrong LIBTORCH stops the configure with the plugin's message and `build: FAIL`; the project's own build
    folder is untouched (a separate BUILD_DIR is used)."""
    values = {"tmp": tmp_path, "fake": fake_libtorch}
    before = tree(default_project.path / "build")
    result = make(default_project.path, "build", "BUILD_DIR=build-wrong", f"LIBTORCH={libtorch.format(**values)}")
    assert result.returncode != 0
    assert words.format(**values) in " ".join(result.stdout.split())
    assert "build: FAIL: CMake could not configure (message above)" in result.stdout
    assert tree(default_project.path / "build") == before
    shutil.rmtree(default_project.path / "build-wrong", ignore_errors=True)


def test_plugin_warns_when_export_and_runtime_versions_differ(default_project: SimpleNamespace) -> None:
    """torch 2.14 exports, libtorch 2.13 would run: the configure goes on with a warning naming both."""
    libtorch = torch_package(lane_python("cpu"))
    result = make(default_project.path, "build-minor/CMakeCache.txt", "BUILD_DIR=build-minor", f"LIBTORCH={libtorch}")
    assert result.returncode == 0, result.stdout
    assert "which exports the model, differ (2.14 vs 2.13)" in " ".join(result.stdout.split())
    shutil.rmtree(default_project.path / "build-minor")


def test_verify_names_a_missing_python(project_copy: Path) -> None:
    """PYTHON that does not exist: `setup: FAIL` naming it and the fix, before any step runs."""
    result = make(project_copy, "verify", "PYTHON=/nonexistent/python3")
    assert result.returncode != 0
    assert "setup: FAIL: Python '/nonexistent/python3' not found; give the one with torch" in result.stdout


def test_verify_names_a_python_without_torch(project_copy: Path) -> None:
    """A Python without torch: export.py's one line, then `export: FAIL`; the artifacts are not touched."""
    (project_copy / "deploy.json").touch()  # make the export stale
    before = {p.name: p.stat().st_mtime_ns for p in (project_copy / "artifacts").iterdir()}
    result = make(project_copy, "export", f"PYTHON={lane_python('cookiecutter')}")
    assert result.returncode != 0
    assert "ERROR: torch is not installed for " in result.stdout
    assert "export: FAIL: export.py stopped (message above)" in result.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (project_copy / "artifacts").iterdir()} == before


def test_verify_names_a_failed_export(project_copy: Path) -> None:
    """A model spec torchvision does not know: one ERROR line naming it, `export: FAIL`, artifacts unchanged."""
    config = json.loads((project_copy / "deploy.json").read_text())
    (project_copy / "deploy.json").write_text(json.dumps({**config, "model": "torchvision:nosuchnet"}))
    before = tree(project_copy)
    result = make(project_copy, "export", f"PYTHON={lane_python('default')}")
    assert result.returncode != 0
    assert "ERROR: model=torchvision:nosuchnet: torchvision 0.29.1" in result.stdout
    assert "has no classification model 'nosuchnet'; pick one of:" in result.stdout
    assert "export: FAIL" in result.stdout and "Traceback" not in result.stdout
    assert tree(project_copy) == before


def test_unusual_names_and_paths_work_end_to_end(tmp_path: Path) -> None:
    """A project name with spaces, a unicode description, an output path with spaces: generated, built by the
    hook, and `make verify` passes."""
    out = tmp_path / "my projects" / "déjà vu"
    from tests.conftest import tsgen

    generation = tsgen("new", "My Model v2", "--description", "Modèle ☃ “quoted” $HOME", "-o", out)
    assert generation.returncode == 0, generation.stdout + generation.stderr
    verify = make(out / "my_model_v2", "verify")
    assert verify.returncode == 0, verify.stdout
    assert verify.stdout.splitlines()[-1].startswith("verify: PASS")


@pytest.fixture(scope="module")
def python_without_pytest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python with torch and torchvision but no pytest, as after `pip install torch torchvision`."""
    python = python_without(tmp_path_factory.mktemp("no-pytest"), ("pytest", "_pytest", "py.py"))
    assert run([python, "-c", "import torch, torchvision"]).returncode == 0
    assert run([python, "-c", "import pytest"]).returncode != 0
    return python


def test_verify_names_a_missing_package_before_any_work(project_copy: Path, python_without_pytest: Path) -> None:
    """pytest missing: `make verify` stops at once with one line naming it and the install command, before export,
    build or parity run, and nothing of the project changes."""
    (project_copy / "deploy.json").touch()  # the export is due: it must not run
    before = {p.name: p.stat().st_mtime_ns for p in (project_copy / "artifacts").iterdir()}
    result = make(project_copy, "verify", f"PYTHON={python_without_pytest}")
    assert result.returncode != 0
    lines = [line for line in result.stdout.splitlines() if not line.startswith("make")]
    assert lines == [
        f"setup: FAIL: {python_without_pytest} lacks pytest, which this project needs; "
        f"{python_without_pytest} -m pip install -r requirements.txt"
    ]
    assert {p.name: p.stat().st_mtime_ns for p in (project_copy / "artifacts").iterdir()} == before


def test_the_hook_and_doctor_name_a_missing_package(python_without_pytest: Path, tmp_path: Path) -> None:
    """The same Python given to `tsgen new`: the post-gen hook warns with the install command; `tsgen doctor` in the
    project has a blocking row for it."""
    from tests.conftest import tsgen

    generation = tsgen("new", "nopytest", "--python", python_without_pytest, "--no-build", "-o", tmp_path)
    assert generation.returncode == 0, generation.stdout + generation.stderr
    requirements = tmp_path / "nopytest" / "requirements.txt"
    assert (
        f"==> Warning: {python_without_pytest} lacks pytest, which this project needs; "
        f"{python_without_pytest} -m pip install -r {requirements}"
    ) in generation.stdout
    doctor = tsgen("doctor", cwd=tmp_path / "nopytest")
    assert doctor.returncode == 1
    assert "missing: pytest" in doctor.stdout and "Python packages" in doctor.stderr


def test_export_refuses_an_output_folder_with_files_of_its_own(project_copy: Path, tmp_path: Path) -> None:
    """export.py replaces its output folder as a whole: a folder holding other files is refused in
    one line before any work, and left exactly as it was."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    (mine / "model.pt").write_text("an old export")
    result = run([lane_python("default"), "export.py", "--output-dir", mine], cwd=project_copy)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ERROR: {mine}: holds files export.py did not write (notes.txt); move them out (export.py replaces the "
        "whole folder), or give --output-dir a new or empty folder"
    ]
    assert tree(mine) == {"notes.txt", "model.pt"} and not (tmp_path / ".mine").exists()


def test_python_given_as_a_command_name_is_looked_up_on_path(project_copy: Path, tmp_path: Path) -> None:
    """PYTHON=python3 (what a project generated before torch was installed records) configures with the python3 on
    PATH; an interpreter CMake cannot run is named in one line with the fix."""
    env = {**os.environ, "PATH": f"{lane_python('default').parent}{os.pathsep}{os.environ['PATH']}"}
    target = ["build-name/CMakeCache.txt", "BUILD_DIR=build-name", "PYTHON=python3", "LIBTORCH="]
    result = make(project_copy, *target, env=env)
    assert result.returncode == 0, result.stdout
    assert "TorchDeploy: libtorch 2.14.1 (CUDA 13.0 wheel) from the torch package of python3" in result.stdout
    cmake = run(["cmake", "-S", project_copy, "-B", tmp_path / "b", "-DTORCH_DEPLOY_PYTHON=/nonexistent/python"])
    assert cmake.returncode != 0
    assert (
        "TorchDeploy: cannot run /nonexistent/python (No such file or directory); give the Python that has torch: "
        "-DTORCH_DEPLOY_PYTHON=/path/to/python (make PYTHON=...)"
    ) in " ".join(cmake.stderr.split())
