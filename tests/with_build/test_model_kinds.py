"""Models that are not an ImageNet classifier, end to end: a torchvision detector and segmentation model, a Hugging Face
BertModel traced with its int64 token ids and its dict output, and outputs at huge and tiny scales (as random weights
make them). Each is generated, exported, built and verified as a user's project, its own tests included."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from tests.conftest import lane_python, run
from tests.with_build.conftest import generated, make
from tests.with_build.test_images import write_png

pytestmark = pytest.mark.e2e

BERT = """\
import torch
from transformers import BertConfig, BertModel


def make():
    \"\"\"transformers' own BertModel, small, with random weights, and its example inputs: token ids and a mask.\"\"\"
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    ids = torch.randint(0, 100, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.int64)
    mask[1, 12:] = 0  # the second sequence is padded
    return BertModel(config).eval(), (ids, mask)
"""

SCALES = """\
import torch


class Scales(torch.nn.Module):
    \"\"\"A conv net whose logits come out near 1e11 (as a random-weight inception_v3's do) beside its features scaled
    near 1e-18 (as a random-weight efficientnet_b0's outputs are).\"\"\"

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3)
        self.head = torch.nn.Linear(16, 10)
        with torch.no_grad():
            self.head.weight.mul_(1e11)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return {"logits": self.head(features), "features": features * 1e-18}


def make():
    torch.manual_seed(0)
    return Scales()
"""


def test_a_torchvision_detector_verifies_packages_and_serves(tmp_path: Path) -> None:
    """torchvision:ssdlite320_mobilenet_v3_large behind export's one-image wrapper (random weights make 300
    detections): C++ loads torchvision's operators, make verify passes with parity on boxes, scores and labels and
    the project's own tests (no top-k: a detector's scores rank detections); the bundle runs in a bare root, and the
    Triton repository serves the detections as a tuple that a runner loads and checks against Python's."""
    made = generated(
        tmp_path, "out", "det", "--model", "torchvision:ssdlite320_mobilenet_v3_large", "--input-shape", "1,3,240,320"
    )
    assert made.generation.returncode == 0, made.generation.stdout + made.generation.stderr
    assert made.verify.returncode == 0, made.verify.stdout
    lines = made.verify.stdout.splitlines()
    parity = next(line for line in lines if line.startswith("parity: PASS: "))
    assert "; per output: boxes " in parity and ", scores " in parity and ", labels " in parity, parity
    assert "top-" not in parity and lines[-1].startswith("verify: PASS: "), lines[-1]
    # frozen for oneDNN Graph, the detector fails once it runs; optimize_for_inference is what runs it then
    fallback = [line for line in lines if line.startswith("ts-infer: note: the model failed with --optimize onednn")]
    assert fallback and all(line.endswith("; ran it with --optimize ofi") for line in fallback), fallback
    expected = dict(torch.jit.load(str(made.path / "artifacts/expected.pt")).named_buffers())
    assert expected["boxes"].shape == (300, 4) and expected["labels"].dtype == torch.int64
    checked = make(made.path, "package-check")
    assert checked.returncode == 0, checked.stdout
    assert any(line.startswith("package-check: PASS: ") for line in checked.stdout.splitlines()), checked.stdout
    served = make(made.path, "triton")
    assert served.returncode == 0, served.stdout
    config = (made.path / "triton/det/config.pbtxt").read_text()
    assert '    name: "boxes"\n    data_type: TYPE_FP32\n    dims: [ -1, 4 ]' in config, config
    runner = [made.path / "build/ts-infer", made.path / "triton/det/1/model.pt"]
    reference = ["--input", made.path / "artifacts/input.pt", "--expect", made.path / "artifacts/expected.pt"]
    repeated = run([*runner, *reference], cwd=made.path)
    assert repeated.returncode == 0 and "parity: PASS: " in repeated.stdout, repeated.stdout + repeated.stderr


def test_a_torchvision_segmentation_model_verifies_and_predicts(tmp_path: Path) -> None:
    """torchvision:lraspp_mobilenet_v3_large (a dict output, "out": per-pixel scores of the 21 VOC classes) verifies
    with the project's own tests, which run the non-classifier's image test and skip the classifier's; make predict
    prints what the output holds, the same in C++ and Python, with the class names of the weights."""
    made = generated(tmp_path, "out", "seg", "--model", "torchvision:lraspp_mobilenet_v3_large")
    assert made.generation.returncode == 0, made.generation.stdout + made.generation.stderr
    assert made.verify.returncode == 0, made.verify.stdout
    assert any(line.startswith("parity: PASS: ") for line in made.verify.stdout.splitlines()), made.verify.stdout
    assert made.verify.stdout.splitlines()[-1].startswith("verify: PASS: ")
    image = write_png(tmp_path / "street.png", 300, 400, seed=0)
    predicted = make(made.path, "predict", f"IMAGE={image}")
    assert predicted.returncode == 0, predicted.stdout
    lines = predicted.stdout.splitlines()
    summary = lines[lines.index(f"{image}: outputs (not class scores)") + 1]
    assert summary.startswith("  out [1, 21, 224, 224] Float min ") and "; per pixel: " in summary, summary
    python = run([lane_python("default"), "-m", "torch_deploy", "predict", image], cwd=made.path)
    assert python.returncode == 0, python.stderr
    header, theirs = python.stdout.splitlines()
    assert header == f"{image}: outputs (not class scores)"
    number = r"-?\d\.\d{3}e[+-]\d\d"  # min, max, mean: the same to float rounding (the last printed digit)
    assert re.sub(number, "#", theirs) == re.sub(number, "#", summary), (theirs, summary)
    pairs = zip(map(float, re.findall(number, theirs)), map(float, re.findall(number, summary)), strict=True)
    assert all(abs(a - b) <= 2e-3 * abs(b) for a, b in pairs), (theirs, summary)


def test_a_traced_hugging_face_model_with_token_ids_and_a_dict_output(tmp_path: Path) -> None:
    """transformers' BertModel traced (its ModelOutput is a dict, which a trace returns only with strict=False, after
    export checked that the structure does not change with the input): its outputs named by their keys, its int64
    inputs recorded, and C++ reproduces both outputs."""
    (tmp_path / "bert.py").write_text(BERT)
    made = generated(tmp_path, "out", "bert", "--model", "bert.py:make", "--export-method", "trace", "--top-k", "0")
    assert made.generation.returncode == 0, made.generation.stdout + made.generation.stderr
    assert made.verify.returncode == 0, made.verify.stdout
    parity = next(line for line in made.verify.stdout.splitlines() if line.startswith("parity: PASS: "))
    assert "; per output: last_hidden_state " in parity and ", pooler_output " in parity, parity
    expected = torch.jit.load(str(made.path / "artifacts/expected.pt"))
    assert [name for name, _ in expected.named_buffers()] == ["last_hidden_state", "pooler_output"]
    inputs = [tensor for _, tensor in torch.jit.load(str(made.path / "artifacts/input.pt")).named_buffers()]
    assert [tensor.dtype for tensor in inputs] == [torch.int64, torch.int64]


def test_outputs_at_huge_and_tiny_scales(tmp_path: Path) -> None:
    """Logits near 1e11 pass at their own scale (rtol of their largest value, the relative diff shown), and features
    near 1e-18, which atol alone would pass whatever they are, are named in the parity line's note."""
    (tmp_path / "scales.py").write_text(SCALES)
    made = generated(tmp_path, "out", "scales", "--model", "scales.py:make")
    assert made.generation.returncode == 0, made.generation.stdout + made.generation.stderr
    assert made.verify.returncode == 0, made.verify.stdout
    parity = next(line for line in made.verify.stdout.splitlines() if line.startswith("parity: PASS: "))
    logits = dict(torch.jit.load(str(made.path / "artifacts/expected.pt")).named_buffers())["logits"]
    assert logits.abs().max() > 1e9, logits
    assert "; relative diff " in parity and "of logits's largest |expected| " in parity, parity
    assert parity.endswith(
        "; note: features's largest |value| is " + parity.split("features's largest |value| is ")[1].split(",")[0]
        + ', below atol, so this check cannot tell it from zero (verify with trained weights, or set a smaller "atol" '
        "in deploy.json)"
    ), parity  # fmt: skip
    exported = next(line for line in made.verify.stdout.splitlines() if line.startswith("export check: PASS: "))
    assert ", relative diff " in exported and "features's largest |value|" in exported, exported
