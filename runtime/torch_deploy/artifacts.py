"""The artifact format of a deployment project, in one place: what export writes, and what predict, bench, the tests
and the C++ library (include/torch_deploy/) read.

artifacts/model.pt, artifacts/model.pt2
    The exported model in each format deploy.json's "formats" asks for (FORMATS): a TorchScript file (model.pt), an
    AOTInductor package (model.pt2: compiled C++ for this CPU, made from torch.export). Each carries these texts,
    which make it a complete deployment: as extra files of the TorchScript file (torch.jit.save's ``_extra_files``),
    and as the package's metadata (AOTInductor's ``aot_inductor.metadata``, read back by get_metadata()):

    deploy.txt      ``input <name> <dtype> <dim>...`` per input, ``output <name>`` per output tensor (in the order
                    torch_deploy::Model::run returns them), ``top_k <k>``, ``torch <version that exported it>``,
                    ``dynamic_batch 1`` when the first dimension of the inputs may vary, ``precision bf16`` when
                    the project runs in bf16 (deploy.json's "precision"; ts-infer's default), and ``device cuda`` when
                    it runs on a GPU (deploy.json's "device"; ts-infer's default)
    preprocess.txt  the image preprocessing (``key value...`` lines; see ImageSettings), when the only input is an image
    classes.txt     the class names, one per line, in score order, when they are known

artifacts/formats.txt
    ``<format> <model file> <reference outputs> [<reference outputs at the second batch size>] [device=cuda]`` per
    exported format, in deploy.json's order: what make verify and ctest check (the first one is what make predict
    runs); ``device=cuda`` marks a package compiled for GPUs.

Tensor files (input.pt, and per format its reference outputs: expected.pt, expected_aoti.pt; with a dynamic batch
the same at a second batch size: input_batch.pt, expected_batch.pt, expected_aoti_batch.pt; with "precision" bf16,
expected_bf16.pt: model.pt's outputs in bf16; on a GPU, expected_cuda.pt (and expected_cuda_batch.pt): model.pt's
outputs there, torch_deploy.reference's)
    TorchScript modules whose buffers are the tensors, in order, under their names, and whose float attributes are
    numbers (expected.pt records atol, rtol and top_k; expected_bf16.pt also bf16 = 1, and the drift from fp32 that
    Python measured: drift_max_abs_diff, drift_top_k_overlap; expected_cuda.pt the drift from the CPU's outputs), so
    that libtorch alone reads them.

The C++ side parses these files too (the runtime's src/): a change here is a change there.
"""

from __future__ import annotations

import importlib.util
import os
import re
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from torch_deploy.formats import BF16_EXPECTED, FORMATS, FORMATS_FILE, Format  # noqa: F401  (part of the format)

# torch.export and AOTInductor import numpy when it is there; torch works without it, and so does this project.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy", category=UserWarning)

DEPLOY_FILE = "deploy.txt"
PREPROCESS_FILE = "preprocess.txt"
CLASSES_FILE = "classes.txt"
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
DTYPES = {
    "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64,
    "int64": torch.int64, "int32": torch.int32, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
}  # fmt: skip
TUTORIAL_TOP_K = 5  # what the C++ side uses for a model file that records no top_k
PRECISIONS = ("fp32", "bf16")
# The numbers a tensor file of reference outputs records (see above).
TENSOR_FILE_NUMBERS = ("atol", "rtol", "top_k", "bf16", "drift_max_abs_diff", "drift_top_k_overlap")


class DeployError(Exception):
    """Raised for an artifact or setting the user can fix; the scripts print it as one line."""


class ImageError(DeployError):
    """Raised for an image, or image settings, that cannot be used."""


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``: the names deploy.json, deploy.txt and preprocess.txt use."""
    return str(dtype).removeprefix("torch.")


@contextmanager
def jit_quietly() -> Iterator[None]:
    """torch >= 2.13 warns on every torch.jit call (deprecation); export.py says so once, the readers stay quiet."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def load_torchscript(
    path: Path, extras: dict[str, Any] | None = None, map_location: torch.device | None = None
) -> torch.jit.ScriptModule:
    """torch.jit.load (onto ``map_location``, the CPU by default), quietly; a model calling torchvision's operators (a
    detector) gets them registered first, as the C++ runtime does: torchvision's Python package registers them on
    import, and nothing here imports it else."""
    with jit_quietly():
        try:
            return torch.jit.load(
                str(path), map_location=map_location, _extra_files=extras if extras is not None else {}
            )
        except RuntimeError as err:
            if "Unknown builtin op: torchvision::" not in str(err) or importlib.util.find_spec("torchvision") is None:
                raise
        import torchvision  # noqa: F401

        return torch.jit.load(str(path), map_location=map_location, _extra_files=extras if extras is not None else {})


@dataclass
class ModelInfo:
    """deploy.txt: the inputs (name, shape, dtype name), the output names and top_k, the exporting torch, and
    whether the batch (the inputs' first dimension) may vary."""

    inputs: list[tuple[str, list[int], str]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    top_k: int = TUTORIAL_TOP_K
    torch: str = ""
    dynamic_batch: bool = False
    precision: str = "fp32"
    device: str = "cpu"

    def to_text(self) -> str:
        lines = ["# the model's inputs and outputs, written by export.py, read by torch_deploy::Model"]
        lines += [f"input {name} {dtype} {' '.join(map(str, shape))}" for name, shape, dtype in self.inputs]
        lines += [f"output {name}" for name in self.outputs]
        lines += [f"top_k {self.top_k}", f"torch {self.torch}"] + (["dynamic_batch 1"] if self.dynamic_batch else [])
        lines += [f"precision {self.precision}"] if self.precision != "fp32" else []
        lines += [f"device {self.device}"] if self.device != "cpu" else []
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str) -> ModelInfo:
        info = cls()
        try:
            for line in text.splitlines():
                key, *values = line.split()
                if key == "input":
                    info.inputs.append((values[0], [int(v) for v in values[2:]], values[1]))
                elif key == "output":
                    info.outputs.append(values[0])
                elif key == "top_k":
                    info.top_k = int(values[0])
                elif key == "torch":
                    info.torch = values[0]
                elif key == "dynamic_batch":
                    info.dynamic_batch = values[0] == "1"
                elif key == "precision":
                    info.precision = values[0]
                elif key == "device":
                    info.device = values[0]
        except (IndexError, ValueError) as err:
            raise DeployError(f"{DEPLOY_FILE} is malformed ({err!r}); re-export with make export") from err
        return info


@dataclass
class ImageSettings:
    """How an image becomes the model's input: resize the shorter side to ``resize`` with ``interpolation``,
    center crop to ``crop`` (height, width), scale to [0, 1], subtract ``mean`` and divide by ``std`` per channel.
    ``source`` says where the values came from (for people; the runners ignore it)."""

    resize: int
    crop: tuple[int, int]
    mean: list[float]
    std: list[float]
    interpolation: str = "bilinear"
    dtype: str = "float32"
    source: str = ""

    @property
    def channels(self) -> int:
        return len(self.mean)

    def to_text(self) -> str:
        """The preprocess.txt format: one "key value..." line each, which C++ parses without a JSON library."""
        return "".join(
            [
                "# ts-infer --image preprocessing, written by export.py\n",
                f"resize {self.resize}\n",
                f"crop {self.crop[0]} {self.crop[1]}\n",
                f"mean {' '.join(repr(v) for v in self.mean)}\n",
                f"std {' '.join(repr(v) for v in self.std)}\n",
                f"interpolation {self.interpolation}\n",
                f"dtype {self.dtype}\n",
                f"source {self.source}\n" if self.source else "",
            ]
        )

    @classmethod
    def from_text(cls, text: str) -> ImageSettings:
        values = {}
        for line in text.splitlines():
            key, _, rest = line.strip().partition(" ")
            if key and not key.startswith("#"):
                values[key] = rest.strip()
        try:
            height, width = (int(v) for v in values["crop"].split())
            return cls(
                resize=int(values["resize"]),
                crop=(height, width),
                mean=[float(v) for v in values["mean"].split()],
                std=[float(v) for v in values["std"].split()],
                interpolation=values.get("interpolation", "bilinear"),
                dtype=values.get("dtype", "float32"),
                source=values.get("source", ""),
            )
        except (KeyError, ValueError) as err:
            raise ImageError(f"{PREPROCESS_FILE} is malformed ({err!r}); re-export with make export") from err

    def describe(self) -> str:
        return (
            f"resize {self.resize} ({self.interpolation}), center crop {self.crop[0]}x{self.crop[1]}, "
            f"mean {self.mean}, std {self.std}" + (f" (from {self.source})" if self.source else "")
        )


@dataclass
class Deployed:
    """A model file as the C++ runner sees it: the model (called as ``model(*inputs)``), its format, and what
    export.py saved beside it."""

    model: Any
    format: Format
    info: ModelInfo | None
    image: ImageSettings | None
    classes: list[str] | None


def extra_files(info: ModelInfo, image: ImageSettings | None, classes: list[str] | None) -> dict[str, str]:
    """The extra files of a model file, for torch.jit.save(..., _extra_files=...)."""
    extras = {DEPLOY_FILE: info.to_text()}
    if image:
        extras[PREPROCESS_FILE] = image.to_text()
    if classes:
        extras[CLASSES_FILE] = "".join(f"{name}\n" for name in classes)
    return extras


# The package metadata entry of a quantized package ("int8"; absent in one that is not), which tells the formats apart.
QUANTIZATION_KEY = "quantization"


def format_of(path: Path) -> Format:
    """The format of a model file, from its contents (as torch_deploy::Model decides): an AOTInductor package is a
    zip archive holding ``<name>/archive_format``; anything else is taken for TorchScript. (Whether a package is
    quantized is in its metadata, which load_model() reads.)"""
    try:
        with zipfile.ZipFile(path) as archive:
            packaged = any(name.count("/") == 1 and name.endswith("/archive_format") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        packaged = False
    return FORMATS["aoti" if packaged else "torchscript"]


def load_model(path: Path) -> Deployed:
    """A model file (TorchScript or AOTInductor) with what export.py saved inside it (None where absent)."""
    model_format = format_of(path)
    if model_format.packaged:
        model, texts = load_package(path)
        if texts[QUANTIZATION_KEY] == "int8":
            model_format = FORMATS["aoti_int8"]
    else:
        extras: dict[str, Any] = {DEPLOY_FILE: "", PREPROCESS_FILE: "", CLASSES_FILE: ""}  # filled with bytes
        try:
            model = load_torchscript(path, extras).eval()
        except (RuntimeError, ValueError) as err:
            raise DeployError(f"{path}: cannot load it as a TorchScript model ({err}); run make export") from err
        texts = {name: bytes(value).decode("utf-8") for name, value in extras.items()}
    return Deployed(
        model=model,
        format=model_format,
        info=ModelInfo.from_text(texts[DEPLOY_FILE]) if texts[DEPLOY_FILE] else None,
        image=ImageSettings.from_text(texts[PREPROCESS_FILE]) if texts[PREPROCESS_FILE] else None,
        classes=texts[CLASSES_FILE].splitlines() if texts[CLASSES_FILE] else None,
    )


def load_package(path: Path, device_index: int = -1) -> tuple[Any, dict[str, str]]:
    """An AOTInductor package, loaded to run (a package compiled for GPUs on GPU ``device_index``; -1: the current
    one), and the texts of its metadata ("" where absent)."""
    from torch._inductor import aoti_load_package  # imported when needed: it takes a second

    try:
        loaded = aoti_load_package(str(path), device_index=device_index)
    except Exception as err:  # the loader raises RuntimeError, or others from its unpacking
        raise DeployError(f"{path}: cannot load it as an AOTInductor package ({err}); run make export") from err
    metadata = loaded.get_metadata()
    return loaded, {
        name: metadata.get(name, "") for name in (DEPLOY_FILE, PREPROCESS_FILE, CLASSES_FILE, QUANTIZATION_KEY)
    }


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], **numbers: float) -> None:
    """Write tensors (and a few numbers) as a TorchScript module that libtorch alone can read."""

    class TensorFile(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for name, tensor in tensors.items():
                self.register_buffer(name, tensor.detach().contiguous())
            for name, value in numbers.items():
                setattr(self, name, float(value))

    with jit_quietly():
        torch.jit.script(TensorFile()).save(str(path))


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """The tensors (by name, in order) and numbers of a tensor file."""
    with jit_quietly():
        module = torch.jit.load(str(path))
    numbers = {name: float(getattr(module, name)) for name in TENSOR_FILE_NUMBERS if hasattr(module, name)}
    return dict(module.named_buffers()), numbers


def named_outputs(output: object, name: str = "output") -> list[tuple[str, torch.Tensor]]:
    """Every tensor of a model output with a name, in the order the C++ runner sees them: "output" for a tensor,
    "output_0", "output_1" for a tuple or list, the keys for a dict ("aux_0" for a tuple under "aux")."""
    if isinstance(output, torch.Tensor):
        return [(name, output)]
    if output is None:  # e.g. the unused aux outputs of a scripted googlenet or inception_v3
        return []
    if isinstance(output, (tuple, list)):
        return [pair for i, item in enumerate(output) for pair in named_outputs(item, f"{name}_{i}")]
    if isinstance(output, dict):
        pairs = []
        for key, item in output.items():
            key = re.sub(r"\W", "_", str(key))  # buffer names: no dots
            pairs += named_outputs(item, key if name == "output" else f"{name}_{key}")
        return pairs
    raise DeployError(f"the model returned {type(output).__name__}; return tensors or tuples/lists/dicts of them")


def flatten(output: object) -> list[torch.Tensor]:
    """Every tensor of a model output, in the order the C++ runner sees them."""
    return [tensor for _, tensor in named_outputs(output)]


def is_scores(tensor: torch.Tensor) -> bool:
    """A classifier's output: a 2-D floating tensor of per-class scores."""
    return tensor.dim() == 2 and tensor.is_floating_point()


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX on x86-64, BF16 on Arm), as
    torch_deploy::native_bf16() decides in C++. Without it, oneDNN emulates bf16 in fp32 arithmetic, slower than fp32."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = {flag for line in text.splitlines() if line.startswith(("flags", "Features")) for flag in line.split()}
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


# The activation rewrites the library makes for oneDNN Graph (script.cpp's rewrite_activations includes this file):
# {pattern, replacement} pairs of raw strings of TorchScript IR.
REWRITES_FILE = Path(__file__).resolve().parent / "src" / "rewrites.inc"


def wanted(switch: str) -> bool:
    """Whether the environment leaves on the part of the library's onednn mode that ``switch`` names (any value but
    0), as script.cpp's wanted() decides: TORCH_DEPLOY_REWRITES, TORCH_DEPLOY_CHANNELS_LAST."""
    return os.environ.get(switch) != "0"


def onednn_rewrites() -> list[tuple[str, str]]:
    """The library's activation rewrites for oneDNN Graph, as (pattern, replacement) pairs of TorchScript IR."""
    texts = re.findall(r'R"\((.*?)\)"', REWRITES_FILE.read_text(encoding="utf-8"), re.DOTALL)
    return list(zip(texts[0::2], texts[1::2], strict=True))


def rewrite_activations(graph: torch._C.Graph) -> None:
    """What the library's rewrite_activations does to a frozen graph (in-place operators made functional, then each
    rewrite), unless TORCH_DEPLOY_REWRITES=0 leaves them out, as it does there."""
    if not wanted("TORCH_DEPLOY_REWRITES"):
        return
    torch._C._jit_pass_remove_mutation(graph)
    for pattern, replacement in onednn_rewrites():
        torch._C._jit_pass_custom_pattern_based_rewrite_graph(pattern, replacement, graph)


def fix_pools(graph: torch._C.Graph, inputs: list[torch.Tensor]) -> None:
    """What the library's with_fixed_pools does to a rewritten graph for inputs of these shapes: each global average
    pool (adaptive_avg_pool2d to 1 x 1, which oneDNN Graph does not map) becomes an avg_pool2d whose kernel is its
    input's height and width (which it maps), found by symbolic shape analysis. A graph it cannot follow keeps its
    pools, as there; TORCH_DEPLOY_REWRITES=0 leaves them too."""
    if not wanted("TORCH_DEPLOY_REWRITES"):
        return
    typed = graph.copy()
    for value, tensor in zip(list(typed.inputs())[1:], inputs, strict=True):  # [0] is self
        value.setType(torch._C.TensorType.create_from_tensor(tensor))
    try:
        torch._C._jit_pass_propagate_shapes_on_graph(typed)
    except RuntimeError:
        return
    # The copies list the same nodes in the same order; only the graph's top level is looked at, as there.
    for node, typed_node in zip(list(graph.nodes()), list(typed.nodes()), strict=True):
        if node.kind() != "aten::adaptive_avg_pool2d" or node.inputsAt(1).toIValue() != [1, 1]:
            continue
        sizes = typed_node.inputsAt(0).type().sizes()
        if sizes is None or len(sizes) < 3 or None in sizes:
            continue
        kernel = sizes[-2:]
        # kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override: the library's arguments
        arguments = [kernel, kernel, [0, 0], False, True, None]
        with graph.insert_point_guard(node):
            pooled = graph.insertNode(
                graph.create("aten::avg_pool2d", [node.inputsAt(0), *map(graph.insertConstant, arguments)])
            )
        pooled.output().setType(node.output().type())
        node.output().replaceAllUsesWith(pooled.output())
        node.destroy()


def run_in_bf16(
    model_file: Path, inputs: list[torch.Tensor]
) -> tuple[list[torch.Tensor], list[tuple[str, torch.Tensor]]]:
    """A TorchScript model file run in bf16 as torch_deploy::Model runs it: floating-point weights in bf16, frozen,
    its activations rewritten for oneDNN Graph (rewrite_activations) and, for inputs of the shapes the file records
    (a batch of any size), its global pools fixed for them (fix_pools), oneDNN Graph fusion on, float32 inputs in bf16
    and images (is_image) channels-last, bf16 outputs as float32. TorchScript fuses a frozen model after its first,
    profiling, run (torch._C._jit_get_num_profiled_runs()), so this returns both: the first run's outputs (not yet
    fused), and the outputs from then on, by name. A model that cannot run in bf16 raises RuntimeError."""

    def float32(outputs: list[tuple[str, torch.Tensor]]) -> list[tuple[str, torch.Tensor]]:
        return [(name, t.float() if t.dtype == torch.bfloat16 else t) for name, t in outputs]

    converted = [t.to(torch.bfloat16) if t.dtype == torch.float32 else t for t in inputs]
    converted = [t.contiguous(memory_format=torch.channels_last) if is_image(t) else t for t in converted]
    previous = torch.jit.onednn_fusion_enabled()
    torch.jit.enable_onednn_fusion(True)
    try:
        with jit_quietly(), torch.no_grad():
            deployed = load_model(model_file)
            frozen = torch.jit.freeze(deployed.model.to(torch.bfloat16))
            rewrite_activations(frozen.graph)
            recorded = [shape for _, shape, _ in deployed.info.inputs] if deployed.info else []
            if recorded and all(recorded) and same_shapes(inputs, recorded):
                fix_pools(frozen.graph, converted)
            first = float32(named_outputs(frozen(*converted)))
            for _ in range(torch._C._jit_get_num_profiled_runs()):
                frozen(*converted)
            return [t for _, t in first], float32(named_outputs(frozen(*converted)))
    finally:
        torch.jit.enable_onednn_fusion(previous)


def same_shapes(inputs: list[torch.Tensor], shapes: list[list[int]]) -> bool:
    """Whether ``inputs`` have these shapes but for the first dimension (the batch), as the library's same_shapes."""
    return len(inputs) == len(shapes) and all(
        t.dim() == len(shape) and list(t.shape[1:]) == shape[1:] for t, shape in zip(inputs, shapes, strict=True)
    )


def is_image(tensor: torch.Tensor) -> bool:
    """Whether the library gives a model optimised for oneDNN Graph this input channels-last (Script::run): a 4-D
    floating-point one, unless TORCH_DEPLOY_CHANNELS_LAST=0 leaves the inputs in their layout, as it does there."""
    return tensor.dim() == 4 and tensor.is_floating_point() and wanted("TORCH_DEPLOY_CHANNELS_LAST")


def drift(actual: list[torch.Tensor], reference: list[torch.Tensor], k: int) -> tuple[float, int]:
    """How far ``actual`` is from ``reference`` computed in another precision: the max abs diff of the floating-point
    outputs (a flipped mask says nothing of its size), and how many of the reference's top-k classes (first output,
    first row) are still in the top-k (0 when it is no classifier)."""
    floating = [(a, r) for a, r in zip(actual, reference, strict=True) if a.is_floating_point()]
    overlap = 0
    if k > 0 and actual and is_scores(actual[0]) and actual[0].shape[0]:
        ours, theirs = top_k(actual[0].double(), k)[0].tolist(), top_k(reference[0].double(), k)[0].tolist()
        overlap = len(set(ours) & set(theirs))
    return max_abs_diff([a for a, _ in floating], [r for _, r in floating]), overlap


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k highest softmax scores per row, as the tutorial computes them."""
    return torch.nn.functional.softmax(scores, dim=1).topk(min(k, scores.shape[1])).indices


def largest(tensor: torch.Tensor) -> float | None:
    """A floating-point output's largest |value|, the scale its difference is judged at; None for one that is empty
    or not floating-point (it must be equal)."""
    if not tensor.is_floating_point() or not tensor.numel():
        return None
    return tensor.double().abs().max().item()


def within(actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float) -> bool:
    """The parity rule, the same as the C++ runner's (torch_deploy::compare): a floating-point output is within
    atol + rtol * its reference's largest |value| (float32 rounding grows with the magnitude of what is summed, so
    logits near 4e11 that differ by 1e5 are right), any other output is equal. A NaN fails."""
    diff = output_diff(actual, expected)
    scale = largest(expected)
    if scale is None:
        return diff == 0.0
    return diff <= atol + rtol * scale


def relative_diff(actual: list[torch.Tensor], expected: list[torch.Tensor]) -> float | None:
    """The largest max-abs-diff / largest-|expected| over the floating-point outputs; None when none has a scale."""
    ratios = [output_diff(a, e) / scale for a, e in zip(actual, expected, strict=True) if (scale := largest(e))]
    return max(ratios, default=None)


def scale_note(expected: list[torch.Tensor], names: list[str], atol: float) -> str:
    """ "" or the parity line's notes on what it cannot check, and what to do: a floating-point reference output
    smaller than atol (which passes it whatever the model computes), and empty outputs (a detector that found
    nothing), of which nothing is compared."""
    note = ""
    for i, tensor in enumerate(expected):
        scale = largest(tensor)
        if scale is not None and scale < atol:
            which = f"{names[i]}'s" if len(expected) > 1 and i < len(names) else "the output's"
            note = (
                f"; note: {which} largest |value| is {scale:.3e}, below atol, so this check cannot tell it from zero "
                '(verify with trained weights, or set a smaller "atol" in deploy.json)'
            )
            break
    empty = [names[i] if i < len(names) else f"output_{i}" for i, tensor in enumerate(expected) if not tensor.numel()]
    if empty:
        note += (
            f"; note: {', '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty, so nothing of "
            f"{'it' if len(empty) == 1 else 'them'} is compared (a detector that found nothing: verify with trained "
            "weights and an image with objects in it)"
        )
    return note


def agreement(actual: list[torch.Tensor], expected: list[torch.Tensor], names: list[str], atol: float) -> str:
    """The differences as the parity lines give them: "max abs diff 1.2e+05, relative diff 3.0e-07" and the
    scale note."""
    relative = relative_diff(actual, expected)
    shown = f", relative diff {relative:.3e}" if relative is not None else ""
    return f"max abs diff {max_abs_diff(actual, expected):.3e}{shown}{scale_note(expected, names, atol)}"


def compare(actual: list[torch.Tensor], expected: list[torch.Tensor], atol: float, rtol: float, k: int) -> str | None:
    """None when ``actual`` matches ``expected`` (each output within() its tolerance, the same top-k for scores up to
    ties within that tolerance), else why not."""
    if len(actual) != len(expected):
        return f"{len(actual)} output tensors, expected {len(expected)}"
    for a, e in zip(actual, expected, strict=True):
        if a.shape != e.shape:
            return f"output shape {tuple(a.shape)}, expected {tuple(e.shape)}"
    for a, e in zip(actual, expected, strict=True):
        if not within(a, e, atol, rtol):
            relative = relative_diff(actual, expected)
            shown = f" (relative diff {relative:.3e})" if relative is not None else ""
            return (
                f"max abs diff {max_abs_diff(actual, expected):.3e}{shown} exceeds atol {atol:g}, rtol {rtol:g} "
                "of the output's largest |value|"
            )
        if k > 0 and is_scores(a) and not same_top_k(a, e, k, atol + rtol * (largest(e) or 0.0)):
            return f"top-{k} differs: {top_k(a, k).tolist()} vs {top_k(e, k).tolist()}"
    return None


def same_top_k(actual: torch.Tensor, expected: torch.Tensor, k: int, tolerance: float) -> bool:
    """Whether ``actual`` ranks the same top-k classes as ``expected``, row by row, up to ties: a place may name
    another class only where the expected scores of the two are within ``tolerance`` of each other, closer than the
    reference can order them (the C++ runner's rule, torch_deploy::compare)."""
    ours, theirs = top_k(actual, k), top_k(expected, k)
    if torch.equal(ours, theirs):
        return True
    reference = expected.double()
    return bool((reference.gather(1, ours) - reference.gather(1, theirs)).abs().le(tolerance).all())


def max_abs_diff(actual: list[torch.Tensor], expected: list[torch.Tensor]) -> float:
    """The largest absolute difference over all output tensors (of equal shapes)."""
    return max((output_diff(a, e) for a, e in zip(actual, expected, strict=True)), default=0.0)


def output_diff(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """The largest absolute difference of one output (of equal shapes; 0 for an empty one; NaN stays NaN)."""
    return (actual.double() - expected.double()).abs().max().item() if expected.numel() else 0.0
