"""The one reader of formats.txt and the one parity driver (torch_deploy.formats, torch_deploy.verify), run against
a stand-in runner: a real process that answers as ts-infer does, so that every label, failure line and the summary
are checked without a build (the real runner is driven by the same code in test_cmake_package.py and every project).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from torch_deploy.device import parse, problem
from torch_deploy.formats import (
    FORMATS,
    Check,
    Entry,
    ListingError,
    Tuned,
    checks,
    exported,
    not_checked,
    read_tuned,
    stale_references,
    write,
)
from torch_deploy.verify import run_checks, summary

# Answers like ts-infer's parity mode: PASS, except for a reference file named in $FAIL; bf16 references and a device
# other than the CPU say so, as does a reference to give the drift from.
RUNNER = """#!/bin/sh
model=$1; expected=$5; drift=""; on=""
shift 5
while [ $# -gt 0 ]; do
  case $1 in
    --drift-from) drift="; drift from $2: max abs diff 1.0e-02, top-5 overlap 5/5"; shift 2 ;;
    --device) [ "$2" != cpu ] && on=" on $2"; shift 2 ;;
    *) shift ;;
  esac
done
echo "Loading model..."
echo "Model loaded successfully"
case $expected in *bf16*) label="parity in bf16$on" ;; *) label="parity$on" ;; esac
if [ "$(basename "$expected")" = "$FAIL" ]; then echo "$label: FAIL: max abs diff 1.0 exceeds it"; exit 1; fi
echo "$label: PASS: max abs diff 1.0e-07 within (atol 1e-4)$drift"
"""


@pytest.fixture
def runner(tmp_path: Path) -> Path:
    path = tmp_path / "ts-infer"
    path.write_text(RUNNER)
    path.chmod(0o755)
    return path


def artifacts(
    folder: Path,
    *,
    batch: bool = False,
    bf16: bool = False,
    formats: tuple[str, ...] = ("torchscript",),
    compiled_for: str = "cpu",
) -> Path:
    """formats.txt as export writes it (a package compiled for ``compiled_for``), and the empty files it names."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = [
        Entry(
            FORMATS[name],
            FORMATS[name].model_file,
            FORMATS[name].expected(),
            FORMATS[name].expected(True) if batch else None,
            "cpu" if FORMATS[name].any_device else compiled_for,
        )
        for name in formats
    ]
    write(folder, entries)
    if bf16:
        (folder / "expected_bf16.pt").write_bytes(b"")
    return folder


def verify(
    runner: Path, folder: Path, log: Path, fail: str = "", device: str = "cpu"
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torch_deploy", "verify", "--runner", runner, "--artifacts", folder, "--log", log]
    command += ["--device", device]
    env = {"FAIL": fail, "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, env=env, cwd=folder.parent)


def test_formats_txt_round_trips_and_is_read_in_order(tmp_path: Path) -> None:
    """export writes formats.txt with write(); exported() reads it back in deploy.json's order."""
    folder = artifacts(tmp_path / "a", batch=True, formats=("aoti", "torchscript"))
    assert [(e.format.name, e.model_file, e.expected, e.expected_batch) for e in exported(folder)] == [
        ("aoti", "model.pt2", "expected_aoti.pt", "expected_aoti_batch.pt"),
        ("torchscript", "model.pt", "expected.pt", "expected_batch.pt"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "formats.txt is missing: run make export"),
        ("# only a comment\n", "formats.txt lists no model file; run make export"),
        ("onnx model.onnx expected.pt\n", "formats.txt is malformed ('onnx model.onnx expected.pt'); run make export"),
    ],
)
def test_a_listing_that_is_not_export_s_is_one_line(tmp_path: Path, text: str | None, message: str) -> None:
    """A missing, empty or foreign formats.txt is refused with the file named and the fix."""
    if text is not None:
        (tmp_path / "formats.txt").write_text(text)
    with pytest.raises(ListingError) as raised:
        exported(tmp_path)
    assert str(raised.value) == f"{tmp_path}/{message}"


def test_checks_cover_each_format_the_second_batch_and_bf16(tmp_path: Path) -> None:
    """Every model file on the reference input, at the second batch size when listed, and model.pt in bf16 against
    expected_bf16.pt (its drift from fp32's reference beside it) when export wrote it."""
    folder = artifacts(tmp_path / "a", batch=True, bf16=True, formats=("torchscript", "aoti"))
    assert checks(folder) == [
        Check("parity", "model.pt", "input.pt", "expected.pt"),
        Check("second batch", "model.pt", "input_batch.pt", "expected_batch.pt"),
        Check("parity", "model.pt2", "input.pt", "expected_aoti.pt"),
        Check("second batch", "model.pt2", "input_batch.pt", "expected_aoti_batch.pt"),
        Check("bf16", "model.pt", "input.pt", "expected_bf16.pt", drift_from="expected.pt"),
    ]
    assert checks(folder)[-1].arguments("art") == [
        "art/model.pt", "--input", "art/input.pt", "--expect", "art/expected_bf16.pt", "--drift-from", "art/expected.pt",
        "--device", "cpu",
    ]  # fmt: skip


def test_on_a_gpu_model_pt_has_its_own_reference_and_a_package_runs_where_it_was_compiled(tmp_path: Path) -> None:
    """On cuda, model.pt is held to its GPU reference (expected_cuda.pt, at the second batch size too) with its drift
    from the CPU's; bf16 is the CPU's check; a package compiled for the CPU is not checked there, and one compiled for
    cuda is checked there only. formats.txt says which device a package was compiled for, and reads back."""
    cpu_package = artifacts(tmp_path / "a", batch=True, bf16=True, formats=("torchscript", "aoti"))
    assert checks(cpu_package, "cuda:1") == [
        Check("parity", "model.pt", "input.pt", "expected_cuda.pt", "expected.pt", "cuda:1"),
        Check("second batch", "model.pt", "input_batch.pt", "expected_cuda_batch.pt", None, "cuda:1"),
    ]
    assert not_checked(cpu_package, "cuda:1") == [
        "model.pt2 is compiled for the CPU: not checked on cuda:1 (make verify DEVICE=cpu checks it)"
    ]
    gpu_package = artifacts(tmp_path / "b", formats=("aoti",), compiled_for="cuda")
    assert (gpu_package / "formats.txt").read_text().splitlines()[1] == "aoti model.pt2 expected_aoti.pt device=cuda"
    assert [entry.device for entry in exported(gpu_package)] == ["cuda"]
    assert checks(gpu_package, "cuda") == [Check("parity", "model.pt2", "input.pt", "expected_aoti.pt", None, "cuda")]
    assert checks(gpu_package) == []
    assert not_checked(gpu_package, "cpu") == [
        "model.pt2 is compiled for cuda: not checked on cpu (make verify DEVICE=cuda checks it)"
    ]


def test_a_gpu_reference_is_stale_when_missing_or_older_than_the_export(tmp_path: Path) -> None:
    """The GPU's reference outputs of model.pt are made again when missing or older than model.pt or input.pt (an
    export since); the CPU's, and a GPU package's, are export's own and never stale here."""
    folder = artifacts(tmp_path / "a", formats=("torchscript", "aoti"), compiled_for="cuda")
    for name in ("model.pt", "model.pt2", "input.pt", "expected.pt", "expected_aoti.pt"):
        (folder / name).write_bytes(b"")
    assert stale_references(folder, "cpu") == []
    assert stale_references(folder, "cuda") == ["expected_cuda.pt"]
    time.sleep(0.01)
    (folder / "expected_cuda.pt").write_bytes(b"")
    assert stale_references(folder, "cuda") == []
    time.sleep(0.01)
    (folder / "model.pt").touch()
    assert stale_references(folder, "cuda") == ["expected_cuda.pt"]


def test_verify_labels_each_check_and_the_summary_says_all(tmp_path: Path, runner: Path) -> None:
    """Several formats: each parity line names its model file; the second batch and bf16 get theirs; the summary
    joins them, and says when the tests' result is last run's."""
    folder = artifacts(tmp_path / "artifacts", batch=True, bf16=True, formats=("torchscript", "aoti"))
    log = tmp_path / "parity.log"
    result = verify(runner, folder, log)
    assert result.returncode == 0, result.stdout + result.stderr
    parity = [line for line in result.stdout.splitlines() if line.startswith("parity")]
    assert [line.split(": PASS")[0] for line in parity] == [
        "parity of model.pt",
        "parity of model.pt at the second batch size",
        "parity of model.pt2",
        "parity of model.pt2 at the second batch size",
        "parity in bf16",
    ]
    assert result.stdout.count("Model loaded successfully") == 2  # the main checks show the runner's own lines
    tests = tmp_path / "tests.log"
    tests.write_text("...\n3 passed in 1.00s\n")
    assert summary(log, tests) == (
        "verify: PASS: C++ reproduces Python (model.pt: max abs diff 1.0e-07 within (atol 1e-4); model.pt2: max abs "
        "diff 1.0e-07 within (atol 1e-4); bf16: max abs diff 1.0e-07 within (atol 1e-4) (drift from fp32: max abs "
        "diff 1.0e-02, top-5 overlap 5/5), also at a second batch size); tests: 3 passed in 1.00s"
    )
    time.sleep(0.01)
    log.touch()
    assert summary(log, tests).endswith(" (inputs unchanged: last run's result)")


def test_the_int8_package_is_checked_exactly_and_the_summary_gives_its_drift_from_fp32(
    tmp_path: Path, runner: Path
) -> None:
    """model_int8.pt2 is held to Python's run of itself (expected_int8.pt) with its drift from fp32's reference."""
    folder = artifacts(tmp_path / "artifacts", formats=("torchscript", "aoti_int8"))
    log = tmp_path / "parity.log"
    result = verify(runner, folder, log)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"parity of model_int8.pt2: PASS: max abs diff 1.0e-07 within (atol 1e-4); drift from {folder}/expected.pt"
        in (result.stdout)
    )
    tests = tmp_path / "tests.log"
    tests.write_text("3 passed in 1.00s\n")
    assert summary(log, tests) == (
        "verify: PASS: C++ reproduces Python (model.pt: max abs diff 1.0e-07 within (atol 1e-4); model_int8.pt2: max "
        "abs diff 1.0e-07 within (atol 1e-4) (drift from fp32: max abs diff 1.0e-02, top-5 overlap 5/5)); tests: 3 "
        "passed in 1.00s"
    )


def test_on_a_gpu_each_line_names_the_device_and_the_summary_the_drift_from_the_cpu(
    tmp_path: Path, runner: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same driver on cuda:0 (run_checks, as make verify on a GPU runs it): the parity lines say where they ran,
    the package compiled for the CPU is named as not checked there, and the summary gives each result with its drift
    from the CPU's reference outputs."""
    folder = artifacts(tmp_path / "artifacts", batch=True, formats=("torchscript", "aoti"))
    log = tmp_path / "parity.log"
    assert run_checks([str(runner)], folder, folder, log, "cuda:0")
    output = capsys.readouterr().out.splitlines()
    assert (
        output[0]
        == "verify: note: model.pt2 is compiled for the CPU: not checked on cuda:0 (make verify DEVICE=cpu checks it)"
    )
    assert [line.split(": PASS")[0] for line in output if line.startswith("parity")] == [
        "parity on cuda:0",
        "parity on cuda:0 at the second batch size",
    ]
    tests = tmp_path / "tests.log"
    tests.write_text("3 passed in 1.00s\n")
    assert summary(log, tests) == (
        "verify: PASS: C++ reproduces Python on cuda:0 (max abs diff 1.0e-07 within (atol 1e-4) (drift from the CPU: "
        "max abs diff 1.0e-02, top-5 overlap 5/5), also at a second batch size); tests: 3 passed in 1.00s"
    )


def test_verify_on_a_gpu_this_machine_lacks_stops_first_in_one_line(tmp_path: Path, runner: Path) -> None:
    """make verify DEVICE=cuda where there is no GPU (no NVIDIA driver on these test machines, or no GPU): one line
    naming what is missing and the fix, exit 1, and the runner never started."""
    if problem(parse("cuda")) is None:
        pytest.skip("this machine has a GPU")
    folder = artifacts(tmp_path / "artifacts")
    result = verify(runner, folder, tmp_path / "parity.log", device="cuda")
    assert result.returncode == 1
    assert result.stdout == (
        f"verify: FAIL: cuda: {problem(parse('cuda'))}; verify on the CPU (DEVICE=cpu), or where the GPU is\n"
    )


@pytest.mark.parametrize(
    ("fail", "line"),
    [
        ("expected.pt", "the C++ output of model.pt differs from Python's (parity line above); if the model changed run make export"),
        ("expected_batch.pt", "the C++ output of model.pt differs from Python's at the second batch size (line above)"),
        ("expected_bf16.pt", "the C++ output of model.pt in bf16 differs from Python's in bf16 (line above)"),
    ],
)  # fmt: skip
def test_a_failed_check_stops_with_one_line(tmp_path: Path, runner: Path, fail: str, line: str) -> None:
    """The first failure: its parity line, then one `verify: FAIL:` line naming it and the fix, exit 1."""
    folder = artifacts(tmp_path / "artifacts", batch=True, bf16=True)
    result = verify(runner, folder, tmp_path / "parity.log", fail=fail)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == f"verify: FAIL: {line}"
    assert ": FAIL: max abs diff 1.0 exceeds it" in result.stdout.splitlines()[-2]


def test_verify_without_an_export_names_it(tmp_path: Path, runner: Path) -> None:
    """No formats.txt: one line saying run make export, exit 1."""
    (tmp_path / "artifacts").mkdir()
    result = verify(runner, tmp_path / "artifacts", tmp_path / "parity.log")
    assert result.returncode == 1
    assert result.stdout == f"verify: FAIL: {tmp_path / 'artifacts' / 'formats.txt'} is missing: run make export\n"


def test_formats_command_prints_the_first_and_the_default_model_file(tmp_path: Path) -> None:
    """`python -m torch_deploy formats --first` prints the first format's model file; --default the one ts-infer runs
    given the folder (make predict's): make tune's choice, else the first."""
    folder = artifacts(tmp_path / "artifacts", formats=("aoti", "torchscript"))

    def formats(*options: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "torch_deploy", "formats", *options, str(folder)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert formats("--first") == formats("--default") == f"{folder / 'model.pt2'}\n"
    (folder / "tuned.txt").write_text("# make tune's choice\nmodel.pt optimize=ofi precision=bf16\n")
    assert read_tuned(folder) == Tuned("model.pt", "ofi", "bf16")
    assert formats("--default") == f"{folder / 'model.pt'}\n" and formats("--first") == f"{folder / 'model.pt2'}\n"


@pytest.mark.parametrize(
    "line", ["model.pt optimize=fast", "model.pt precision=fp8", "model.pt threads=2", "model.pt\nmodel.pt2"]
)
def test_a_malformed_tuned_txt_is_refused_as_the_library_refuses_it(tmp_path: Path, line: str) -> None:
    """The lines torch_deploy::read_tuned() refuses (tests/with_build/test_tune.py), with its words."""
    (tmp_path / "tuned.txt").write_text(f"# make tune's choice\n{line}\n")
    with pytest.raises(ListingError) as raised:
        read_tuned(tmp_path)
    assert str(raised.value).startswith(f"{tmp_path / 'tuned.txt'}: not make tune's (")
    assert str(raised.value).endswith("); run make tune again, or delete it")
