"""The int8 format (deploy.json "formats" with "aoti_int8"), through the real parts: torchao's PT2E quantizer
calibrated on the user's inputs, AOTInductor's compile, export's gate against the eager fp32 model, and the C++
runner, which reproduces Python's outputs of the package exactly, gives its drift from fp32, and is one of make tune's
candidates. A small classifier with batch norms whose outputs are well above int8's resolution (random weights of a
deep model give outputs near 1e-10, which int8 rounds to zero: the gate's own test)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import lane_python, run

pytestmark = pytest.mark.e2e

NET = """\
import torch


def make():
    torch.manual_seed(0)
    def block(cin, cout):
        return [torch.nn.Conv2d(cin, cout, 3, padding=1), torch.nn.BatchNorm2d(cout), torch.nn.ReLU()]
    return torch.nn.Sequential(
        *block(3, 16), *block(16, 32), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 10)
    )
"""

SETTINGS = {
    "model": "models/net.py:make", "weights": "none", "export_method": "script",
    "formats": ["torchscript", "aoti_int8"], "precision": "fp32", "device": "cpu",
    "inputs": [{"name": "x", "shape": [1, 3, 32, 32], "dtype": "float32"}], "dynamic_batch": False, "seed": 0,
    "top_k": 3, "preprocess": None, "labels": None, "atol": 1e-4, "rtol": 1e-4, "calibration": "calibration.pt",
}  # fmt: skip


def export(folder: Path, **changes: object) -> object:
    (folder / "deploy.json").write_text(json.dumps({**SETTINGS, **changes}))
    return run([lane_python("default"), "-m", "torch_deploy", "export"], cwd=folder)


@pytest.fixture(scope="module")
def int8_project(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A folder with the classifier, 8 calibration inputs, and its export in both formats."""
    folder = tmp_path_factory.mktemp("int8")
    (folder / "models").mkdir()
    (folder / "models" / "net.py").write_text(NET)
    torch.manual_seed(5)
    torch.save([torch.rand(1, 3, 32, 32) for _ in range(8)], folder / "calibration.pt")
    return SimpleNamespace(folder=folder, exported=export(folder))


def test_export_quantizes_calibrates_and_gates_the_int8_package(int8_project: SimpleNamespace) -> None:
    """model_int8.pt2 beside model.pt, listed in formats.txt, told apart by its contents, calibrated on the file given,
    its drift from the eager fp32 model shown and within the gate; Python's run of the package is its reference."""
    from torch_deploy.artifacts import load_model, load_tensors

    exported = int8_project.exported
    assert exported.returncode == 0, exported.stdout + exported.stderr
    line = next(line for line in exported.stdout.splitlines() if line.startswith("int8 check:"))
    assert re.fullmatch(
        r"int8 check: PASS: max abs diff \S+, relative diff (\S+), top-3 overlap \d/3, within the int8 gate "
        r"\(int8_max_drift 0.05 of the largest \|value\|\) between the eager fp32 and the int8 \(calibrated on 8 "
        r"inputs of calibration.pt\) AOTInductor-compiled model \(model_int8.pt2, exported in \S+ s\)",
        line,
    ), line
    assert float(re.search(r"relative diff (\S+),", line)[1]) > 0  # quantized: not the fp32 numbers
    assert "UserWarning" not in exported.stderr and "KernelPreference" not in exported.stderr, exported.stderr
    artifacts = int8_project.folder / "artifacts"
    assert (artifacts / "formats.txt").read_text().splitlines()[1:] == [
        "torchscript model.pt expected.pt",
        "aoti_int8 model_int8.pt2 expected_int8.pt",
    ]
    deployed = load_model(artifacts / "model_int8.pt2")
    assert deployed.format.name == "aoti_int8"
    inputs, _ = load_tensors(artifacts / "input.pt")
    expected, _ = load_tensors(artifacts / "expected_int8.pt")
    with torch.no_grad():
        assert torch.equal(deployed.model(*inputs.values()), expected["output"])


def test_the_runner_reproduces_the_int8_package_and_tune_times_it(
    default_project: SimpleNamespace, int8_project: SimpleNamespace, tmp_path: Path
) -> None:
    """make verify's checks pass with the C++ runner (the int8 package exactly, with its drift from fp32), and
    make tune lists the int8 package among its candidates, timed, beside model.pt's modes."""
    assert default_project.first.returncode == 0 and int8_project.exported.returncode == 0
    runner = default_project.path / "build" / "ts-infer"
    folder = tmp_path / "int8"
    shutil.copytree(int8_project.folder, folder)
    python = lane_python("default")
    verify = run([python, "-m", "torch_deploy", "verify", "--runner", runner, "--device", "cpu"], cwd=folder)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    parity = next(line for line in verify.stdout.splitlines() if line.startswith("parity of model_int8.pt2"))
    assert re.match(
        r"parity of model_int8.pt2: PASS: max abs diff 0.000e\+00 .*; drift from \S+expected.pt: max abs diff \S+, "
        r"top-3 overlap \d/3",
        parity,
    ), parity
    timed = run([runner, folder / "artifacts" / "model_int8.pt2", "--bench", "2", "--warmup", "1", "--json"])
    assert (json.loads(timed.stdout)["format"], json.loads(timed.stdout)["precision"]) == ("aoti", "int8"), timed.stdout
    tune = [python, "-m", "torch_deploy", "tune", "--runner", runner, "--runs", "3", "--warmup", "1", "--rounds", "1"]
    tuned = run(tune, cwd=folder)
    assert tuned.returncode == 0, tuned.stdout + tuned.stderr
    assert re.search(r"^model_int8.pt2 +[\d.]+ +[\d.]+  PASS, max abs diff 0.000e\+00, drift from fp32 \S+", tuned.stdout,
                     re.MULTILINE), tuned.stdout  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # int8 cannot keep the outputs within 0 of fp32's: the gate refuses it, and nothing is written
        ({"int8_max_drift": 0.0}, "int8 check: the exported model disagrees with the eager one: max abs diff "),
        (
            {"int8_max_drift": 2},
            "int8_max_drift: 2 is not a fraction from 0 to 1; set it in deploy.json (default 0.05)",
        ),
        ({"calibration": "missing.pt"}, "calibration=missing.pt: cannot read "),
        ({"calibration": "wrong.pt"}, "calibration=wrong.pt: "),
        ({"calibration": "models"}, "calibration=models: "),
    ],
)
def test_a_bad_int8_setting_is_one_line_and_leaves_the_artifacts(
    int8_project: SimpleNamespace, tmp_path: Path, changes: dict, message: str
) -> None:
    folder = tmp_path / "int8"
    shutil.copytree(int8_project.folder, folder)
    torch.save([torch.rand(1, 3, 16, 16)], folder / "wrong.pt")
    before = {path.name: path.read_bytes() for path in (folder / "artifacts").iterdir()}
    result = export(folder, **changes)
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and errors[0].startswith(f"ERROR: {message}"), result.stderr
    assert {path.name: path.read_bytes() for path in (folder / "artifacts").iterdir()} == before
