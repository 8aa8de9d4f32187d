"""The graph rewrites of --optimize onednn, through the real runner: a model with efficientnet's in-place silu and
mobilenet_v3's squeeze-excitation block (global average pool, two 1x1 convolutions, hardsigmoid, a product) fuses
further with them, and computes what Python computes, at the shape the model file records and at others, where the
pools fixed for that shape must not be used; and in bf16, where Python's reference makes the same rewrites."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import run

pytestmark = pytest.mark.e2e

RECORDED = (1, 8, 14, 14)


class SqueezeExcitation(torch.nn.Module):
    """A convolution with an in-place silu, mobilenet_v3's squeeze-excitation block, and a classifier head on a global
    average pool."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.squeeze = torch.nn.Conv2d(16, 4, 1)
        self.excite = torch.nn.Conv2d(4, 16, 1)
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.silu(self.conv(x), inplace=True)
        scale = torch.nn.functional.adaptive_avg_pool2d(x, 1)
        scale = torch.nn.functional.hardsigmoid(self.excite(torch.relu(self.squeeze(scale))))
        x = x * scale
        return self.head(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


@pytest.fixture(scope="module")
def squeeze_excitation(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The model scripted into a model file that records its input as export.py does, and inputs with the outputs
    Python computes from them (tensor files, as make export writes them)."""
    from torch_deploy.artifacts import save_tensors  # the runtime's writer, as export.py uses it

    folder = tmp_path_factory.mktemp("rewrites")
    torch.manual_seed(0)
    model = SqueezeExcitation().eval()
    shape = " ".join(map(str, RECORDED))
    torch.jit.script(model).save(
        str(folder / "model.pt"), _extra_files={"deploy.txt": f"input x float32 {shape}\noutput output\n"}
    )
    cases = {}
    # the recorded shape; a batch of another size; a larger image (20 is under twice 14: a pool fixed for 14 x 14
    # would average one 14 x 14 corner and still give 1 x 1); a smaller one (a fixed pool could not run).
    sizes = {"recorded": RECORDED, "batch": (3, 8, 14, 14), "larger": (1, 8, 20, 20), "smaller": (1, 8, 9, 9)}
    for name, size in sizes.items():
        x = torch.rand(size)
        with torch.no_grad():
            output = model(x)
        assert output.abs().max() > 0.05  # outputs well above the tolerance: the comparison can fail
        save_tensors(folder / f"input_{name}.pt", {"x": x})
        save_tensors(folder / f"expected_{name}.pt", {"output": output}, atol=1e-5, rtol=1e-5, top_k=5)
        cases[name] = (folder / f"input_{name}.pt", folder / f"expected_{name}.pt")
    return SimpleNamespace(model=folder / "model.pt", cases=cases)


def ts_infer(default_project: SimpleNamespace, *args: object, rewrites: bool = True) -> str:
    runner = default_project.path / "build" / "ts-infer"
    result = run([runner, *args], env={**os.environ, "TORCH_DEPLOY_REWRITES": "1" if rewrites else "0"})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("case", ["recorded", "batch", "larger", "smaller"])
def test_the_rewritten_model_computes_what_python_computes(
    default_project: SimpleNamespace, squeeze_excitation: SimpleNamespace, case: str
) -> None:
    """silu as sigmoid and product, hardsigmoid as add, clamp and divide, and the global pools as fixed average pools
    for the recorded shape: the runner's parity holds at that shape, at another batch size, and at other image sizes,
    where the model's own pools run."""
    assert default_project.first.returncode == 0, default_project.first.stdout
    given, expected = squeeze_excitation.cases[case]
    out = ts_infer(default_project, squeeze_excitation.model, "--input", given, "--expect", expected)
    assert "parity: PASS" in out, out


def test_the_rewrites_leave_fewer_operators_outside_the_fused_partitions(
    default_project: SimpleNamespace, squeeze_excitation: SimpleNamespace
) -> None:
    """--bench --json counts the partitions and what runs outside them: without the rewrites (TORCH_DEPLOY_REWRITES=0)
    the silu, the two pools, the hardsigmoid and the product it scales are left out; with them none of those are."""
    assert default_project.first.returncode == 0, default_project.first.stdout
    given, _ = squeeze_excitation.cases["recorded"]
    counts = {}
    for rewrites in (False, True):
        out = ts_infer(default_project, squeeze_excitation.model, "--input", given, "--bench", "3", "--json",
                       rewrites=rewrites)  # fmt: skip
        result = json.loads(out)
        counts[rewrites] = (result["fused_partitions"], result["unfused_operators"])
    (partitions_before, outside_before), (partitions_after, outside_after) = counts[False], counts[True]
    assert partitions_before >= 1 and partitions_after >= 1, counts
    assert outside_after <= outside_before - 5, counts


def test_an_aoti_package_reports_no_fusion_counts(default_project: SimpleNamespace) -> None:
    """The counts are TorchScript's with --optimize onednn: a .pt2 (and --optimize ofi) gives null, not a made-up 0."""
    assert default_project.first.returncode == 0, default_project.first.stdout
    artifacts = default_project.path / "artifacts"
    for args in (["model.pt2"], ["model.pt", "--optimize", "ofi"]):
        out = ts_infer(default_project, artifacts / args[0], *args[1:], "--input", artifacts / "input.pt", "--bench", "2",
                       "--json")  # fmt: skip
        result = json.loads(out)
        assert result["fused_partitions"] is None and result["unfused_operators"] is None, result


@pytest.mark.parametrize("case", ["recorded", "larger"])
def test_a_bf16_model_gets_the_rewrites_and_its_python_reference_too(
    default_project: SimpleNamespace,
    squeeze_excitation: SimpleNamespace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    """In bf16 the activations are rewritten and, at the recorded shape, the pools fixed (silu, the pools, hardsigmoid
    and the product it scales fuse), and Python's bf16 reference (artifacts.run_in_bf16, what make export writes to
    expected_bf16.pt) makes the same rewrites, and fixes the pools only where the runner does: the runner reproduces
    it to far below one bf16 step, at the recorded shape and at a larger image, where the model's own pools run.
    Emulated where the CPU has no native bf16, on both sides, as make verify checks it."""
    from torch_deploy import artifacts
    from torch_deploy.artifacts import load_tensors, save_tensors

    assert default_project.first.returncode == 0, default_project.first.stdout
    given, _ = squeeze_excitation.cases[case]
    bf16 = ["--precision", "bf16", "--emulate-bf16"]
    if case == "recorded":
        timed = [squeeze_excitation.model, "--input", given, *bf16, "--bench", "3", "--json"]
        counts = {
            rewrites: json.loads(ts_infer(default_project, *timed, rewrites=rewrites))["unfused_operators"]
            for rewrites in (False, True)
        }
        assert counts[True] <= counts[False] - 5, counts
    inputs, _ = load_tensors(given)
    pools_left = []  # after each fix_pools: the global pools left in the graph
    library_fix = artifacts.fix_pools

    def fix_pools(graph: torch._C.Graph, inputs: list[torch.Tensor]) -> None:
        library_fix(graph, inputs)
        pools_left.append(str(graph).count("aten::adaptive_avg_pool2d"))

    monkeypatch.setattr(artifacts, "fix_pools", fix_pools)
    _, fused = artifacts.run_in_bf16(squeeze_excitation.model, list(inputs.values()))
    assert pools_left == ([0] if case == "recorded" else []), pools_left
    reference = tmp_path / "expected_bf16.pt"
    save_tensors(reference, dict(fused), atol=1e-6, rtol=0.0, top_k=5, bf16=1)
    out = ts_infer(default_project, squeeze_excitation.model, "--input", given, "--expect", reference, *bf16)
    assert "parity in bf16: PASS" in out, out


@pytest.mark.parametrize("channels_last", ["1", "0"])
def test_an_image_output_is_right_with_channels_last_inputs_and_without(
    default_project: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channels_last: str
) -> None:
    """A model whose output is an image too (a segmentation's shape): the runner gives it its input channels-last, or
    as given under TORCH_DEPLOY_CHANNELS_LAST=0, and either way reproduces Python's fp32 output, and in bf16 Python's
    reference computed under the same setting."""
    from torch_deploy.artifacts import run_in_bf16, save_tensors

    assert default_project.first.returncode == 0, default_project.first.stdout
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.SiLU(), torch.nn.Conv2d(8, 4, 1)).eval()
    torch.jit.script(model).save(
        str(tmp_path / "model.pt"), _extra_files={"deploy.txt": "input x float32 1 3 16 16\noutput output\n"}
    )
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        output = model(x)
    save_tensors(tmp_path / "input.pt", {"x": x})
    save_tensors(tmp_path / "expected.pt", {"output": output}, atol=1e-5, rtol=1e-5, top_k=0)
    monkeypatch.setenv("TORCH_DEPLOY_CHANNELS_LAST", channels_last)  # the runner's, and Python's bf16 reference's
    runner = [default_project.path / "build" / "ts-infer", tmp_path / "model.pt", "--input", tmp_path / "input.pt"]
    fp32 = run([*runner, "--expect", tmp_path / "expected.pt"])
    assert "parity: PASS" in fp32.stdout, fp32.stdout + fp32.stderr
    _, fused = run_in_bf16(tmp_path / "model.pt", [x])
    save_tensors(tmp_path / "expected_bf16.pt", dict(fused), atol=1e-6, rtol=0.0, top_k=0, bf16=1)
    bf16 = run([*runner, "--expect", tmp_path / "expected_bf16.pt", "--precision", "bf16", "--emulate-bf16"])
    assert "parity in bf16: PASS" in bf16.stdout, bf16.stdout + bf16.stderr
