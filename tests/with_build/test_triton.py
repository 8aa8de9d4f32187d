"""`make triton` end to end on the session's exported projects: each config.pbtxt parsed with Triton's own ModelConfig
schema (tritonclient's model_config_pb2) and checked against the model file beside it (forward()'s schema for
TorchScript, the package's call specification for AOTInductor) and the reference inputs and outputs. No Triton
server runs here: what the server would do with these configs is the backend's source, as docs/triton.md says."""

from __future__ import annotations

import filecmp
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from google.protobuf import text_format
from torch.utils import _pytree as pytree
from tritonclient.grpc import model_config_pb2

from tests.conftest import tree
from tests.with_build.conftest import make, mtimes

pytestmark = pytest.mark.e2e

TYPES = {
    torch.bool: "TYPE_BOOL", torch.uint8: "TYPE_UINT8", torch.int8: "TYPE_INT8", torch.int16: "TYPE_INT16",
    torch.int32: "TYPE_INT32", torch.int64: "TYPE_INT64", torch.float16: "TYPE_FP16", torch.float32: "TYPE_FP32",
    torch.float64: "TYPE_FP64",
}  # fmt: skip
FAIL = "triton: FAIL: triton_repository.py stopped (message above); fix that and run make triton again"


def config_of(folder: Path) -> model_config_pb2.ModelConfig:
    """A model's config.pbtxt as Triton reads it: protobuf text format of inference.ModelConfig."""
    return text_format.Parse((folder / "config.pbtxt").read_text(encoding="utf-8"), model_config_pb2.ModelConfig())


def tensors(file: Path) -> list[tuple[str, torch.Tensor]]:
    """A project tensor file's tensors, by name, in order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation
        return list(torch.jit.load(str(file)).named_buffers())


def data_type(dtype: torch.dtype) -> int:
    return model_config_pb2.DataType.Value(TYPES[dtype])


def check_tensors(
    declared: list, references: list[torch.Tensor], second: list[torch.Tensor] | None, batch: int
) -> None:
    """Each declared input or output against the reference tensor at its position: its type, and its dims: the shape
    without the batch under a max_batch_size (the reference's first dimension is its batch); the whole shape
    otherwise, with -1 exactly where the shape at the second batch size differs."""
    assert len(declared) == len(references)
    for i, (io, reference) in enumerate(zip(declared, references, strict=True)):
        assert io.data_type == data_type(reference.dtype), io
        shape = list(reference.shape)
        if batch:
            assert shape[0] == references[0].shape[0] and list(io.dims) == (shape[1:] or [1]), io
            assert io.HasField("reshape") == (len(shape) == 1), io
        else:
            other = list(second[i].shape) if second else shape
            assert list(io.dims) == [-1 if a != b else a for a, b in zip(shape, other, strict=True)], io


def check_torchscript(folder: Path, artifacts: Path, batch: int) -> model_config_pb2.ModelConfig:
    """A pytorch_libtorch model: the inputs are forward()'s tensor arguments by name, as many as the backend passes;
    the outputs are what forward() returns (a tensor or a tuple of them), named as the reference records them."""
    config = config_of(folder)
    assert (config.name, config.backend, config.platform) == (folder.name, "pytorch", "pytorch_libtorch")
    assert config.default_model_filename == "model.pt" and config.max_batch_size == batch
    assert config.HasField("dynamic_batching") == (batch > 0)
    assert [(group.count, group.kind) for group in config.instance_group] == [
        (1, model_config_pb2.ModelInstanceGroup.KIND_CPU)
    ]
    assert filecmp.cmp(folder / "1/model.pt", artifacts / "model.pt", shallow=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        schema = torch.jit.load(str(folder / "1/model.pt")).forward.schema
    arguments = schema.arguments[1:]  # after self
    assert [a.name for a in arguments] == [io.name for io in config.input]
    assert all(a.type.kind() == "TensorType" for a in arguments)
    returned = schema.returns[0].type
    count = len(returned.elements()) if returned.kind() == "TupleType" else 1
    expected = tensors(artifacts / "expected.pt")
    assert count == len(config.output) and [io.name for io in config.output] == [name for name, _ in expected]
    second = tensors(artifacts / "input_batch.pt") + tensors(artifacts / "expected_batch.pt") if batch else None
    references = [t for _, t in tensors(artifacts / "input.pt")] + [t for _, t in expected]
    check_tensors([*config.input, *config.output], references, [t for _, t in second] if second else None, batch)
    return config


def check_aoti(folder: Path, artifacts: Path, dynamic: bool) -> model_config_pb2.ModelConfig:
    """A torch_aoti model: named after the package's call specification as torch's pytree reads it (ARGS[i] per
    positional input; RESULT, or RESULT[key] per dict entry), never batched by Triton."""
    config = config_of(folder)
    assert (config.name, config.backend, config.platform) == (folder.name, "pytorch", "torch_aoti")
    assert config.default_model_filename == "model.pt2" and config.max_batch_size == 0
    assert not config.HasField("dynamic_batching")
    assert [(group.count, group.kind) for group in config.instance_group] == [
        (1, model_config_pb2.ModelInstanceGroup.KIND_CPU)
    ]
    assert filecmp.cmp(folder / "1/model.pt2", artifacts / "model.pt2", shallow=False)
    from torch._inductor import aoti_load_package

    package = aoti_load_package(str(folder / "1/model.pt2"))
    in_spec, out_spec = (pytree.treespec_loads(text) for text in package.loader.get_call_spec())
    args, kwargs = in_spec.children()
    assert kwargs.num_leaves == 0 and all(child.is_leaf() for child in args.children())
    assert [io.name for io in config.input] == [f"ARGS[{i}]" for i in range(args.num_children)]
    outputs = ["RESULT"] if out_spec.is_leaf() else [f"RESULT[{key}]" for key in out_spec.context]
    assert [io.name for io in config.output] == outputs
    expected = tensors(artifacts / "expected_aoti.pt")
    second = tensors(artifacts / "input_batch.pt") + tensors(artifacts / "expected_aoti_batch.pt") if dynamic else None
    references = [t for _, t in tensors(artifacts / "input.pt")] + [t for _, t in expected]
    check_tensors([*config.input, *config.output], references, [t for _, t in second] if second else None, 0)
    return config


def test_a_fixed_batch_in_both_formats(default_project: SimpleNamespace) -> None:
    """resnet18, TorchScript and AOTInductor, batch fixed at 1: two models with max_batch_size 0 and whole shapes,
    the model files copied beside their configs; neither export nor build runs. A folder make triton did not write
    stops it in one line, and the repository stays as it was."""
    project = default_project.path
    assert default_project.first.returncode == 0, default_project.first.stdout
    before = mtimes(project)
    result = make(project, "triton")
    assert result.returncode == 0, result.stdout
    assert mtimes(project) == before and "==> " not in result.stdout  # nothing exported or built
    repo, artifacts = project / "triton", project / "artifacts"
    written = {"demo/config.pbtxt", "demo/1/model.pt", "demo_aoti/config.pbtxt", "demo_aoti/1/model.pt2"}
    assert tree(repo) == written and not (project / ".triton").exists()
    check_torchscript(repo / "demo", artifacts, batch=0)
    check_aoti(repo / "demo_aoti", artifacts, dynamic=False)
    fixed = '  batching: none: max_batch_size 0, dims are whole shapes (the batch is fixed: "dynamic_batch" is false in deploy.json)'
    assert result.stdout.splitlines() == [
        f"triton/demo: pytorch_libtorch, 1/model.pt (artifacts/model.pt, torch {torch.__version__}), KIND_CPU",
        "  input  x TYPE_FP32 [1, 3, 224, 224]",
        "  output output TYPE_FP32 [1, 1000]",
        fixed,
        f"triton/demo_aoti: torch_aoti, 1/model.pt2 (artifacts/model.pt2, torch {torch.__version__}), KIND_CPU",
        "  input  ARGS[0] TYPE_FP32 [1, 3, 224, 224]",
        "  output RESULT TYPE_FP32 [1, 1000]",
        fixed,
        f"triton: wrote {repo} (demo, demo_aoti); serve it with tritonserver --model-repository={repo}",
    ]

    (repo / "mine").mkdir()
    try:
        refused = make(project, "triton")
    finally:
        (repo / "mine").rmdir()
    assert refused.returncode != 0
    lines = refused.stdout.splitlines()
    assert [line for line in lines if line.startswith(("ERROR", "triton: "))] == [
        f"ERROR: {repo}: holds mine, which make triton did not write; move it out (make triton replaces the whole "
        "folder), or give --output-dir another folder",
        FAIL,
    ]
    assert tree(repo) == written and not (project / ".triton").exists()


def test_a_dynamic_batch_is_batched_by_triton(dynamic_project: SimpleNamespace) -> None:
    """resnet18 with a dynamic batch (TorchScript): max_batch_size (8, or TRITON_MAX_BATCH) with dynamic_batching,
    dims without the batch; a TRITON_MAX_BATCH that is not a positive number stops in one line naming it and
    leaves the repository as it was."""
    project = dynamic_project.path
    assert dynamic_project.verify.returncode == 0, dynamic_project.verify.stdout
    result = make(project, "triton", "TRITON_MAX_BATCH=16")
    assert result.returncode == 0, result.stdout
    repo = project / "triton"
    assert tree(repo) == {"dynamic/config.pbtxt", "dynamic/1/model.pt"}
    check_torchscript(repo / "dynamic", project / "artifacts", batch=16)
    assert (
        "  batching: max_batch_size 16 with dynamic_batching (Triton gathers requests into batches of up to 16 rows; "
        "make triton TRITON_MAX_BATCH=<n> changes it), dims leave out the batch"
    ) in result.stdout.splitlines()
    assert "  input  x TYPE_FP32 [3, 224, 224]" in result.stdout.splitlines()

    default = make(project, "triton")
    assert default.returncode == 0, default.stdout
    check_torchscript(repo / "dynamic", project / "artifacts", batch=8)
    config = (repo / "dynamic/config.pbtxt").read_text()
    for bad in ("0", "eight"):
        refused = make(project, "triton", f"TRITON_MAX_BATCH={bad}")
        assert refused.returncode != 0
        assert [line for line in refused.stdout.splitlines() if line.startswith(("ERROR", "triton: "))] == [
            f"ERROR: TRITON_MAX_BATCH={bad}: not a whole number from 1 to 2147483647; give one, e.g. make triton "
            "TRITON_MAX_BATCH=8",
            FAIL,
        ]
    assert (repo / "dynamic/config.pbtxt").read_text() == config


def test_two_inputs_and_a_dict_output_keep_their_keys(pair_project: SimpleNamespace) -> None:
    """An AOTInductor package with two inputs, a dict output and a dynamic batch: ARGS[0], ARGS[1] in,
    RESULT[scores], RESULT[norm] out, -1 for the batch and max_batch_size 0 (the backend does not batch .pt2 models);
    TRITON_MAX_BATCH is said to be unused."""
    project = pair_project.path
    assert pair_project.verify.returncode == 0, pair_project.verify.stdout
    before = mtimes(project)
    result = make(project, "triton", "TRITON_MAX_BATCH=4")
    assert result.returncode == 0, result.stdout
    assert mtimes(project) == before and "==> " not in result.stdout
    repo = project / "triton"
    assert tree(repo) == {"pair_aoti/config.pbtxt", "pair_aoti/1/model.pt2"}
    config = check_aoti(repo / "pair_aoti", project / "artifacts", dynamic=True)
    assert [(io.name, list(io.dims)) for io in config.input] == [("ARGS[0]", [-1, 4]), ("ARGS[1]", [-1, 1])]
    assert [(io.name, list(io.dims)) for io in config.output] == [("RESULT[scores]", [-1, 10]), ("RESULT[norm]", [-1])]
    lines = result.stdout.splitlines()
    assert (
        "  batching: none: max_batch_size 0, dims are whole shapes, -1 where the batch goes (a client sends its whole "
        "batch in one request): Triton's PyTorch backend does not batch AOTInductor models yet"
    ) in lines
    assert "note: TRITON_MAX_BATCH=4 is not used: Triton batches none of these models (above)" in lines


def test_a_dict_output_of_torchscript_is_refused(dict_output_project: SimpleNamespace) -> None:
    """TorchScript returning a dict, which the pytorch_libtorch backend cannot return: one line says so and how to
    serve it instead; with nothing else to serve, make triton fails and writes nothing."""
    project = dict_output_project.path
    assert dict_output_project.verify.returncode == 0, dict_output_project.verify.stdout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        assert torch.jit.load(str(project / "artifacts/model.pt")).forward.schema.returns[0].type.kind() == "DictType"
    result = make(project, "triton")
    assert result.returncode != 0
    assert [line for line in result.stdout.splitlines() if line.startswith(("ERROR", "triton: "))] == [
        "triton: skipped model.pt: forward() returns Dict[str, Tensor], and Triton's pytorch_libtorch backend takes "
        'back a tensor or a tuple of tensors only; return a tuple, or serve the model.pt2 ("formats" with "aoti" in '
        "deploy.json)",
        "ERROR: no exported model file can be served by Triton's PyTorch backend (why above); nothing was written",
        FAIL,
    ]
    assert not (project / "triton").exists() and not (project / ".triton").exists()
