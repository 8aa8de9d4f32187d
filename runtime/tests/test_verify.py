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
from torch_deploy.formats import FORMATS, Check, Entry, ListingError, checks, exported, write
from torch_deploy.verify import summary

# Answers like ts-infer's parity mode: PASS, except for a reference file named in $FAIL; bf16 references say so.
RUNNER = """#!/bin/sh
model=$1; expected=$5
echo "Loading model..."
echo "Model loaded successfully"
case $expected in *bf16*) label="parity in bf16" ;; *) label="parity" ;; esac
if [ "$(basename "$expected")" = "$FAIL" ]; then echo "$label: FAIL: max abs diff 1.0 exceeds it"; exit 1; fi
drift=""; [ -n "$7" ] && drift="; drift from $7: max abs diff 1.0e-02, top-5 overlap 5/5"
echo "$label: PASS: max abs diff 1.0e-07 within (atol 1e-4)$drift"
"""


@pytest.fixture
def runner(tmp_path: Path) -> Path:
    path = tmp_path / "ts-infer"
    path.write_text(RUNNER)
    path.chmod(0o755)
    return path


def artifacts(
    folder: Path, *, batch: bool = False, bf16: bool = False, formats: tuple[str, ...] = ("torchscript",)
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    entries = [
        Entry(
            FORMATS[name],
            FORMATS[name].model_file,
            FORMATS[name].expected(),
            FORMATS[name].expected(True) if batch else None,
        )
        for name in formats
    ]
    write(folder, entries)
    if bf16:
        (folder / "expected_bf16.pt").write_bytes(b"")
    return folder


def verify(runner: Path, folder: Path, log: Path, fail: str = "") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torch_deploy", "verify", "--runner", runner, "--artifacts", folder, "--log", log]
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
    ]  # fmt: skip


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


def test_formats_command_prints_the_first_model_file(tmp_path: Path) -> None:
    """`python -m torch_deploy formats --first` is what make predict runs."""
    folder = artifacts(tmp_path / "artifacts", formats=("aoti", "torchscript"))
    result = subprocess.run(
        [sys.executable, "-m", "torch_deploy", "formats", "--first", str(folder)], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout == f"{folder / 'model.pt2'}\n"
