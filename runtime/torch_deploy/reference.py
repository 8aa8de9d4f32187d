"""The reference outputs of model.pt on a GPU: what the C++ runner on that GPU must reproduce (make verify DEVICE=cuda).

    python -m torch_deploy reference --device cuda [--artifacts artifacts]

A TorchScript file runs on any device; its reference outputs on the CPU (expected.pt) are export's. On a GPU, TF32 and
cuDNN's choice of algorithms give other numbers, as right as the CPU's: the reference there is Python running the same
model.pt on the same kind of device, prepared as torch_deploy::Model prepares it there (frozen, then
optimize_for_inference) and run until TorchScript has fused it. It goes to expected_cuda.pt (and expected_cuda_batch.pt
at the second batch size), with a tolerance measured as bf16's is: the difference between those outputs and the same
model's first, not yet fused, run on that GPU (two right GPU computations differ by this much), deploy.json's atol,
and one TF32 step at the outputs' scale when the model runs convolutions or matrix products in TF32. The drift from the
CPU's reference outputs is printed and recorded beside it.

export writes it when deploy.json's device is a GPU and this machine has one; make verify DEVICE=cuda makes it
otherwise. An AOTInductor package is compiled for one device: export ran it there, so its reference outputs
(expected_aoti.pt) are that device's already.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import torch

from torch_deploy import artifacts, formats
from torch_deploy.artifacts import DeployError, jit_quietly, load_tensors, load_torchscript, named_outputs
from torch_deploy.device import Device, DeviceError, parse, problem

TF32_EPS = 2.0**-10  # TF32 keeps 10 bits of mantissa
# The operators that run in TF32 on a GPU when torch allows it (cuDNN's convolutions; cuBLAS's matrix products).
CONVOLUTIONS = ("aten::conv", "aten::_convolution", "aten::cudnn_convolution")
MATRIX_PRODUCTS = ("aten::linear", "aten::matmul", "aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm")


def usable(device: Device) -> torch.device:
    """``device`` as torch's, once this torch and this machine can run models there; else DeviceError, one line."""
    if device.is_gpu:
        if torch.version.cuda is None:
            raise DeviceError(
                f"{device}: torch {torch.__version__} of {sys.executable} is a CPU build; install a CUDA build of torch "
                "(pip install torch, on Linux) to run the model on the GPU"
            )
        missing = problem(device)
        if missing or not torch.cuda.is_available():
            raise DeviceError(f"{device}: {missing or 'torch cannot use the GPU (torch.cuda.is_available() is False)'}")
    return torch.device(str(device))


def prepared_on(model_file: Path, device: torch.device) -> torch.jit.ScriptModule:
    """model.pt loaded onto ``device`` and prepared there as torch_deploy::Model prepares it off the CPU: frozen, then
    optimize_for_inference (oneDNN Graph fusion is for the CPU)."""
    with jit_quietly():
        return torch.jit.optimize_for_inference(load_torchscript(model_file, map_location=device).eval())


def fused_run(module: Any, inputs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[tuple[str, torch.Tensor]]]:
    """The first run's outputs (profiled, not yet fused) and the outputs from then on, by name, on the CPU."""
    with jit_quietly(), torch.no_grad():
        first = [t.cpu() for _, t in named_outputs(module(*inputs))]
        for _ in range(torch._C._jit_get_num_profiled_runs()):
            module(*inputs)
        return first, [(name, t.cpu()) for name, t in named_outputs(module(*inputs))]


def runs_in_tf32(module: Any) -> bool:
    """Whether the model runs operators that torch computes in TF32 on this GPU (a convolution with cuDNN's TF32
    allowed, torch's default; a matrix product with cuBLAS's allowed, not its default)."""
    kinds = {node.kind() for node in module.inlined_graph.nodes()} if hasattr(module, "inlined_graph") else set()
    convolutions = torch.backends.cudnn.allow_tf32 and any(k.startswith(CONVOLUTIONS) for k in kinds)
    products = torch.backends.cuda.matmul.allow_tf32 and any(k.startswith(MATRIX_PRODUCTS) for k in kinds)
    return bool(convolutions or products)


def tolerance(fused: list[torch.Tensor], first: list[torch.Tensor], atol: float, tf32: bool) -> tuple[float, float]:
    """The measured spread (fused against first run) and the atol it gives: the larger of deploy.json's atol, the
    spread, and with TF32 one TF32 step at the outputs' scale."""
    floating = [(f, p) for f, p in zip(fused, first, strict=True) if f.is_floating_point()]
    spread = artifacts.max_abs_diff([f for f, _ in floating], [p for _, p in floating])
    scale = max((f.abs().max().item() for f, _ in floating if f.numel()), default=0.0)
    step = TF32_EPS * 2.0 ** math.floor(math.log2(scale)) if tf32 and scale > 0 else 0.0
    return spread, max(atol, spread, step)


def record(folder: Path, device: Device) -> list[str]:
    """Write model.pt's reference outputs on ``device`` into ``folder`` (the artifacts), at the second batch size too
    when export recorded one; returns the files written. Raises DeviceError or DeployError, one line each."""
    torch_device = usable(device)
    entry = next((e for e in formats.exported(folder) if e.format.any_device), None)
    if entry is None:  # only packages, each compiled for one device: their reference outputs are export's
        return []
    module = prepared_on(folder / entry.model_file, torch_device)
    name = getattr(torch.cuda.get_device_properties(torch_device), "name", str(device)) if device.is_gpu else "CPU"
    written = []
    for batch in (False, True) if entry.expected_batch else (False,):
        inputs_file = folder / (formats.BATCH_INPUT if batch else formats.INPUT)
        cpu_reference, numbers = load_tensors(folder / entry.format.expected(batch))
        inputs = [t.to(torch_device) for t in load_tensors(inputs_file)[0].values()]
        first, named = fused_run(module, inputs)
        outputs = [t for _, t in named]
        k = int(numbers.get("top_k", 0))
        spread, atol = tolerance(outputs, first, numbers.get("atol", 1e-4), runs_in_tf32(module))
        drift, overlap = artifacts.drift(outputs, list(cpu_reference.values()), k)
        shown = f", top-{k} overlap {overlap}/{k}" if k > 0 and artifacts.is_scores(outputs[0]) else ""
        at = " at the second batch size" if batch else ""
        print(
            f"GPU reference{at}: model.pt on {device} ({name}), fused against its first run: max abs diff {spread:.3e}, "
            f"so C++ on the GPU is held to atol {atol:.3e}; drift from the CPU: max abs diff {drift:.3e}{shown}"
        )
        target = folder / entry.format.expected(batch, device.type)
        partial = target.with_name(f".{target.name}.partial")
        artifacts.save_tensors(
            partial, dict(named), atol=atol, rtol=numbers.get("rtol", 1e-4), top_k=k,
            drift_max_abs_diff=drift, drift_top_k_overlap=overlap,
        )  # fmt: skip
        partial.replace(target)  # whole or not at all: make takes a file that is there for a finished one
        written.append(target.name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torch_deploy reference", description=__doc__.splitlines()[0])
    parser.add_argument("--device", required=True, help="the GPU: cuda or cuda:N")
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="the exported files")
    args = parser.parse_args(argv)
    try:
        device = parse(args.device)
        if not device.is_gpu:
            raise DeviceError(f"{device}: the CPU's reference outputs are export's (expected.pt); give a GPU: cuda")
        record(args.artifacts, device)
    except (DeviceError, DeployError, formats.ListingError) as err:
        print(f"reference: FAIL: {err}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
