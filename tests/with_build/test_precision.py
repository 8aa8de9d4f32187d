"""bf16: a project whose precision is bf16 checks C++ against Python in bf16 as well as in fp32, with the tolerance
export.py measured and the drift from fp32 beside it; the runner runs bf16 only where the CPU has it (or when told
to emulate it), and says so."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import lane_python, run, tree
from tests.with_build.conftest import make
from tests.with_build.test_errors import save_tensors

pytestmark = pytest.mark.e2e


def tensors(file: Path) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    module = torch.jit.load(str(file))
    numbers = {name: float(getattr(module, name, 0.0)) for name in ("atol", "bf16", "drift_max_abs_diff")}
    return dict(module.named_buffers()), numbers


def test_verify_checks_each_precision_and_shows_the_drift(dict_output_project: SimpleNamespace) -> None:
    """--precision bf16 (a dict of class scores and a bool mask): the export measures the bf16 tolerance and the drift
    from fp32; verify checks model.pt in fp32 and in bf16 (emulated on a CPU without native bf16), per output, and its
    summary gives both, with the drift; the model file records bf16 as the project's precision."""
    project, verify = dict_output_project.path, dict_output_project.verify
    assert verify.returncode == 0, verify.stdout
    lines = verify.stdout.splitlines()
    (check,) = [line for line in lines if line.startswith("bf16 check: ")]
    assert re.fullmatch(
        r"bf16 check: model.pt in bf16, fused against its first run: max abs diff \S+, so C\+\+ in bf16 is held to "
        r"atol \S+ \(that, or one bf16 step at the outputs' scale \S+\); drift from fp32: max abs diff \S+, top-5 "
        r"overlap \d/5 \((native|emulated) on this CPU.*\)",
        check,
    )
    (fp32,) = [line for line in lines if line.startswith("parity: ")]
    (bf16,) = [line for line in lines if line.startswith("parity in bf16: ")]
    assert fp32.startswith("parity: PASS: ") and "; per output: logits " in fp32
    assert re.fullmatch(
        r"parity in bf16: PASS: max abs diff \S+ within \(atol \S+, rtol 1.000e-04\), top-5 identical to Python; per "
        r"output: logits \S+, mask \S+; drift from artifacts/expected.pt: max abs diff \S+, top-5 overlap \d/5",
        bf16,
    ), bf16
    assert re.search(r"verify: PASS: C\+\+ reproduces Python \(max abs diff .*; bf16: max abs diff .* \(drift from "
                     r"fp32: max abs diff \S+, top-5 overlap \d/5\)\); tests: \d+ passed", lines[-1]), lines[-1]  # fmt: skip

    outputs, numbers = tensors(project / "artifacts/expected_bf16.pt")
    assert list(outputs) == ["logits", "mask"] and outputs["logits"].dtype == torch.float32
    assert outputs["mask"].dtype == torch.bool
    assert numbers["bf16"] == 1 and numbers["atol"] > 0
    # C++'s drift (on the parity line) and Python's (recorded) differ by at most their distance: within the tolerance.
    cpp_drift = float(re.search(r"drift from \S+: max abs diff (\S+),", bf16).group(1))
    assert abs(cpp_drift - numbers["drift_max_abs_diff"]) <= numbers["atol"]
    fp32_outputs, _ = tensors(project / "artifacts/expected.pt")
    drift = (outputs["logits"] - fp32_outputs["logits"]).abs().max().item()
    assert drift == pytest.approx(numbers["drift_max_abs_diff"]) and drift > 0  # bf16 really ran in Python
    files = {"deploy.txt": ""}
    torch.jit.load(str(project / "artifacts/model.pt"), _extra_files=files)
    assert "precision bf16" in files["deploy.txt"].decode().splitlines()


def test_a_bf16_mismatch_fails(dict_output_project: SimpleNamespace, tmp_path: Path) -> None:
    """Parity in bf16 fails, in one line, on reference outputs that are not what the model computes in bf16."""
    project = dict_output_project.path
    runner, artifacts = project / "build/ts-infer", project / "artifacts"
    reference = torch.jit.load(str(artifacts / "expected_bf16.pt"))
    wrong = {name: t + 1 if t.is_floating_point() else t for name, t in reference.named_buffers()}
    numbers = {name: getattr(reference, name) for name in ("atol", "rtol", "top_k", "bf16")}
    save_tensors(tmp_path / "wrong.pt", numbers, **wrong)
    result = run([runner, artifacts / "model.pt", "--input", artifacts / "input.pt", "--expect", tmp_path / "wrong.pt"])
    assert result.returncode == 1
    assert re.search(r"^parity in bf16: FAIL: max abs diff \S+ exceeds ", result.stdout, re.M), result.stdout


def test_bf16_is_for_torchscript_and_the_library_says_what_ran(default_project: SimpleNamespace) -> None:
    """An AOTInductor package asked for bf16 runs as compiled, in fp32, with one note; a TorchScript model asked for
    bf16 on a CPU without native bf16 runs in fp32 with one note (with native bf16, in bf16, silently); --emulate-bf16
    runs bf16 anyway; --bench --json says which precision ran."""
    project = default_project.path
    runner, artifacts = project / "build/ts-infer", project / "artifacts"
    package = run([runner, artifacts / "model.pt2", "--precision", "bf16"])
    assert package.returncode == 0 and package.stdout.splitlines()[-1] == "DONE"
    assert package.stderr.splitlines() == [
        f"ts-infer: note: --precision bf16 is for TorchScript models; {artifacts / 'model.pt2'} is an AOTInductor "
        "package, compiled ahead of time in fp32, and runs in fp32"
    ]
    native = "avx512_bf16" in Path("/proc/cpuinfo").read_text() or "amx_bf16" in Path("/proc/cpuinfo").read_text()
    bench = ["--input", artifacts / "input.pt", "--bench", "2", "--warmup", "1", "--threads", "1"]
    asked = run([runner, artifacts / "model.pt", "--precision", "bf16", *bench])
    assert asked.returncode == 0, asked.stderr
    if native:
        assert asked.stderr == "" and "--precision bf16: p50" in asked.stdout
    else:
        assert asked.stderr.splitlines() == [
            "ts-infer: note: this CPU has no native bf16 (AVX512-BF16 or AMX), where emulated bf16 is slower than "
            f"fp32: running {artifacts / 'model.pt'} in fp32 (--emulate-bf16 runs bf16 anyway, to check its numbers)"
        ]
        assert "--precision fp32: p50" in asked.stdout
    emulated = json.loads(run([runner, artifacts / "model.pt", "--precision", "bf16", "--emulate-bf16", *bench,
                               "--json"]).stdout)  # fmt: skip
    assert (emulated["precision"], emulated["native_bf16"]) == ("bf16", native)
    wrong = run([runner, artifacts / "model.pt", "--precision", "fp16"])
    assert wrong.returncode == 2 and wrong.stderr.startswith("ts-infer: --precision fp16: use fp32 or bf16\n")
    alone = run([runner, artifacts / "model.pt", "--drift-from", artifacts / "expected.pt"])
    assert alone.returncode == 2 and "--drift-from goes with --expect (parity mode)" in alone.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"precision": "fp16"}, "ERROR: precision: 'fp16' is not a precision; set \"precision\" in deploy.json to "
                                "fp32 or bf16"),
        ({"precision": "bf16", "formats": ["aoti"]}, "ERROR: precision bf16: runs model.pt (an AOTInductor package "
                                                     "runs as compiled, in fp32); add \"torchscript\" to \"formats\" in "
                                                     "deploy.json, or set \"precision\" to \"fp32\""),
    ],
    ids=["unknown", "bf16 without torchscript"],
)  # fmt: skip
def test_export_refuses_a_precision_it_cannot_keep(project_copy: Path, change: dict, message: str) -> None:
    """A precision export.py cannot keep: one ERROR line naming it and the fix, `export: FAIL`, nothing changed."""
    config = json.loads((project_copy / "deploy.json").read_text())
    (project_copy / "deploy.json").write_text(json.dumps({**config, **change}))
    before = tree(project_copy)
    result = make(project_copy, "export", f"PYTHON={lane_python('default')}")
    assert result.returncode != 0
    assert message in result.stdout.splitlines(), result.stdout
    assert "export: FAIL" in result.stdout and "Traceback" not in result.stdout
    assert tree(project_copy) == before
