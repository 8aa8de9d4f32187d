"""Model sources end to end: torchvision weights (a state dict file, a checkpoint, mismatched keys, a download
that cannot happen offline), an already exported TorchScript file, and export_method auto on a factory that
returns its own example inputs. The sources that need no torchvision run on the cpu lane too (torch 2.13.0, C++17).
Most projects keep the default input shape and top-k, so their builds are ccache hits of their lane's first one."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torchvision

from tests.conftest import lane_python, run, torch_package, tsgen
from tests.with_build.conftest import DICT_OUTPUT, PAIR, TINY_NET, generated, make, parity
from tests.with_build.test_errors import save_tensors

pytestmark = pytest.mark.e2e


class SmallClassifier(torch.nn.Module):
    """A conv classifier small enough to script in a test, taking the default 1x3x224x224 input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.head = torch.nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


TWO_INPUTS = """\
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 10)

    def forward(self, x, y):
        return self.fc(x) + sum(v for v in [y.mean()])  # a generator expression: TorchScript cannot compile it


def make():
    return Net(), (torch.rand(2, 4), torch.rand(5))
"""


TEXT_MODEL = """\
import torch


class TextNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 8)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        vectors = self.embed(ids) * mask.unsqueeze(-1).to(torch.float32)
        return self.head(vectors.sum(dim=1)) * scale.to(torch.float32)


def make():
    return TextNet()
"""


FIXED_BATCH = """\
import torch


class FixedBatch(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = int(x.shape[0])  # a trace records this as a constant: the traced model only works at that batch
        return self.fc(x.reshape(rows, -1))


def make():
    return FixedBatch()
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Weights and model files, made on the spot: nothing is downloaded."""
    folder = tmp_path_factory.mktemp("sources")
    torch.manual_seed(5)
    state = torchvision.models.resnet18().state_dict()
    torch.save(state, folder / "r18.pth")
    torch.save({"state_dict": state, "epoch": 3}, folder / "checkpoint.pth")
    broken = dict(state)
    broken.pop("fc.weight")
    broken["head.extra"] = torch.ones(1)
    torch.save(broken, folder / "other-arch.pth")
    torch.jit.script(SmallClassifier().eval()).save(str(folder / "small.pt"))
    (folder / "two_inputs.py").write_text(TWO_INPUTS)
    (folder / "dict_output.py").write_text(DICT_OUTPUT)
    (folder / "text_model.py").write_text(TEXT_MODEL)
    (folder / "fixed_batch.py").write_text(FIXED_BATCH)
    (folder / "pair.py").write_text(PAIR)
    (folder / "control_flow.py").write_text(TINY_NET)
    return folder


LANES = ["default", "cpu"]


def on_lane(lane: str) -> list[object]:
    """The tsgen flags of a lane: the default lane's Python runs tsgen; the cpu lane's torch 2.13.0 (no
    torchvision) exports, and its libtorch, given as a folder, builds."""
    if lane == "default":
        return []
    python = lane_python("cpu")
    return ["--python", python, "--libtorch", torch_package(python)]


def expected_output(project: Path) -> torch.Tensor:
    return dict(torch.jit.load(str(project / "artifacts/expected.pt")).named_buffers())["output"]


def test_weights_from_a_state_dict_and_from_a_checkpoint(files: Path, default_project: SimpleNamespace) -> None:
    """A state dict file and a checkpoint holding it give the same export, computed with exactly those weights
    (checked here against torchvision's resnet18 loaded independently), and C++ reproduces it."""
    outputs = []
    for name in ("r18.pth", "checkpoint.pth"):
        generation = tsgen("new", f"from-{name[:-4]}", "--weights", name, "--no-build", "-o", "out", cwd=files)
        assert generation.returncode == 0, generation.stdout + generation.stderr
        project = files / "out" / f"from_{name[:-4].replace('-', '_')}"
        assert json.loads((project / "deploy.json").read_text())["weights"] == f"models/{name}"
        result = make(project, "export")
        assert result.returncode == 0, result.stdout
        outputs.append(expected_output(project))
    checked = parity(files / "out/from_r18", default_project.path / "build/ts-infer")
    assert checked.returncode == 0 and "parity: PASS: " in checked.stdout, checked.stdout + checked.stderr
    reference = torchvision.models.resnet18()
    reference.load_state_dict(torch.load(files / "r18.pth", weights_only=True))
    inputs = dict(torch.jit.load(str(files / "out/from_r18/artifacts/input.pt")).named_buffers())["input"]
    with torch.no_grad():
        assert torch.allclose(reference.eval()(inputs), outputs[0], atol=1e-5)
    assert torch.equal(outputs[0], outputs[1])


def test_weights_of_another_architecture_are_refused_by_key(files: Path) -> None:
    """Missing and unexpected keys are named in one line; nothing is exported."""
    assert tsgen("new", "mismatch", "--weights", "other-arch.pth", "--no-build", "-o", "out", cwd=files).returncode == 0
    project = files / "out" / "mismatch"
    result = make(project, "export")
    assert result.returncode != 0
    assert (
        "ERROR: weights=models/other-arch.pth: does not fit the model (missing keys: fc.weight; unexpected keys: "
        "head.extra); use weights saved from this architecture" in result.stdout
    )
    assert not (project / "artifacts").exists()


def test_downloading_weights_offline_fails_in_one_line(files: Path) -> None:
    """weights=DEFAULT without network: one line naming the URL and how to pass the file instead."""
    assert tsgen("new", "offline", "--weights", "DEFAULT", "--no-build", "-o", "out", cwd=files).returncode == 0
    dead_proxy = "http://127.0.0.1:9"  # nothing listens there: the download fails at once, as offline
    env = {**os.environ, "TORCH_HOME": str(files / "torch-home"), "https_proxy": dead_proxy, "HTTPS_PROXY": dead_proxy}
    result = make(files / "out" / "offline", "export", env=env)
    assert result.returncode != 0
    errors = [line for line in result.stdout.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and errors[0].startswith("ERROR: weights=DEFAULT: downloading https://")
    assert "tsgen new --weights path/to/resnet18-f37072fd.pth" in errors[0]


@pytest.mark.parametrize("lane", LANES)
def test_a_torchscript_file_is_deployed_without_export(files: Path, lane: str) -> None:
    """model=path/to/model.pt: no export step, Python's reference comes from running that file, verify passes."""
    out = f"out-{lane}"
    generation = tsgen("new", "from-pt", "--model", "small.pt", *on_lane(lane), "--no-build", "-o", out, cwd=files)
    assert generation.returncode == 0, generation.stdout + generation.stderr
    verify = make(files / out / "from_pt", "verify")
    assert verify.returncode == 0, verify.stdout
    assert "model is TorchScript already: saved as it is" in verify.stdout
    assert verify.stdout.splitlines()[-1].startswith("verify: PASS")


@pytest.mark.parametrize("lane", LANES)
def test_auto_falls_back_to_trace_and_uses_the_factory_inputs(files: Path, lane: str) -> None:
    """export_method auto on a model TorchScript cannot compile: one note saying why, a traced export, the
    factory's two example inputs as the reference, and C++ parity on both inputs."""
    out = f"out-{lane}"
    generation = tsgen(
        "new", "two-inputs", "--model", "two_inputs.py:make", "--export-method", "auto", *on_lane(lane),
        "--no-build", "-o", out, cwd=files,
    )  # fmt: skip
    assert generation.returncode == 0, generation.stdout + generation.stderr
    project = files / out / "two_inputs"
    verify = make(project, "verify")
    assert verify.returncode == 0, verify.stdout
    notes = [line for line in verify.stdout.splitlines() if line.startswith("note: torch.jit.script failed")]
    assert len(notes) == 1 and notes[0].endswith("; exporting with torch.jit.trace instead")
    assert "between the eager and the traced model" in verify.stdout
    inputs = dict(torch.jit.load(str(project / "artifacts/input.pt")).named_buffers())
    assert {name: list(t.shape) for name, t in inputs.items()} == {"input_0": [2, 4], "input_1": [5]}

    (project / "deploy.json").write_text(
        json.dumps({**json.loads((project / "deploy.json").read_text()), "export_method": "script"})
    )
    strict = make(project, "export")
    assert strict.returncode != 0
    assert "ERROR: torch.jit.script failed: " in strict.stdout and "use export_method auto or trace" in strict.stdout


@pytest.mark.parametrize("lane", LANES)
def test_a_dict_output_is_compared_tensor_by_tensor(files: Path, lane: str, request: pytest.FixtureRequest) -> None:
    """A dict of a score tensor and a bool mask: every tensor is compared, the parity line gives each one's max abs
    diff by its key, the scores print as top-k and the mask as shape, dtype and statistics."""
    if lane == "default":  # the session's project (conftest.py), which test_triton.py uses too
        made = request.getfixturevalue("dict_output_project")
    else:
        made = generated(files, f"out-{lane}", "dict-out", "--model", "dict_output.py:make", *on_lane(lane))
    assert made.generation.returncode == 0, made.generation.stdout + made.generation.stderr
    project, verify = made.path, made.verify
    assert verify.returncode == 0, verify.stdout
    assert "logits top-5:" in verify.stdout.splitlines()
    assert any(line.startswith("mask [1, 4, 222, 222] Bool min ") for line in verify.stdout.splitlines())
    parity = next(line for line in verify.stdout.splitlines() if line.startswith("parity: PASS"))
    assert "; per output: logits " in parity and ", mask " in parity
    names = [name for name, _ in torch.jit.load(str(project / "artifacts/expected.pt")).named_buffers()]
    assert names == ["logits", "mask"]


@pytest.mark.parametrize("lane", LANES)
def test_named_inputs_of_several_dtypes(files: Path, lane: str) -> None:
    """Three named inputs (int64 token ids, a bool mask, a float16 scale): the reference inputs have those names,
    shapes and dtypes, C++ reproduces Python on them, and the runner's random run makes inputs of the same kinds."""
    spec = "ids:2,16:int64;mask:2,16:bool;scale:2,1:float16"
    generation = tsgen(
        "new",
        "text",
        "--model",
        "text_model.py:make",
        "--inputs",
        spec,
        "--top-k",
        "2",
        *on_lane(lane),
        "--no-build",
        "-o",
        f"out-{lane}",
        cwd=files,
    )
    assert generation.returncode == 0, generation.stdout + generation.stderr
    project = files / f"out-{lane}" / "text"
    verify = make(project, "verify")
    assert verify.returncode == 0, verify.stdout
    inputs = dict(torch.jit.load(str(project / "artifacts/input.pt")).named_buffers())
    kinds = {name: (list(t.shape), t.dtype) for name, t in inputs.items()}
    assert kinds == {"ids": ([2, 16], torch.int64), "mask": ([2, 16], torch.bool), "scale": ([2, 1], torch.float16)}
    assert int(inputs["ids"].min()) >= 0 and int(inputs["ids"].max()) < 10
    alone = make(project, "build")  # built; now the tutorial's run on random inputs of those kinds
    assert alone.returncode == 0
    from tests.conftest import run

    result = run([project / "build/ts-infer", project / "artifacts/model.pt"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "DONE"
    # Its embedding's float32 output meets bf16 weights: asked for bf16, the library runs the model as exported, in fp32,
    # and says why in one note.
    bf16 = run([project / "build/ts-infer", project / "artifacts/model.pt", "--precision", "bf16", "--emulate-bf16"])
    assert bf16.returncode == 0 and bf16.stdout.splitlines()[-1] == "DONE", bf16.stderr
    (note,) = bf16.stderr.splitlines()
    assert note.startswith("ts-infer: note: the model failed in bf16 with --optimize onednn (") and note.endswith(
        "); ran it as loaded, in fp32"
    ), note


@pytest.mark.parametrize("lane", LANES)
def test_dynamic_batch_is_checked_in_export_and_parity(files: Path, lane: str, request: pytest.FixtureRequest) -> None:
    """--dynamic-batch: export and C++ parity also run at batch size + 1, and the summary says so (resnet18 on the
    default lane, the dict-output model on the cpu lane, which has no torchvision; the .pt2 of a dynamic batch is
    the next test's)."""
    if lane == "default":  # the session's project (conftest.py), which test_triton.py uses too
        made = request.getfixturevalue("dynamic_project")
    else:
        made = generated(
            files, f"out-{lane}", "dynamic", "--model", "dict_output.py:make", "--dynamic-batch", *on_lane(lane)
        )
    assert made.generation.returncode == 0, made.generation.stdout + made.generation.stderr
    verify = made.verify
    assert verify.returncode == 0, verify.stdout
    assert "export check at batch 2: PASS" in verify.stdout
    assert any(line.startswith("parity at the second batch size: PASS") for line in verify.stdout.splitlines())
    # Every project test ran, the dynamic batch one included (the cpu lane skips the comparison with torchvision).
    skipped = "" if lane == "default" else ", 1 skipped"
    summary = verify.stdout.splitlines()[-1]
    assert re.search(rf"also at a second batch size\); tests: \d+ passed{skipped}(, \d+ warnings?)? in ", summary)


@pytest.mark.parametrize("lane", LANES)
def test_an_aoti_package_with_two_inputs_a_dict_output_and_a_dynamic_batch(
    files: Path, lane: str, request: pytest.FixtureRequest
) -> None:
    """--formats aoti on a factory with two inputs and a dict output, with a dynamic batch: model.pt2 alone, C++
    parity per output at both batch sizes (1, which torch.export takes for a constant, so the export doubles it, and
    2), inputs of another kind refused in one line (not read out of bounds). On the default
    lane: a missing C++ compiler and missing CPU features are refused in one line; on the cpu lane, the default
    lane's libtorch refuses the package torch 2.13 compiled."""
    if lane == "default":  # the session's project (conftest.py), which test_triton.py uses too
        made = request.getfixturevalue("pair_project")
    else:
        args = ["--model", "pair.py:make", "--formats", "aoti", "--dynamic-batch", *on_lane(lane)]
        made = generated(files, f"out-{lane}", "pair", *args)
    assert made.generation.returncode == 0, made.generation.stdout + made.generation.stderr
    project, verify = made.path, made.verify
    assert verify.returncode == 0, verify.stdout
    artifacts = project / "artifacts"
    assert {path.name for path in artifacts.iterdir()} == {
        "model.pt2", "formats.txt", "input.pt", "input_batch.pt", "expected_aoti.pt", "expected_aoti_batch.pt",
    }  # fmt: skip
    lines = verify.stdout.splitlines()
    assert "note: torch" not in verify.stdout  # no TorchScript deprecation note: nothing was exported to TorchScript
    for prefix in ("parity: PASS", "parity at the second batch size: PASS"):
        parity = [line for line in lines if line.startswith(prefix)]
        assert len(parity) == 1 and "; per output: scores " in parity[0] and ", norm " in parity[0], lines

    runner = project / "build/ts-infer"
    save_tensors(project / "wrong.pt", input_0=torch.rand(2, 5), input_1=torch.rand(2, 1))
    wrong = run([runner, artifacts / "model.pt2", "--input", project / "wrong.pt"])
    assert wrong.returncode == 1 and len(wrong.stderr.splitlines()) == 1, wrong.stderr
    assert wrong.stderr.startswith(
        f"ts-infer: error: {artifacts / 'model.pt2'}: the model failed on input [2, 5] Float, [2, 1] Float: input "
        "input_0 is not of the kind the package was compiled for (only the first dimension may differ); give inputs "
        "of the shape and dtype export.py used ([1, 4] Float, [1, 1] Float)"
    ), wrong.stderr

    if lane == "default":
        config = project / "deploy.json"
        edited = config.stat()
        config.touch()
        before = {path.name: path.stat().st_mtime_ns for path in artifacts.iterdir()}, artifacts.stat().st_ino
        no_compiler = make(project, "export", env={**os.environ, "CXX": "/no/such/g++"})
        # The export is current again for the project's other users (test_triton.py): nothing was changed.
        os.utime(config, ns=(edited.st_atime_ns, edited.st_mtime_ns))
        assert no_compiler.returncode != 0
        assert "ERROR: formats aoti: no C++ compiler '/no/such/g++' (CXX, else g++)" in no_compiler.stdout
        assert ({path.name: path.stat().st_mtime_ns for path in artifacts.iterdir()}, artifacts.stat().st_ino) == before
        assert not (project / ".artifacts").exists()
        with zipfile.ZipFile(artifacts / "model.pt2") as package:  # AOTInductor's metadata, beside the code
            name = next(n for n in package.namelist() if n.endswith("wrapper_metadata.json"))
            metadata = json.loads(package.read(name))
        if "AVX512" in metadata["AOTI_CPU_ISA"].split():
            smaller = run([runner, artifacts / "model.pt2"], env={**os.environ, "ATEN_CPU_CAPABILITY": "avx2"})
            assert smaller.returncode == 1, smaller.stdout
            assert f"model.pt2: compiled for {metadata['AOTI_CPU_ISA']}, and this CPU lacks AVX512" in smaller.stderr
    else:
        other = request.getfixturevalue("default_project").path / "build/ts-infer"
        refused = run([other, artifacts / "model.pt2"])
        assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1, refused.stderr
        assert "model.pt2: compiled by torch 2.13.0+cpu, and this libtorch is 2.14.1; " in refused.stderr


def test_a_model_torch_export_rejects_is_named_and_torchscript_still_works(files: Path) -> None:
    """Control flow on a tensor's value: torch.export stops the export in one line naming the construct and the fix,
    and writes nothing; with formats torchscript the same model exports (torch 2.13.0, the cpu lane)."""
    generation = tsgen(
        "new", "branchy", "--model", "control_flow.py:make_net", "--input-shape", "2,3,32,32", "--formats", "aoti",
        *on_lane("cpu"), "--no-build", "-o", "out-cpu", cwd=files,
    )  # fmt: skip
    assert generation.returncode == 0, generation.stdout + generation.stderr
    project = files / "out-cpu" / "branchy"
    export = make(project, "export")
    assert export.returncode != 0
    errors = [line for line in export.stdout.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and errors[0].startswith("ERROR: torch.export failed: Could not guard on data-dependent")
    assert 'control_flow.py", line 14, in forward `if bool(y.mean() > 0.1):`)' in errors[0]
    assert errors[0].endswith('set "formats" to ["torchscript"] in deploy.json (tsgen new --formats torchscript)')
    assert not (project / "artifacts").exists()
    config = json.loads((project / "deploy.json").read_text())
    (project / "deploy.json").write_text(json.dumps({**config, "formats": ["torchscript"]}))
    export = make(project, "export")  # (its C++ parity is the cpu lane project's: the same model)
    assert export.returncode == 0, export.stdout
    assert "between the eager and the scripted model (model.pt, " in export.stdout


@pytest.mark.parametrize("lane", LANES)
def test_dynamic_batch_catches_a_trace_that_baked_the_batch_in(files: Path, lane: str) -> None:
    """A traced model that only works at its example's batch size fails the export check at the second batch
    size, in one line; scripted, the same model passes."""
    out = f"out-{lane}"
    for method, passes in (("trace", False), ("script", True)):
        name = f"fixed-{method}"
        args = ["new", name, "--model", "fixed_batch.py:make", "--input-shape", "1,4", "--top-k", "0", *on_lane(lane)]
        generation = tsgen(*args, "--export-method", method, "--dynamic-batch", "--no-build", "-o", out, cwd=files)
        assert generation.returncode == 0, generation.stdout + generation.stderr
        result = make(files / out / name.replace("-", "_"), "export")
        assert (result.returncode == 0) == passes, result.stdout
        if not passes:
            errors = [line for line in result.stdout.splitlines() if line.startswith("ERROR: ")]
            assert len(errors) == 1 and errors[0].startswith("ERROR: export check at batch 2: the exported model")


def test_a_scripted_googlenet_drops_its_unused_aux_outputs(files: Path, default_project: SimpleNamespace) -> None:
    """Scripted googlenet returns (logits, None, None): the None aux outputs are skipped in Python (the export and its
    check) and C++ alike."""
    generation = tsgen("new", "googlenet", "--model", "torchvision:googlenet", "--no-build", "-o", "out", cwd=files)
    assert generation.returncode == 0, generation.stdout + generation.stderr
    exported = make(files / "out" / "googlenet", "export")
    assert exported.returncode == 0, exported.stdout
    assert "between the eager and the scripted model" in exported.stdout
    checked = parity(files / "out" / "googlenet", default_project.path / "build/ts-infer")
    assert checked.returncode == 0 and "parity: PASS: " in checked.stdout, checked.stdout + checked.stderr
