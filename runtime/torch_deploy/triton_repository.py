"""Write a Triton Inference Server model repository of the exported model files: what `make triton` runs.

    python -m torch_deploy triton                     # in the project folder: reads artifacts/, writes triton/
    python -m torch_deploy triton --max-batch 16      # make triton TRITON_MAX_BATCH=16

For each format export.py wrote (artifacts/formats.txt), one model, laid out and configured as Triton's PyTorch
backend (github.com/triton-inference-server/pytorch_backend) reads it:

    triton/<name>/config.pbtxt, triton/<name>/1/model.pt             platform "pytorch_libtorch" (TorchScript)
    triton/<name>_aoti/config.pbtxt, triton/<name>_aoti/1/model.pt2  platform "torch_aoti" (AOTInductor)

<name> is the project folder's name. Inputs and outputs are named the way each platform maps them to the model:

- pytorch_libtorch: inputs by forward()'s argument names (the backend feeds a config input to the forward argument of
  that name); outputs by the names export.py recorded (output, output_0, ...), which the backend takes in config
  order, the model's order, because they hold no "__<index>". The backend takes back a tensor or a tuple of tensors
  only: a model returning a dict (or a list, or None) is not written, and a line says so; but a torchvision detector
  (export.py's OneImageDetector) is written as the same model returning its detections as a tuple, in the order of
  their names, the number of detections -1 in their dims.
- torch_aoti: the names the backend derives from the package's call specification: ARGS[<i>] for the i-th input,
  RESULT for a single output tensor, RESULT[<i>] for a tuple's, RESULT[<key>] for a dict's.

Types and dims come from the model file itself: the inputs from its deploy.txt, the outputs from the reference
outputs Python recorded from that file (expected.pt, expected_aoti.pt). With a dynamic batch, the shapes at the
second batch size (input_batch.pt, expected_batch.pt, ...) tell which dimensions vary: the TorchScript model gets
max_batch_size and dynamic_batching, with dims that leave out the batch; the AOTInductor model gets max_batch_size 0
and -1 for the batch, since the backend does not batch AOTInductor models yet. A fixed batch: max_batch_size 0 and
the whole shapes.

When make tune chose one of the model files (artifacts/tuned.txt), its model's config says so in its comments, and so
does the listing; the backend runs the file as exported: it has no switch for the runner's --optimize modes or bf16.

The repository is written into a new folder beside triton/ (in .triton/) and swapped in (torch_deploy.staging), so
that triton/ is always a complete repository, the previous one or the new one; a run that fails, or is killed, leaves
the previous one.

Not named triton.py: run from this folder (or with it on sys.path), that would shadow the triton package that
torch._inductor imports, and loading a .pt2 would fail.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from torch_deploy.artifacts import DTYPES, DeployError, jit_quietly, load_model, load_tensors
from torch_deploy.formats import FORMATS_FILE, TUNED_FILE, Entry, ListingError, Tuned, exported, read_tuned
from torch_deploy.staging import atomic_folder

# Triton's dynamic batcher gathers requests up to this many rows for a model whose batch may vary; small enough for
# a CPU, where a larger batch mostly adds latency.
DEFAULT_MAX_BATCH = 8
MAX_INT32 = 2**31 - 1  # max_batch_size is an int32 in Triton's ModelConfig
# The first line of every config.pbtxt this script writes: how it recognises the folders it may replace.
HEADER = "# Written by make triton (triton_repository.py)"
PLATFORMS = {"torchscript": "pytorch_libtorch", "aoti": "torch_aoti", "aoti_int8": "torch_aoti"}
# The data types the PyTorch backend converts to torch's (its src/libtorch_utils.cc): no bfloat16, which it refuses.
TRITON_TYPES = {
    torch.bool: "TYPE_BOOL", torch.uint8: "TYPE_UINT8", torch.int8: "TYPE_INT8", torch.int16: "TYPE_INT16",
    torch.int32: "TYPE_INT32", torch.int64: "TYPE_INT64", torch.float16: "TYPE_FP16", torch.float32: "TYPE_FP32",
    torch.float64: "TYPE_FP64",
}  # fmt: skip
# A dict key the torch_aoti backend can name an output by: no quotes, brackets or white space (its README).
AOTI_KEY = re.compile(r'[^\s"\[\]]+')
# torch.export's pytree containers that the torch_aoti backend takes apart (its src/pt2/call_spec.cc).
SEQUENCES = ("builtins.tuple", "builtins.list")
DICT = "builtins.dict"


class Unservable(Exception):
    """Why Triton's PyTorch backend cannot serve one model file (it is left out, and a line says why)."""


@dataclass
class Tensor:
    """One input or output of a model config."""

    name: str
    data_type: str
    dims: list[int]
    reshape: bool = False  # dims [1] stand for a batched tensor with no other dimension: reshape { shape: [ ] }

    def text(self) -> str:
        fields = [
            f"name: {quoted(self.name)}",
            f"data_type: {self.data_type}",
            f"dims: [ {', '.join(map(str, self.dims))} ]",
        ]
        fields += ["reshape: { shape: [ ] }"] if self.reshape else []
        return "  {\n" + "".join(f"    {line}\n" for line in fields) + "  }"

    def describe(self) -> str:
        return f"{self.name} {self.data_type} {self.dims}" + (" (reshaped to [])" if self.reshape else "")


@dataclass
class Model:
    """One model of the repository: its config and the model file it serves."""

    name: str
    entry: Entry
    source: Path
    max_batch_size: int
    inputs: list[Tensor]
    outputs: list[Tensor]
    kind: str
    gpu: int | None  # the GPU of KIND_GPU instances, when the project names one (cuda:N); else every GPU
    batching: str
    torch_version: str
    module: torch.jit.ScriptModule | None = None  # what to save as the model file, when not the exported file itself
    tuned: Tuned | None = None  # make tune's choice, when it is this model file

    @property
    def platform(self) -> str:
        return PLATFORMS[self.entry.format.name]

    def text(self) -> str:
        exported = f"# Exported by torch {self.torch_version}: a Triton whose PyTorch has this minor version"
        matching = (
            [f"{exported} runs it (an AOTInductor", "# package runs only with the torch that compiled it)."]
            if self.entry.format.packaged
            else [f"{exported} or a newer one loads it."]
        )
        lines = [
            f"{HEADER} from artifacts/{self.entry.model_file}; it rewrites this folder on each run.",
            *matching,
            *(f"# {line}" for line in self.tuned_lines()),
            f"name: {quoted(self.name)}",
            'backend: "pytorch"',
            f"platform: {quoted(self.platform)}",
            f"default_model_filename: {quoted(self.entry.format.model_file)}",
            f"max_batch_size: {self.max_batch_size}",
            "input [\n" + ",\n".join(tensor.text() for tensor in self.inputs) + "\n]",
            "output [\n" + ",\n".join(tensor.text() for tensor in self.outputs) + "\n]",
            "instance_group [\n  {\n    count: 1\n    kind: "
            + self.kind
            + (f"\n    gpus: [ {self.gpu} ]" if self.gpu is not None else "")
            + "\n  }\n]",
        ]
        if self.max_batch_size > 0:
            lines.append("dynamic_batching { }")
        return "\n".join(lines) + "\n"

    def tuned_lines(self) -> list[str]:
        """What make tune's choice means for this model, when it is this model file: the backend runs the file as
        exported, with no switch for the runner's --optimize mode or bf16."""
        if self.tuned is None:
            return []
        settings = [f"--optimize {self.tuned.optimize}"] if self.tuned.optimize else []
        settings += [f"--precision {self.tuned.precision}"] if self.tuned.precision else []
        lines = [f"make tune chose this model file as the fastest on its CPU (artifacts/{TUNED_FILE})."]
        if settings:
            lines.append(
                f"Triton's PyTorch backend runs it as exported: it has no switch for {' '.join(settings)}, which "
                "ts-infer and the library apply."
            )
        return lines

    def describe(self, output_dir: Path) -> list[str]:
        return [
            f"{output_dir.name}/{self.name}: {self.platform}, 1/{self.entry.format.model_file} "
            f"(artifacts/{self.entry.model_file}, torch {self.torch_version}), {self.kind}",
            *(f"  {line}" for line in self.tuned_lines()),
            *(f"  input  {tensor.describe()}" for tensor in self.inputs),
            *(f"  output {tensor.describe()}" for tensor in self.outputs),
            f"  batching: {self.batching}",
        ]


def quoted(text: str) -> str:
    """A protobuf text-format string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def read_formats(artifacts: Path) -> list[Entry]:
    """formats.txt: what export.py exported, in deploy.json's order."""
    try:
        return exported(artifacts)
    except ListingError as err:
        raise DeployError(f"{err} (make triton runs it when it is due)") from err


def tensor_file(path: Path) -> list[tuple[str, torch.Tensor]]:
    if not path.is_file():
        raise DeployError(f"{path} is missing: run make export")
    return list(load_tensors(path)[0].items())


def triton_type(dtype: torch.dtype, what: str) -> str:
    if dtype not in TRITON_TYPES:
        raise Unservable(
            f"{what} is {str(dtype).removeprefix('torch.')}, a type Triton's PyTorch backend does not take; make it one of "
            f"{', '.join(str(t).removeprefix('torch.') for t in TRITON_TYPES)}"
        )
    return TRITON_TYPES[dtype]


def torchscript_names(model: torch.jit.ScriptModule, inputs: int, outputs: list[str]) -> tuple[list[str], list[str]]:
    """The input and output names of a TorchScript model in Triton: forward()'s argument names, checked as the
    pytorch_libtorch backend checks them (tensor arguments, as many as the config's inputs), and the recorded output
    names, checked against what forward() returns (a tensor or a tuple of tensors, all the backend takes)."""
    schema = model.forward.schema
    arguments = list(schema.arguments)
    if arguments and arguments[0].type.kind() == "ClassType":  # self
        arguments = arguments[1:]
    for argument in arguments:
        if argument.type.kind() != "TensorType":
            raise Unservable(
                f"forward() takes {argument.name}: {argument.type}, and Triton's pytorch_libtorch backend passes tensors "
                "only; take tensors"
            )
    if len(arguments) != inputs:
        raise Unservable(
            f"forward() takes {len(arguments)} tensors and the model is run with {inputs}, while Triton's "
            "pytorch_libtorch backend passes exactly one per input; give the other arguments no default, or drop them"
        )
    returned = schema.returns[0].type if len(schema.returns) == 1 else None
    if returned is not None and returned.kind() == "TensorType":
        count = 1
    elif (
        returned is not None
        and returned.kind() == "TupleType"
        and all(element.kind() == "TensorType" for element in returned.elements())
    ):
        count = len(returned.elements())
    else:
        shown = returned if returned is not None else ", ".join(str(r.type) for r in schema.returns)
        raise Unservable(
            f"forward() returns {shown}, and Triton's pytorch_libtorch backend takes back a tensor or a tuple of tensors "
            'only; return a tuple, or serve the model.pt2 ("formats" with "aoti" in deploy.json)'
        )
    if count != len(outputs):
        raise DeployError(
            f"forward() returns {count} tensors and the reference records {len(outputs)}; run make export"
        )
    # The recorded names ("output", "output_<i>") hold no "__<index>": the backend maps such names in config order.
    return [argument.name for argument in arguments], outputs


def spec_names(node: dict, prefix: str, what: str) -> list[str]:
    """The names the torch_aoti backend gives the tensors under one node of a package's call specification (its
    src/pt2/call_spec.cc): ``[<i>]`` per tuple or list item, ``[<key>]`` per dict entry, nothing more for a tensor."""
    kind = node.get("type")
    children = node.get("children_spec") or []
    if not isinstance(kind, str):  # a leaf: a tensor
        return [prefix]
    if kind in SEQUENCES and children:
        return [name for i, child in enumerate(children) for name in spec_names(child, f"{prefix}[{i}]", what)]
    if kind == DICT:
        context = node.get("context")
        keys = (json.loads(context) if isinstance(context, str) else context) or []
        if len(keys) != len(children):
            raise Unservable(f"{what} holds a dict of {len(children)} values and {len(keys)} keys")
        for key in keys:
            if not isinstance(key, str) or not AOTI_KEY.fullmatch(key) or not key.isprintable():
                raise Unservable(
                    f"{what} holds a dict key {key!r}, and Triton's torch_aoti backend names outputs by string keys "
                    "without quotes, brackets or white space; rename the key"
                )
        return [
            name
            for key, child in zip(keys, children, strict=True)
            for name in spec_names(child, f"{prefix}[{key}]", what)
        ]
    raise Unservable(
        f"{what} holds a {kind}{' with nothing in it' if kind in SEQUENCES else ''}, and Triton's torch_aoti backend takes "
        "tensors in tuples, lists and dicts only; return those"
    )


def aoti_names(package: object, inputs: int, outputs: int) -> tuple[list[str], list[str]]:
    """The input and output names of an AOTInductor package in Triton, from its call specification as the torch_aoti
    backend reads it: ARGS[<i>] per positional input, RESULT, RESULT[<i>] or RESULT[<key>] per output tensor."""
    in_spec, out_spec = (json.loads(text)[1] for text in package.loader.get_call_spec())  # type: ignore[attr-defined]
    args, kwargs = in_spec["children_spec"]
    if kwargs.get("children_spec"):
        raise Unservable("the package takes keyword inputs, which export.py does not pass; take positional inputs")
    input_names = spec_names(args, "ARGS", "the package's inputs")
    # A lone output (no structure) is "RESULT" to the backend, whatever its type says.
    output_names = spec_names(out_spec, "RESULT", "the model's output") if out_spec.get("children_spec") else ["RESULT"]
    if len(input_names) != inputs:
        raise DeployError(f"the package takes {len(input_names)} inputs and deploy.txt lists {inputs}; run make export")
    if len(output_names) != outputs:
        raise Unservable(
            f"the package returns {len(output_names)} values (None among them) and the reference records {outputs} "
            "tensors, while Triton's torch_aoti backend maps outputs by position; return tensors only"
        )
    return input_names, output_names


def device_kind(package: object | None, device: str) -> tuple[str, int | None]:
    """Where Triton runs the model, and on which GPU when one is named: on the project's device (deploy.json's, as
    the model file records it); a .pt2 runs only on the kind of device it was compiled for, which its metadata names."""
    if package is not None:
        compiled = package.get_metadata().get("AOTI_DEVICE_KEY", "cpu")  # type: ignore[attr-defined]
        device = device if compiled.startswith("cuda") and device.startswith("cuda") else compiled
    if not device.startswith("cuda"):
        return "KIND_CPU", None
    return "KIND_GPU", int(device.split(":")[1]) if ":" in device else None


def package_model_name(source: Path) -> None:
    """The torch_aoti backend loads the model named "model" from the package (its src/pt2/model_state.hh), the name
    aoti_compile_and_package gives by default."""
    with zipfile.ZipFile(source) as archive:
        names = {
            name.split("/")[3] for name in archive.namelist() if name.count("/") >= 4 and "/data/aotinductor/" in name
        }
    if "model" not in names:
        raise Unservable(
            f"the package holds the model {sorted(names)[0] if names else '(none)'}, and Triton's torch_aoti backend loads "
            "the one named 'model'; package it under the default name"
        )


def shapes_at(named: list[tuple[str, torch.Tensor]]) -> list[list[int]]:
    return [list(tensor.shape) for _, tensor in named]


def model_config(name: str, entry: Entry, artifacts: Path, max_batch: int) -> Model:
    """The Triton model of one exported format; Unservable when the backend cannot serve it."""
    source = artifacts / entry.model_file
    # Loading a package imports the C++ extension helpers, which log that a CUDA wheel finds no CUDA runtime: noise
    # for a CPU package.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    deployed = load_model(source)
    info = deployed.info
    if info is None:
        raise DeployError(f"{source} records no inputs (an older export); run make export")
    expected = tensor_file(artifacts / entry.expected)
    package = deployed.model if entry.format.packaged else None
    detector = package is None and deployed.model.original_name == "OneImageDetector"
    module = detections_as_tuple(deployed.model, [n for n, _ in expected], artifacts) if detector else None
    if package is not None:
        package_model_name(source)
        input_names, output_names = aoti_names(package, len(info.inputs), len(expected))
    else:
        served = module if module is not None else deployed.model
        input_names, output_names = torchscript_names(served, len(info.inputs), [n for n, _ in expected])

    input_types = []
    for input_name, _, dtype in info.inputs:
        if dtype not in DTYPES:
            raise DeployError(
                f"{source}: deploy.txt gives input {input_name} the unknown dtype {dtype}; run make export"
            )
        input_types.append(triton_type(DTYPES[dtype], f"input {input_name}"))
    output_types = [triton_type(tensor.dtype, f"output {n}") for n, tensor in expected]
    shapes = [shape for _, shape, _ in info.inputs] + shapes_at(expected)

    # With a dynamic batch, the reference at the second batch size shows which dimensions vary with the batch.
    second: list[list[int]] | None = None
    if info.dynamic_batch:
        if entry.expected_batch is None:
            raise DeployError(f"{artifacts / FORMATS_FILE} names no reference at a second batch size; run make export")
        second = shapes_at(tensor_file(artifacts / "input_batch.pt")) + shapes_at(
            tensor_file(artifacts / entry.expected_batch)
        )
        if len(second) != len(shapes):
            raise DeployError("the references at the two batch sizes hold different tensors; run make export")
    names = [f"input {n}" for n in input_names] + [f"output {n}" for n in output_names]

    batching, max_batch_size = batching_of(entry, shapes, second, names, max_batch)
    kind, gpu = device_kind(package, info.device)
    batched = max_batch_size > 0
    tensors = []
    for i, (tensor_name, shape) in enumerate(zip(input_names + output_names, shapes, strict=True)):
        other = second[i] if second else shape
        if len(other) != len(shape):
            raise Unservable(f"{names[i]} has {len(shape)} dimensions at one batch size and {len(other)} at another")
        dims = [-1 if size != other[d] else size for d, size in enumerate(shape)][1 if batched else 0 :]
        if detector and i >= len(input_names):  # the number of detections depends on the image
            dims[0] = -1
        if 0 in dims:
            raise Unservable(f"{names[i]} has a dimension of size 0 {shape}, which a Triton config cannot declare")
        if not dims and not batched:
            raise Unservable(f"{names[i]} is a scalar (no dimension), which a Triton config cannot declare unbatched")
        data_type = (input_types + output_types)[i]
        tensors.append(Tensor(tensor_name, data_type, dims or [1], reshape=not dims))
    return Model(
        name=name + ("" if entry.format.name == "torchscript" else f"_{entry.format.name}"),
        entry=entry,
        source=source,
        max_batch_size=max_batch_size,
        inputs=tensors[: len(input_names)],
        outputs=tensors[len(input_names) :],
        kind=kind,
        gpu=gpu,
        batching=batching,
        torch_version=info.torch,
        module=module,
    )


class DetectionsAsTuple(torch.nn.Module):
    """A OneImageDetector (export.py's torchvision detector) returning its detections as a tuple, in the order of
    their recorded names: the backend takes back no dict, and a detector has no .pt2 to serve instead (torch.export
    cannot follow its data-dependent shapes)."""

    def __init__(self, detector: torch.jit.ScriptModule, keys: list[str]) -> None:
        super().__init__()
        self.detector = detector
        self.keys = keys

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        detections = self.detector(image)
        return tuple(detections[key] for key in self.keys)


def detections_as_tuple(detector: torch.jit.ScriptModule, keys: list[str], artifacts: Path) -> torch.jit.ScriptModule:
    """DetectionsAsTuple as TorchScript. Traced: the call into the scripted detector stays a call (its control flow
    intact), and only the key lookups and the tuple around it are recorded."""
    image = [tensor for _, tensor in tensor_file(artifacts / "input.pt")]
    with jit_quietly():
        return torch.jit.trace(DetectionsAsTuple(detector, keys), tuple(image), check_trace=False)


def batching_of(
    entry: Entry, shapes: list[list[int]], second: list[list[int]] | None, names: list[str], max_batch: int
) -> tuple[str, int]:
    """How Triton batches the model, said in one line, and its max_batch_size. Triton's dynamic batcher stacks
    requests along the first dimension and splits the outputs along it: every input and output must have the batch
    there, which the two reference batch sizes show."""
    unbatched = "none: max_batch_size 0, dims are whole shapes"
    if second is None:
        return f'{unbatched} (the batch is fixed: "dynamic_batch" is false in deploy.json)', 0
    varying = f"{unbatched}, -1 where the batch goes (a client sends its whole batch in one request)"
    if entry.format.packaged:
        return f"{varying}: Triton's PyTorch backend does not batch AOTInductor models yet", 0
    batch, batch2 = shapes[0][0] if shapes[0] else None, second[0][0] if second[0] else None
    for name, shape, other in zip(names, shapes, second, strict=True):
        if not shape or not other or (shape[0], other[0]) != (batch, batch2) or batch == batch2:
            return f"{varying}: {name}'s first dimension is not the batch, so Triton cannot split a batched result", 0
    return (
        f"max_batch_size {max_batch} with dynamic_batching (Triton gathers requests into batches of up to "
        f"{max_batch} rows; make triton TRITON_MAX_BATCH=<n> changes it), dims leave out the batch"
    ), max_batch


def parse_max_batch(given: str | None) -> int:
    if given is None:
        return DEFAULT_MAX_BATCH
    try:
        value = int(given)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_INT32:
        raise DeployError(
            f"TRITON_MAX_BATCH={given}: not a whole number from 1 to {MAX_INT32}; give one, e.g. make triton "
            f"TRITON_MAX_BATCH={DEFAULT_MAX_BATCH}"
        )
    return value


def check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        raise DeployError(
            f"model name {name!r}: Triton model names here are letters, digits, '_', '-' and '.'; rename the project "
            "folder (whose name is the default), or run python -m torch_deploy triton --name <name>"
        )


def check_output_dir(output_dir: Path) -> None:
    """The folder is replaced as a whole: it must be this script's own (new, or holding only the model folders it
    wrote); anything else is the user's and is not touched."""
    if output_dir.is_symlink():
        raise DeployError(
            f"{output_dir}: is a link, and make triton writes a folder there; remove the link, or give --output-dir"
        )
    if not output_dir.exists():
        return
    if not output_dir.is_dir():
        raise DeployError(f"{output_dir}: is a file, not a model repository; move it, or give --output-dir")
    for path in sorted(output_dir.iterdir()):
        config = path / "config.pbtxt"
        ours = path.is_dir() and config.is_file() and config.read_text(errors="replace").startswith(HEADER)
        if not ours:
            raise DeployError(
                f"{output_dir}: holds {path.name}, which make triton did not write; move it out (make triton "
                "replaces the whole folder), or give --output-dir another folder"
            )


def write_model(folder: Path, model: Model) -> None:
    version = folder / model.name / "1"
    version.mkdir(parents=True)
    (folder / model.name / "config.pbtxt").write_text(model.text(), encoding="utf-8")
    if model.module is not None:
        model.module.save(str(version / model.entry.format.model_file))
    else:
        shutil.copyfile(model.source, version / model.entry.format.model_file)  # a copy: the repository stands alone


def write_repository(name: str, artifacts: Path, output_dir: Path, max_batch: int) -> tuple[list[Model], int]:
    """Write every model the backend can serve; returns them and how many formats were left out."""
    check_name(name)
    check_output_dir(output_dir)
    models, skipped = [], 0
    try:
        tuned = read_tuned(artifacts)
    except ListingError as err:
        raise DeployError(str(err)) from err
    for entry in read_formats(artifacts):
        try:
            model = model_config(name, entry, artifacts, max_batch)
            if tuned and tuned.model_file == entry.model_file:
                model.tuned = tuned
            models.append(model)
        except Unservable as why:
            skipped += 1
            print(f"triton: skipped {entry.model_file}: {why}")
    if not models:
        raise DeployError(
            "no exported model file can be served by Triton's PyTorch backend (why above); nothing was written"
        )
    with atomic_folder(output_dir) as staging:
        for model in models:
            write_model(staging, model)
    return models, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m torch_deploy triton",
        description="Write a Triton Inference Server model repository of the exports.",
    )
    parser.add_argument(
        "--max-batch",
        help=f"max_batch_size of a model Triton batches (default {DEFAULT_MAX_BATCH}; make triton TRITON_MAX_BATCH=n)",
    )
    parser.add_argument("--name", default=Path.cwd().name, help="the model's name (default: the project folder's)")
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="the exported files")
    parser.add_argument("--output-dir", type=Path, default=Path("triton"), help="where to write")
    args = parser.parse_args(argv)
    try:
        max_batch = parse_max_batch(args.max_batch)
        output_dir = Path(os.path.abspath(args.output_dir))
        models, _ = write_repository(args.name, args.artifacts, output_dir, max_batch)
    except DeployError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    for model in models:
        print("\n".join(model.describe(output_dir)))
    if args.max_batch is not None and not any(model.max_batch_size for model in models):
        print(f"note: TRITON_MAX_BATCH={args.max_batch} is not used: Triton batches none of these models (above)")
    print(
        f"triton: wrote {output_dir} ({', '.join(model.name for model in models)}); serve it with "
        f"tritonserver --model-repository={output_dir}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
