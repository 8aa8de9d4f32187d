"""The C++ runner, run as a real process, reproduces Python's output and reports when it does not."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import torch
from torch_deploy import artifacts as artifact_format
from torch_deploy.formats import Check, Entry, Format, checks


def run(runner: Path, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(runner), *map(str, args)], capture_output=True, text=True, timeout=300)


def checks_of(
    artifacts: Path, device: str, model_format: Format, entries: dict[str, Entry], kinds: set[str]
) -> list[Check]:
    """The parity checks (make verify's, on ``device``) of one format's model file, of the ``kinds`` asked for."""
    if not entries[model_format.name].runs_on(device):
        pytest.skip(f"{model_format.model_file} is compiled for {entries[model_format.name].device}, not {device}")
    found = [c for c in checks(artifacts, device) if c.model == model_format.model_file and c.kind in kinds]
    missing = [c.expected for c in found if not (artifacts / c.expected).is_file()]
    if missing:
        pytest.fail(f"artifacts/{missing[0]} is missing: run `make verify DEVICE={device}` first (it makes it)")
    return found


def test_runner_matches_python(
    runner: Path, artifacts: Path, model_format: Format, device: str, entries: dict[str, Entry]
) -> None:
    """ts-infer on the reference input reproduces the output Python recorded from the same model file on the same
    device (parity mode exits 0); with "precision" bf16, model.pt also reproduces Python's bf16 outputs on the CPU
    (emulated on a CPU without native bf16: parity checks numbers, not speed) within the tolerance export.py measured,
    and gives the drift from fp32; on a GPU, model.pt gives its drift from the CPU's outputs too."""
    for check in checks_of(artifacts, device, model_format, entries, {"parity", "bf16"}):
        result = run(runner, *check.arguments(artifacts))
        assert result.returncode == 0, result.stdout + result.stderr
        on = "" if device == "cpu" else f" on {device}"
        line = f"parity in bf16{on}: PASS" if check.kind == "bf16" else f"parity{on}: PASS"
        assert line in result.stdout, result.stdout
        if check.drift_from:
            assert re.search(r"; drift from .*: max abs diff \S+", result.stdout), result.stdout


def test_runner_matches_python_at_a_second_batch_size(
    runner: Path, artifacts: Path, config: dict, model_format: Format, device: str, entries: dict[str, Entry]
) -> None:
    """dynamic_batch: the runner also reproduces Python on the inputs at batch size + 1."""
    if not config.get("dynamic_batch"):
        pytest.skip("dynamic_batch is off in deploy.json")
    for check in checks_of(artifacts, device, model_format, entries, {"second batch"}):
        result = run(runner, *check.arguments(artifacts))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "PASS" in result.stdout


def test_runner_says_which_precision_ran(runner: Path, artifacts: Path, model_file: Path) -> None:
    """--precision bf16 runs model.pt in bf16 on a CPU with native bf16 (or says why the model could not); elsewhere
    one note says why not, and it runs in fp32 (the C++ check of the CPU agrees with Python's). A model.pt2 runs as
    compiled, in fp32, with one note."""
    command = (runner, model_file, "--input", artifacts / "input.pt", "--bench", 1, "--warmup", 0, "--device", "cpu")
    timed = run(*command, "--precision", "bf16")
    assert timed.returncode == 0, timed.stderr
    if model_file.suffix == ".pt2":
        assert "--precision fp32:" in timed.stdout and "compiled ahead of time in fp32" in timed.stderr
        return
    notes = [line for line in timed.stderr.splitlines() if "no native bf16" in line]
    if not artifact_format.native_bf16():
        assert "--precision fp32:" in timed.stdout and len(notes) == 1, timed.stdout + timed.stderr
    else:  # a model that mixes float32 tensors of its own with bf16 ones falls back to fp32, and says so
        assert not notes and ("--precision bf16:" in timed.stdout or "the model failed in bf16" in timed.stderr)


def test_runner_reports_a_mismatch(runner: Path, artifacts: Path, model_file: Path, tmp_path: Path) -> None:
    """When the recorded output is not what the model computes, ts-infer fails and names the max abs diff."""
    check = next(c for c in checks(artifacts) if c.model == model_file.name and c.kind == "parity")
    expected, numbers = artifact_format.load_tensors(artifacts / check.expected)
    first = next(iter(expected))
    # off by 1, and by more than the tolerance at the output's own scale (parity's rule), however large it is
    beyond = 1 + 10 * (numbers["atol"] + numbers["rtol"] * (artifact_format.largest(expected[first]) or 0.0))
    wrong = {name: tensor + beyond if name == first else tensor for name, tensor in expected.items()}
    artifact_format.save_tensors(tmp_path / "wrong.pt", wrong, **numbers)
    result = run(
        runner, model_file, "--input", artifacts / "input.pt", "--expect", tmp_path / "wrong.pt", "--device", "cpu"
    )
    assert result.returncode == 1
    assert "parity: FAIL: max abs diff" in result.stdout


def test_runner_saves_the_input_it_used(runner: Path, artifacts: Path, model_file: Path, tmp_path: Path) -> None:
    """--save-input writes what the model was given, for torch.load: here the reference inputs, unchanged."""
    saved = tmp_path / "used.pt"
    result = run(runner, model_file, "--input", artifacts / "input.pt", "--save-input", saved, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    reference = list(artifact_format.load_tensors(artifacts / "input.pt")[0].values())
    used = torch.load(saved)
    used = list(used) if isinstance(used, tuple) else [used]
    assert len(used) == len(reference) and all(torch.equal(a, b) for a, b in zip(used, reference, strict=True))


def test_runner_alone_behaves_like_the_tutorial(
    runner: Path, artifacts: Path, model_format: Format, device: str, config: dict, entries: dict[str, Entry]
) -> None:
    """With only a model path, ts-infer prints the tutorial's lines and exits 0 (on random inputs of the names,
    shapes and dtypes recorded in the model file: deploy.json's inputs, or a factory's example inputs), on the
    project's device; on another one, told by --device, the same lines."""
    if not entries[model_format.name].runs_on(device):
        pytest.skip(f"{model_format.model_file} is compiled for {entries[model_format.name].device}, not {device}")
    elsewhere = [] if device == config.get("device", "cpu") else ["--device", device]
    result = run(runner, artifacts / model_format.model_file, *elsewhere)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["Loading model...", "Model loaded successfully"]
    assert lines[-1] == "DONE"


def test_runner_rejects_a_missing_model(runner: Path, tmp_path: Path) -> None:
    """A model path that does not exist ends in one error line and a non-zero exit, not a crash."""
    result = run(runner, tmp_path / "nope.pt")
    assert result.returncode == 1
    assert result.stderr.startswith("ts-infer: error:")


def test_runner_without_arguments_prints_usage(runner: Path) -> None:
    """No model path: the usage line and exit code 2."""
    result = run(runner)
    assert result.returncode == 2
    assert "usage: ts-infer MODEL" in result.stderr
