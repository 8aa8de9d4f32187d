"""Devices in the runtime's Python, without a build: which device a project runs on and whether this machine has it
(torch_deploy.device, the driver asked as the C++ library asks it), the GPU reference's measurements (run here on the
CPU, the same code), export's lines for a GPU project on a machine without a GPU, and the Triton config of a GPU
project, parsed with Triton's own schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from google.protobuf import text_format
from torch_deploy import device as devices
from torch_deploy import reference
from torch_deploy.artifacts import load_model
from tritonclient.grpc import model_config_pb2

from tests.conftest import lane_python

NET = """\
import torch


def make():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(16, 5))
"""

SETTINGS = {
    "model": "models/net.py:make", "weights": "none", "export_method": "script", "formats": ["torchscript"],
    "precision": "fp32", "device": "cuda", "inputs": [{"name": "x", "shape": [1, 3, 4, 4], "dtype": "float32"}],
    "dynamic_batch": False, "seed": 0, "top_k": 0, "preprocess": None, "labels": None, "atol": 1e-4, "rtol": 1e-4,
}  # fmt: skip

# What this machine lacks for a GPU: the tests that need one to be missing skip on a machine that has it.
MISSING = devices.problem(devices.Device("cuda"))
no_gpu = pytest.mark.skipif(MISSING is None, reason="this machine has a GPU")


def project(folder: Path, **settings: object) -> Path:
    """A folder with deploy.json (SETTINGS, with ``settings``) and the model it names, as `tsgen new` leaves one."""
    (folder / "models").mkdir(parents=True)
    (folder / "models" / "net.py").write_text(NET)
    (folder / "deploy.json").write_text(json.dumps({**SETTINGS, **settings}))
    return folder


def runtime(folder: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """`python -m torch_deploy ARGS` in ``folder``, with the default lane's Python."""
    command = [lane_python("default"), "-m", "torch_deploy", *args]
    return subprocess.run([str(part) for part in command], cwd=folder, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    ("text", "parsed"), [("cpu", "cpu"), ("cuda", "cuda"), ("cuda:0", "cuda:0"), ("cuda:12", "cuda:12")]
)
def test_devices_are_written_as_torch_writes_them(text: str, parsed: str) -> None:
    assert str(devices.parse(text)) == parsed


@pytest.mark.parametrize("text", ["gpu", "cuda:", "cuda:x", "cpu:0", "CUDA", "cuda:0:1"])
def test_anything_else_is_named_with_what_to_write(text: str) -> None:
    with pytest.raises(devices.DeviceError) as refused:
        devices.parse(text)
    assert str(refused.value) == f"device {text!r} is not a device: use cpu, cuda or cuda:N (N: a GPU's index, from 0)"


def test_the_project_device_is_deploy_json_s_and_the_cpu_when_it_names_none(tmp_path: Path) -> None:
    """`python -m torch_deploy device` (what make reads DEVICE from): deploy.json's "device", cpu for a project made
    before there was one; one that is not a device is refused with the file to fix."""
    assert runtime(project(tmp_path / "gpu"), "device").stdout == "cuda\n"
    older = project(tmp_path / "older")
    (older / "deploy.json").write_text(json.dumps({k: v for k, v in SETTINGS.items() if k != "device"}))
    assert runtime(older, "device").stdout == "cpu\n"
    wrong = runtime(project(tmp_path / "wrong", device="gpu"), "device")
    assert wrong.returncode == 2
    assert wrong.stderr == (
        "device: FAIL: device 'gpu' is not a device: use cpu, cuda or cuda:N (N: a GPU's index, from 0); fix "
        '"device" in deploy.json\n'
    )


@no_gpu
def test_a_gpu_this_machine_lacks_is_named_in_one_line(tmp_path: Path) -> None:
    """--check (make verify's first step on a GPU): the CPU is always there; a GPU without the NVIDIA driver is one
    line naming what is missing and the way out, exit 1."""
    assert runtime(tmp_path, "device", "--check", "cpu").returncode == 0
    result = runtime(tmp_path, "device", "--check", "cuda:1")
    assert result.returncode == 1
    assert result.stdout == (
        f"device: FAIL: cuda:1: {MISSING}; run it where an NVIDIA GPU and its driver are, or on the CPU: DEVICE=cpu\n"
    )
    assert MISSING.startswith("no NVIDIA driver on this machine (libcuda.so.1: cannot open shared object file")


@no_gpu
def test_export_of_a_gpu_project_without_a_gpu_says_what_waits_for_one(tmp_path: Path) -> None:
    """A GPU project's model.pt is exported here (it runs on any device), records its device, and a line says that
    its GPU reference is made where the GPU is; its model.pt2 cannot be (AOTInductor compiles for the device it exports
    on): one line, exit 1, nothing written."""
    folder = project(tmp_path / "gpu")
    exported = runtime(folder, "export")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert (
        f"note: no GPU reference of model.pt yet: cuda: {MISSING}; make verify DEVICE=cuda records it where the "
        in (exported.stdout)
    )
    assert (folder / "artifacts/formats.txt").read_text().splitlines()[1] == "torchscript model.pt expected.pt"
    assert load_model(folder / "artifacts/model.pt").info.device == "cuda"
    aoti = project(tmp_path / "aoti", formats=["aoti"])
    refused = runtime(aoti, "export")
    assert refused.returncode == 1 and not (aoti / "artifacts").exists()
    assert refused.stderr == (
        f"ERROR: formats aoti, device cuda: AOTInductor compiles model.pt2 for the device it exports on, and {MISSING}; "
        'export on a machine with the GPU, or set "formats" to ["torchscript"] in deploy.json (model.pt runs on any '
        "device)\n"
    )
    reference_line = runtime(folder, "reference", "--device", "cuda")
    assert reference_line.returncode == 1
    assert reference_line.stdout == f"reference: FAIL: cuda: {MISSING}\n"


def test_a_device_that_is_not_one_stops_export_before_anything_is_built(tmp_path: Path) -> None:
    refused = runtime(project(tmp_path / "wrong", device="gpu:0"), "export")
    assert refused.returncode == 1
    assert refused.stderr == (
        "ERROR: device 'gpu:0' is not a device: use cpu, cuda or cuda:N (N: a GPU's index, from 0); fix \"device\" in "
        "deploy.json\n"
    )


def test_the_gpu_reference_is_measured_as_the_library_runs_the_model(tmp_path: Path) -> None:
    """reference's steps, on the CPU here (the same code runs on the GPU): model.pt prepared as torch_deploy::Model
    prepares it off the CPU (frozen, optimize_for_inference) computes what the model does; the first run and the
    fused ones give the spread; the tolerance is the largest of deploy.json's atol, the spread, and one TF32 step at
    the outputs' scale when the model runs convolutions in TF32."""
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(16, 5))
    net.eval()
    torch.jit.script(net).save(str(tmp_path / "model.pt"))
    x = torch.rand(2, 3, 4, 4)
    module = reference.prepared_on(tmp_path / "model.pt", torch.device("cpu"))
    first, fused = reference.fused_run(module, [x])
    with torch.no_grad():
        eager = net(x)
    assert torch.allclose(fused[0][1], eager, atol=1e-6) and torch.allclose(first[0], eager, atol=1e-6)
    assert reference.tolerance([eager], [eager + 1e-3], 1e-4, tf32=False) == pytest.approx((1e-3, 1e-3), rel=1e-4)
    scale = eager.abs().max().item()
    step = reference.TF32_EPS * 2.0 ** int(torch.tensor(scale).log2().floor())
    assert reference.tolerance([eager], [eager], 1e-9, tf32=True) == (0.0, pytest.approx(step))
    tf32 = torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = True
        assert reference.runs_in_tf32(module) or reference.runs_in_tf32(torch.jit.script(net))
        torch.backends.cudnn.allow_tf32 = False
        assert not reference.runs_in_tf32(torch.jit.script(net))
    finally:
        torch.backends.cudnn.allow_tf32 = tf32


def test_triton_serves_a_gpu_project_on_the_gpu(tmp_path: Path) -> None:
    """make triton of a GPU project: instance_group KIND_GPU (any GPU; cuda:1 names it in gpus), as Triton's own
    ModelConfig schema reads it; the model file is the same TorchScript file (the backend loads it onto the GPU)."""
    for device, gpus in (("cuda", []), ("cuda:1", [1])):
        folder = project(tmp_path / device.replace(":", "-"), device=device)
        exported = runtime(folder, "export")
        assert exported.returncode == 0, exported.stdout + exported.stderr
        served = runtime(folder, "triton")
        assert served.returncode == 0, served.stdout + served.stderr
        text = (folder / "triton" / folder.name / "config.pbtxt").read_text()
        config = text_format.Parse(text, model_config_pb2.ModelConfig())
        assert [(g.count, g.kind, list(g.gpus)) for g in config.instance_group] == [
            (1, model_config_pb2.ModelInstanceGroup.KIND_GPU, gpus)
        ]


def test_verify_refuses_a_device_that_is_not_one(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "torch_deploy", "verify", "--runner", "ts-infer", "--device", "gpu"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert (
        result.stdout
        == "verify: FAIL: device 'gpu' is not a device: use cpu, cuda or cuda:N (N: a GPU's index, from 0)\n"
    )
