"""The export machinery of a deployment project: export the model in the formats deploy.json asks for and record
the reference input and outputs that C++ must reproduce.

The project's own export.py says which model (its build_model(), the user's hook) and calls main() here:

    python export.py                      # what make export runs: reads deploy.json, writes artifacts/
    python export.py --seed 7 --output-dir /tmp/other

Steps: build the model named in deploy.json, export it in each of deploy.json's "formats" (TorchScript:
torch.jit.script or trace into model.pt; AOTInductor: torch.export, compiled ahead of time into model.pt2), load
each file again and check that it computes what the eager model does (allclose, and the same top-k for
classifiers, as the TorchScript tutorial does), then save input.pt and each format's outputs on it (expected.pt,
expected_aoti.pt). With "precision" bf16, model.pt's outputs in bf16 too (expected_bf16.pt), with a tolerance measured
here and the drift from fp32 beside it. With a GPU "device" (cuda), the model.pt2 is compiled for that GPU and checked
on it (AOTInductor compiles for the device it exports on: this needs the GPU), and where the GPU is, model.pt's
reference outputs on it are recorded too (torch_deploy.reference); model.pt itself runs on any device. Each model file carries its inputs, output names and top-k, and for an image
classifier the image preprocessing and the class names, so that it is a complete deployment; the tensor files are
read by libtorch alone (torch_deploy.artifacts describes the format).

The artifacts are published all at once (torch_deploy.staging): they are written into a new folder in .artifacts/,
then swapped with ``artifacts`` in one step. An export that fails or is killed at any moment leaves the previous
artifacts as they were.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import logging
import math
import os
import pickle
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from torch_deploy import device as devices
from torch_deploy import formats as listing
from torch_deploy import reference
from torch_deploy.artifacts import (
    BF16_EXPECTED,
    DTYPES,
    FORMATS,
    INTERPOLATIONS,
    PRECISIONS,
    QUANTIZATION_KEY,
    DeployError,
    Format,
    ImageSettings,
    ModelInfo,
    agreement,
    compare,
    drift,
    dtype_name,
    extra_files,
    flatten,
    is_scores,
    load_package,
    load_torchscript,
    max_abs_diff,
    named_outputs,
    native_bf16,
    run_in_bf16,
    save_tensors,
    top_k,
)
from torch_deploy.staging import atomic_folder

CONFIG_FILE = "deploy.json"
# Every file export.py writes into the artifacts folder: the reference inputs, and each format's model file and
# reference outputs (with dynamic_batch, also at batch + 1), and the list of the formats exported.
# The GPU's reference outputs of model.pt (expected_cuda.pt) are written by export where the GPU is, else by make
# verify DEVICE=cuda.
ARTIFACTS = (
    listing.FORMATS_FILE,
    listing.TUNED_FILE,  # not written by export, but by make tune into export's folder: replaced with it
    "input.pt",
    "input_batch.pt",
    BF16_EXPECTED,
    *(f.expected(batch, device) for f in FORMATS.values() for batch in (False, True) for device in ("cpu", "cuda")),
    *(f.model_file for f in FORMATS.values()),
)


class ExportError(DeployError):
    """Raised for a problem the user can fix (bad model spec, failed check); main() prints it as one line."""


def load_config(project: Path | None = None) -> dict:
    """The project's settings (deploy.json of ``project``, the working folder by default): model spec, export method,
    input shape, seed and tolerances. ``project_dir`` is added: the folder the model, weights and labels files named
    there are relative to."""
    folder = Path.cwd() if project is None else Path(project)
    file = folder / CONFIG_FILE
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ExportError(
            f"{file} is missing: run this in a deployment project's folder (tsgen new makes one)"
        ) from err
    except json.JSONDecodeError as err:
        raise ExportError(f"{file}: not valid JSON ({err}); fix it, or take it back from git") from err
    return {**config, "project_dir": str(folder)}


@contextlib.contextmanager
def torchscript_deprecation_noted(exporting_torchscript: bool = True) -> Iterator[None]:
    """Collect torch.jit's deprecation warnings (one per call on torch 2.14) and, when the export makes a TorchScript
    file, report them in one line (the tensor files use torch.jit too, which is no news to a user)."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:  # reported outside the catching context, also when the export fails (a TracerWarning may say why)
        report_warnings(caught, exporting_torchscript)


def report_warnings(caught: list[warnings.WarningMessage], exporting_torchscript: bool = True) -> None:
    """Show the warnings that are not torch.jit's deprecation notices; count those in one note."""
    jit = [w for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning)) and "jit" in w.filename]
    for other in caught:
        # torchvision's detectors say, scripted, that they return (losses, detections): OneImageDetector knows
        if other not in jit and "(Losses, Detections) tuple in scripting" not in str(other.message):
            warnings.showwarning(other.message, other.category, other.filename, other.lineno)
    if jit and exporting_torchscript:
        print(
            f"note: torch {torch.__version__} marks TorchScript as deprecated "
            f"({len(jit)} warning{'s' if len(jit) > 1 else ''} silenced); "
            "libtorch still loads and runs the exported model"
        )


@dataclass
class Source:
    """The model to deploy: a module to export, or a TorchScript module already (a .pt source: no export step),
    and the example inputs its factory returned, if any (else the reference inputs follow deploy.json's inputs)."""

    model: torch.nn.Module
    examples: list[torch.Tensor] | None = None
    already_torchscript: bool = False
    recipe: Any = None  # a torchvision model's weights entry: its training transforms and category names

    @property
    def detector(self) -> bool:
        """Whether its outputs are one image's detections (boxes, labels, scores), not class scores."""
        return isinstance(self.model, OneImageDetector)


def build_model(config: dict, seed: int) -> Source:
    """The model deploy.json names: ``torchvision:<arch>`` (with its ``weights``), ``models/file.py:factory``
    or ``models/model.pt``; random weights are seeded, so that every export of the same config is the same."""
    spec, folder = config["model"], Path(config["project_dir"])
    torch.manual_seed(seed)
    if spec.startswith("torchvision:"):
        model, recipe = torchvision_model(spec, config.get("weights", "none"), folder)
        return Source(model, recipe=recipe)
    if spec.endswith(".pt"):
        file = project_file(folder, "model", spec)
        try:
            return Source(load_torchscript(file).eval(), already_torchscript=True)
        except RuntimeError as err:
            raise ExportError(
                f"model={spec}: not a TorchScript file ({cause_of(err)}); give a torch.jit.save file"
            ) from err
    return factory_model(spec, folder)


def top_k_of(source: Source, config: dict) -> int:
    """How many classes export compares and records: deploy.json's top_k, but 0 for a detector (its scores rank
    detections, not classes; the runner then prints what each output holds)."""
    return 0 if source.detector else config["top_k"]


def project_file(folder: Path, answer: str, relative: str) -> Path:
    """A file deploy.json names (the ``answer`` entry), relative to the project ``folder``; it must exist."""
    file = folder / relative
    if not file.is_file():
        raise ExportError(f"{answer}={relative}: {file} does not exist; fix the {answer} entry in deploy.json")
    return file


def cause_of(error: BaseException) -> str:
    """The line of an error message that says what went wrong: the first, except for TorchScript interpreter
    errors, which end with the cause after a TorchScript traceback."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    return (
        lines[-1] if lines[0].startswith("The following operation failed in the TorchScript interpreter") else lines[0]
    )


def torchvision_model(spec: str, weights: str, folder: Path) -> tuple[torch.nn.Module, Any]:
    """A torchvision classifier, segmentation model or detector (as a OneImageDetector) with seeded random weights
    (none), downloaded ones (DEFAULT or a weights name), or the weights of a local file; and the weights entry whose
    transforms and categories describe it (the chosen weights, else the architecture's DEFAULT ones: the recipe the
    architecture is trained with)."""
    arch = spec.split(":", 1)[1]
    try:
        import torchvision  # only torchvision models need it
    except ImportError as missing:
        raise ExportError(
            f"model={spec}: torchvision is not installed for {sys.executable}; pip install torchvision"
        ) from missing
    # Classifiers, semantic segmentation (a dict of per-pixel class scores, "out" and maybe "aux") and detectors
    # (behind OneImageDetector: one image in, its detections out; torchvision's operators are loaded in C++).
    known = torchvision.models.list_models(module=torchvision.models)
    segmentation = torchvision.models.list_models(module=torchvision.models.segmentation)
    detection = torchvision.models.list_models(module=torchvision.models.detection)
    if arch not in known + segmentation + detection:
        raise ExportError(
            f"model={spec}: torchvision {torchvision.__version__} has no classification model {arch!r}; pick one of: "
            f"{', '.join(sorted(known)[:12])}, ..., or a segmentation model: {', '.join(sorted(segmentation)[:3])}, "
            f"..., or a detection model: {', '.join(sorted(detection)[:3])}, ..."
        )
    model, recipe = torchvision_weights(arch, weights, folder, backbone=arch in segmentation + detection)
    return (OneImageDetector(model).eval() if arch in detection else model), recipe


class OneImageDetector(torch.nn.Module):
    """A torchvision detector as a model of one tensor: a batch of one image (1, 3, height, width; values in [0, 1]:
    the detector resizes and normalises it itself) to that image's detections, a dict of boxes (N, 4; x1, y1, x2, y2
    in the input's pixels), labels (N) and scores (N), and masks or keypoints for the models that make them."""

    def __init__(self, detector: torch.nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        torch._assert(image.dim() == 4 and image.shape[0] == 1, "a detector takes a batch of one image")
        if torch.jit.is_scripting():  # scripted, a torchvision detector returns (losses, detections)
            return self.detector([image[0]])[1][0]
        return self.detector([image[0]])[0]


def torchvision_weights(arch: str, weights: str, folder: Path, backbone: bool) -> tuple[torch.nn.Module, Any]:
    """torchvision_model()'s model of architecture ``arch`` and its weights entry; ``backbone``: the architecture
    would download its backbone's ImageNet weights when built without weights (segmentation, detection)."""
    import torchvision

    options = torchvision.models.get_model_weights(arch)
    # Random means all random: no download of a backbone's weights either.
    unweighted = {"weights": None, **({"weights_backbone": None} if backbone else {})}
    if weights == "none":
        return torchvision.models.get_model(arch, **unweighted).eval(), options.DEFAULT
    if "/" in weights or weights.endswith((".pt", ".pth", ".ckpt", ".bin")):  # a file, as hooks/answers.py tells
        model = torchvision.models.get_model(arch, **unweighted)
        load_state(model, project_file(folder, "weights", weights), weights)
        return model.eval(), options.DEFAULT
    family, _, name = weights.rpartition(".")
    if family and family != options.__name__:
        raise ExportError(
            f"weights={weights}: those are {family}, not {arch}'s; use {options.__name__}.{name} or {name}"
        )
    if name != "DEFAULT" and name not in options.__members__:
        raise ExportError(
            f"weights={weights}: {arch} has no such weights; pick DEFAULT or one of: {', '.join(options.__members__)}"
        )
    chosen = options.DEFAULT if name == "DEFAULT" else options[name]
    try:
        return torchvision.models.get_model(arch, weights=chosen).eval(), chosen
    except (OSError, RuntimeError) as err:  # URLError is an OSError; a broken download a RuntimeError
        raise ExportError(
            f"weights={weights}: downloading {chosen.url} failed ({cause_of(err)}); without internet, download that "
            f"file elsewhere and use it: tsgen new --weights path/to/{chosen.url.rsplit('/', 1)[-1]} (in this project: "
            'copy it into models/ and set "weights" in deploy.json to models/<file>)'
        ) from err


def load_state(model: torch.nn.Module, file: Path, name: str) -> None:
    """Load a state dict, or a checkpoint holding one under "state_dict" or "model", into ``model`` (tensors only:
    weights_only=True); keys that do not fit are reported by name."""
    try:
        state = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors come in many types; all mean the same to the user
        raise ExportError(
            f"weights={name}: cannot read it as tensors ({cause_of(err)}); save it with torch.save(model.state_dict(), path)"
        ) from err
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ExportError(
            f"weights={name}: holds no state dict (nor a checkpoint with state_dict or model); save model.state_dict()"
        )
    if state and all(key.startswith("module.") for key in state):  # saved from DataParallel
        state = {key.removeprefix("module."): value for key, value in state.items()}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # size mismatches
        raise ExportError(
            f"weights={name}: does not fit the model ({' '.join(str(err).split())[:300]}); "
            "use weights saved from this architecture"
        ) from err
    if missing or unexpected:

        def listed(keys: list[str]) -> str:
            return ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")

        parts = ([f"missing keys: {listed(missing)}"] if missing else []) + (
            [f"unexpected keys: {listed(unexpected)}"] if unexpected else []
        )
        raise ExportError(
            f"weights={name}: does not fit the model ({'; '.join(parts)}); use weights saved from this architecture"
        )


def factory_model(spec: str, folder: Path) -> Source:
    """``models/file.py:factory``: the factory returns the module, or (module, example inputs)."""
    file_name, _, factory_name = spec.rpartition(":")
    file = project_file(folder, "model", file_name)
    module_spec = importlib.util.spec_from_file_location(file.stem, file)
    assert module_spec and module_spec.loader
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise ExportError(f"model={spec}: {file.name} defines no function {factory_name!r}")
    made = factory()
    model, examples = made if isinstance(made, tuple) and len(made) == 2 else (made, None)
    if not isinstance(model, torch.nn.Module):
        raise ExportError(
            f"model={spec}: {factory_name}() returned {type(model).__name__}, not an nn.Module (or (module, inputs))"
        )
    if examples is None:
        return Source(model.eval())
    examples = [examples] if isinstance(examples, torch.Tensor) else list(examples)
    if not examples or not all(isinstance(t, torch.Tensor) for t in examples):
        raise ExportError(f"model={spec}: {factory_name}() returned example inputs that are not tensors")
    return Source(model.eval(), examples)


def make_inputs(specs: list[dict], seed: int) -> dict[str, torch.Tensor]:
    """The reference inputs of deploy.json's "inputs", from one seeded generator: floats uniform in [0, 1) like
    the tutorial's dummy image, integers in [0, 10) (valid indices for any embedding), booleans fair coin flips."""
    generator = torch.Generator().manual_seed(seed)
    return {spec["name"]: random_tensor(spec["shape"], DTYPES[spec["dtype"]], generator) for spec in specs}


def random_tensor(
    shape: list[int] | torch.Size, dtype: torch.dtype, generator: torch.Generator, integers: tuple[int, int] = (0, 10)
) -> torch.Tensor:
    """One random input: floats uniform in [0, 1), integers in [low, high), booleans fair coin flips."""
    if dtype.is_floating_point:
        return torch.rand(shape, generator=generator).to(dtype)
    if dtype == torch.bool:
        return torch.rand(shape, generator=generator) > 0.5
    return torch.randint(*integers, shape, generator=generator, dtype=dtype)


IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def image_input(inputs: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """The model's image input, if it has one: its only input, shaped (batch, 1 or 3 channels, height, width), of a
    floating dtype (the rule of image_input() in the generator's answers, applied to the inputs really used)."""
    if len(inputs) != 1:
        return None
    tensor = next(iter(inputs.values()))
    return tensor if tensor.dim() == 4 and tensor.shape[1] in (1, 3) and tensor.is_floating_point() else None


def recipe_name(weights: Any) -> str:
    """A torchvision weights entry as its users write it: ResNet18_Weights.IMAGENET1K_V1."""
    return f"{type(weights).__name__}.{weights.name}"


def image_settings(config: dict, source: Source, inputs: dict[str, torch.Tensor]) -> ImageSettings | None:
    """The preprocessing of ts-infer --image: deploy.json's "preprocess" values, "auto" ones from the torchvision
    weights' transforms (scaled to the input size), else ImageNet's; None when the model takes no image."""
    wanted = config.get("preprocess", {})
    if wanted is None:
        return None
    given = {key: value for key, value in wanted.items() if value != "auto"}
    image = image_input(inputs)
    if image is None:
        if given:
            shapes = ", ".join(f"{tuple(t.shape)} {dtype_name(t.dtype)}" for t in inputs.values())
            raise ExportError(
                f"preprocess: the model's inputs ({shapes}) are not one image (batch, 1 or 3 channels, height, width; "
                'float); set "preprocess" in deploy.json to "auto" or null'
            )
        return None
    channels, height, width = image.shape[1:]
    recipe = source.recipe.transforms() if source.recipe is not None else None
    if source.detector:  # its recipe only makes values of [0, 1]: the detector resizes and normalises by itself
        origin = f"{recipe_name(source.recipe)}, which leaves resizing and normalising to the detector"
        resize, mean, std, interpolation = max(height, width), [0.0] * 3, [1.0] * 3, "bilinear"
    elif recipe is not None:
        origin = recipe_name(source.recipe)
        # A classifier's recipe resizes, then crops: scaled to the input size. A segmentation's resizes only (to 520,
        # any shape): here its shorter side to the input's, then the crop to the input's shape.
        crop = getattr(recipe, "crop_size", None)
        resize = round(recipe.resize_size[0] * max(height, width) / crop[0]) if crop else max(height, width)
        mean, std, interpolation = recipe.mean, recipe.std, recipe.interpolation.value
    else:
        origin = "ImageNet's usual values"
        resize = round(max(height, width) * 256 / 224)
        mean, std, interpolation = IMAGENET_MEAN, IMAGENET_STD, "bilinear"
    if channels == 1:  # one grey channel: the average of the colour channels' values
        mean, std = [sum(mean) / len(mean)], [sum(std) / len(std)]
    settings = ImageSettings(
        resize=int(given.get("resize", resize)),
        crop=(height, width),
        mean=[float(v) for v in given.get("mean", mean)],
        std=[float(v) for v in given.get("std", std)],
        interpolation=str(given.get("interpolation", interpolation)),
        dtype=dtype_name(image.dtype),
        source="deploy.json" if len(given) == 4 else (f"{origin}, deploy.json" if given else origin),
    )
    problems = [
        f"resize {settings.resize} is below the crop {height}x{width}" if settings.resize < max(height, width) else "",
        f"{len(settings.mean)} mean values for {channels} channels" if len(settings.mean) != channels else "",
        f"{len(settings.std)} std values for {channels} channels" if len(settings.std) != channels else "",
        "a std value is not > 0" if any(v <= 0 for v in settings.std) else "",
        f"interpolation {settings.interpolation} is not one of {', '.join(INTERPOLATIONS)}"
        if settings.interpolation not in INTERPOLATIONS
        else "",
    ]
    problem = next((p for p in problems if p), None)
    if problem:
        raise ExportError(f'preprocess: {problem}; fix "preprocess" in deploy.json')
    return settings


def class_names(config: dict, source: Source) -> tuple[list[str], str] | None:
    """The class names ts-infer prints beside the indices, and where they come from: deploy.json's "labels" file
    (one name per line), or for "auto" the torchvision weights' categories (in the package: no download)."""
    labels = config.get("labels", "auto")
    if labels is None:
        return None
    if labels == "auto":
        categories = source.recipe.meta.get("categories") if source.recipe is not None else None
        return (list(categories), recipe_name(source.recipe)) if categories else None
    file = project_file(Path(config["project_dir"]), "labels", labels)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ExportError(f"labels={labels}: cannot read it as UTF-8 text ({err})") from err
    while lines and not lines[-1].strip():  # a trailing blank line is not a class
        lines.pop()
    return [line.strip() for line in lines], labels


def check_class_names(names: tuple[list[str], str], outputs: list[torch.Tensor], labels: object) -> None:
    """The class names must be as many as the classes the model's first output scores: (batch, classes), or per
    pixel (batch, classes, height, width) for a segmentation."""
    first = outputs[0] if outputs else None
    scores = first if first is not None and first.is_floating_point() and first.dim() in (2, 4) else None
    if scores is None or scores.shape[1] != len(names[0]):
        shape = f"{scores.shape[1]} classes" if scores is not None else "no (batch, classes) scores"
        raise ExportError(
            f"labels={labels}: {len(names[0])} class names, but the model's first output has {shape}; "
            "give one name per class, in the order of the scores"
        )


def export_model(model: torch.nn.Module, method: str, inputs: list[torch.Tensor]) -> tuple[torch.jit.ScriptModule, str]:
    """``torch.jit.script`` (keeps control flow), ``torch.jit.trace`` (records one run on ``inputs``) or ``auto``
    (script, else trace, saying why); returns the exported module and the method that made it."""
    if method in ("script", "auto"):
        try:
            return torch.jit.script(model), "script"
        except Exception as err:  # TorchScript's frontend raises many types
            if method == "script":
                raise ExportError(
                    f"torch.jit.script failed: {cause_of(err)}; make the model scriptable, or use export_method auto or trace"
                ) from err
            print(f"note: torch.jit.script failed ({cause_of(err)}); exporting with torch.jit.trace instead")
    return trace(model, inputs), "trace"


def trace(model: torch.nn.Module, inputs: list[torch.Tensor]) -> torch.jit.ScriptModule:
    """torch.jit.trace, also of a model that returns a dict or nested tuples and lists (a Hugging Face model's
    ModelOutput): ``strict=False`` lets the trace return them, which is only right when their structure does not
    depend on the input, so that is checked first: the eager model returns the same outputs, by name, on other inputs
    of the same kinds."""
    with torch.no_grad():
        on_reference = [name for name, _ in named_outputs(model(*inputs))]
        on_other = [name for name, _ in named_outputs(model(*other_inputs(inputs)))]
    if on_reference != on_other:
        raise ExportError(
            f"torch.jit.trace records one run, and the model's outputs change with its input ({', '.join(on_reference)} "
            f"on the reference input, {', '.join(on_other) or 'none'} on another); script it (export_method script), "
            "or return the same outputs for every input"
        )
    try:
        return torch.jit.trace(model, tuple(inputs), strict=False)
    except RuntimeError as err:
        if not str(err).startswith("Tracer cannot infer type of"):
            raise
        cause = str(err).splitlines()[-1].lstrip(":")  # after the output's whole repr
        raise ExportError(
            f"torch.jit.trace cannot return the model's output ({cause}); return tensors, or tuples, lists and dicts "
            "of them whose values in one dict are all of one kind"
        ) from err


def other_inputs(inputs: list[torch.Tensor], seed: int = 1) -> list[torch.Tensor]:
    """Inputs of the same shapes and dtypes as ``inputs`` with other values: floats uniform in [0, 1), integers within
    the range the given ones span (token ids stay in the vocabulary), booleans fair coin flips."""
    generator = torch.Generator().manual_seed(seed)

    def span(tensor: torch.Tensor) -> tuple[int, int]:
        integer = tensor.numel() and not tensor.is_floating_point() and tensor.dtype != torch.bool
        return (int(tensor.min()), int(tensor.max()) + 1) if integer else (0, 1)

    return [random_tensor(t.shape, t.dtype, generator, span(t)) for t in inputs]


@dataclass
class Exported:
    """One format's export, reloaded from its file as C++ will load it, and how it was made (for the messages). A
    model compiled for a GPU runs there, and is checked against the eager model on the same GPU (``eager``); both
    take and give tensors on the CPU, as the reference files hold them."""

    model: Any
    made_by: str
    device: devices.Device = devices.Device("cpu")
    eager: Any = None


class OnDevice:
    """A model run on ``device``, called with and returning tensors on the CPU."""

    def __init__(self, model: Any, device: torch.device) -> None:
        self.model, self.device = model, device

    def __call__(self, *inputs: torch.Tensor) -> Any:
        return on_cpu(self.model(*(tensor.to(self.device) for tensor in inputs)))


def on_cpu(value: Any) -> Any:
    """A model's output with its tensors on the CPU (tuples, lists and dicts kept)."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, (tuple, list)):
        return type(value)(on_cpu(item) for item in value)
    if isinstance(value, dict):
        return {key: on_cpu(item) for key, item in value.items()}
    return value


# What every format's model file carries: its texts (deploy.txt, preprocess.txt, classes.txt) for the output names.
Describe = Callable[[list[str]], dict[str, str]]


def export_torchscript(
    folder: Path, source: Source, inputs: dict[str, torch.Tensor], config: dict, describe: Describe
) -> Exported:
    """model.pt: the model scripted or traced (or a TorchScript source as it is), saved with its texts."""
    if source.already_torchscript:
        print("model is TorchScript already: saved as it is; its own output is the reference")
        exported, made_by = source.model, "loaded"
    else:
        exported, method = export_model(source.model, config["export_method"], list(inputs.values()))
        made_by = {"script": "scripted", "trace": "traced"}[method]
    check_operators(exported)
    # model.pt records the names of the outputs the exported model returns (C++ sees those).
    output_names = [name for name, _ in run_exported(exported, inputs, "export check")]
    exported.save(str(folder / FORMATS["torchscript"].model_file), _extra_files=describe(output_names))
    reloaded = load_torchscript(folder / FORMATS["torchscript"].model_file)  # what C++ loads, not the module
    return Exported(reloaded, made_by)


def registration(operator: str) -> str:
    """The file an operator was registered from, as torch's dispatcher recorded it ("" when it does not say)."""
    try:
        record = torch._C._dispatch_dump(operator)
    except RuntimeError:
        return ""
    prefix = "debug: registered at "
    return next((line[len(prefix) :] for line in record.splitlines() if line.startswith(prefix)), "")


def called_operators(module: torch.jit.ScriptModule) -> set[str]:
    """The operators a TorchScript module's forward calls, methods and submodules inlined, in every branch (what
    torch.jit.export_opnames lists, without failing on the statements mobile modules lack, ``with`` for one)."""

    def walk(block: Any) -> Iterator[str]:
        for node in block.nodes():
            yield node.kind()
            for inner in node.blocks():
                yield from walk(inner)

    return {kind for kind in walk(module.inlined_graph) if "::" in kind}


def check_operators(module: torch.jit.ScriptModule) -> None:
    """The C++ runner has libtorch's operators, and torchvision's (loaded from the exporting torchvision's own library
    when a model calls them): a TorchScript model calling another library's is refused here, in one line, rather than
    at C++'s load. libtorch's own are those registered from the source tree aten::add was."""
    libtorch = registration("aten::add.Tensor").split("/aten/")[0]
    foreign = {}
    for operator in sorted(called_operators(module)):
        if operator.split("::")[0] not in ("aten", "prim", "torchvision"):
            where = registration(operator)
            if not (libtorch and where.startswith(libtorch)):
                foreign[operator] = where
    if not foreign:
        return
    named = ", ".join(foreign)
    in_python = [op for op, where in foreign.items() if where.split(":")[0].endswith(".py")]
    if in_python:
        raise ExportError(
            f"the model calls the operator {in_python[0]}, which is defined in Python (torch.library) and so in no C++ "
            "program; write its kernel in C++ (TORCH_LIBRARY) and link it into ts-infer, or compute it with torch "
            "operations in the model"
        )
    print(
        f"note: the model calls {named}, registered outside libtorch ({next(iter(foreign.values())) or 'unknown'}): "
        "link the library that registers them into ts-infer (CMakeLists.txt: target_link_libraries(ts-infer PRIVATE "
        "-Wl,--no-as-needed <library>)), or the runner cannot load the model"
    )


# AOTInductor's settings, measured on resnet18 (batch 1, 2 threads; tsgen's docs/formats.md): freezing (weights become
# constants, so that convolutions are prepacked and batch norms folded) more than halves the latency; max_autotune
# adds 40 % to the compile time and gained nothing measurable, so it is left off. Inductor's own C++ kernels (the
# pointwise and reduction loops around oneDNN's) take their thread count from the exporting process unless
# dynamic_threads asks OpenMP at run time: a pointwise model exported with 1 thread ran in 43.6 ms with 2 threads
# static, 27.8 ms dynamic; resnet18 and mobilenet_v3_small, whose time is oneDNN's, within noise either way.
AOTI_SETTINGS = {"freezing": True, "cpp.dynamic_threads": True}

# The x86-64 instruction sets a CPU package can be compiled for (deploy.json's "aoti_isa"), as gcc's -march level,
# Inductor's vector width (the intrinsics of its own kernels) and the instructions they allow, by /proc/cpuinfo's
# names. "native" (the default) is the exporting CPU's own: the fastest there, and it may not start on an older CPU.
X86_64_V3 = ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe")
AOTI_ISAS: dict[str, tuple[str, int, tuple[str, ...]] | None] = {
    "native": None,
    "avx2": ("x86-64-v3", 256, X86_64_V3),
    "avx512": ("x86-64-v4", 512, (*X86_64_V3, "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")),
}
# The instruction set extensions -march=native may use, by /proc/cpuinfo's names: those of the exporting CPU are
# recorded in the package, and the runtime refuses it on a CPU that lacks one (rather than dying of SIGILL).
EXTENSIONS = (
    *AOTI_ISAS["avx512"][2],  # type: ignore[index]
    "avx_vnni", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx512vbmi", "avx512_vbmi2", "avx512_bitalg",
    "avx512_vpopcntdq", "avx512ifma", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16", "gfni", "vaes", "vpclmulqdq",
)  # fmt: skip


def cpu_extensions() -> list[str]:
    """This CPU's instruction set extensions among EXTENSIONS (Linux's /proc/cpuinfo; none known elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return [name for name in EXTENSIONS if name in flags]


def aoti_isa(config: dict) -> str:
    """deploy.json's "aoti_isa" (native when it has none), checked: one line for another value or a CPU without it."""
    isa = config.get("aoti_isa", "native")
    if isa not in AOTI_ISAS:
        raise ExportError(f'aoti_isa: {isa!r} is not one; set "aoti_isa" in deploy.json to {", ".join(AOTI_ISAS)}')
    target = AOTI_ISAS[isa]
    present = cpu_extensions() if target else []
    lacking = [name for name in target[2] if name not in present] if target else []
    if lacking:  # the export's own check runs the package here
        raise ExportError(f"aoti_isa {isa}: this CPU lacks {' '.join(lacking)}; export on a CPU that has {isa}")
    return isa


def int8_max_drift(config: dict) -> float:
    """deploy.json's "int8_max_drift" (INT8_MAX_DRIFT when it has none), checked: a number from 0 to 1."""
    value = config.get("int8_max_drift", INT8_MAX_DRIFT)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ExportError(
            f"int8_max_drift: {value!r} is not a fraction from 0 to 1; set it in deploy.json (default {INT8_MAX_DRIFT})"
        )
    return float(value)


def export_aoti(
    folder: Path, source: Source, inputs: dict[str, torch.Tensor], config: dict, describe: Describe
) -> Exported:
    """model.pt2: torch.export's program of the model, compiled ahead of time by AOTInductor for this CPU, or for the
    project's GPU (which must be here: AOTInductor compiles for the device it exports on), with its texts as the
    package's metadata."""
    device = devices.of_config(config)
    target = torch.device("cpu")
    model = source.model
    if device.is_gpu:
        try:
            target = reference.usable(device)
        except devices.DeviceError as err:
            raise ExportError(
                f"formats aoti, device {device}: AOTInductor compiles model.pt2 for the device it exports on, and "
                f'{str(err).split(": ", 1)[-1]}; export on a machine with the GPU, or set "formats" to '
                '["torchscript"] in deploy.json (model.pt runs on any device)'
            ) from err
        model = copy.deepcopy(source.model).to(target)  # the eager model stays on the CPU for model.pt
        inputs = {name: tensor.to(target) for name, tensor in inputs.items()}
    examples, dynamic_shapes = export_examples(inputs, config)
    package = folder / FORMATS["aoti"].model_file
    # Exported and compiled without autograd: a program exported with grad enabled keeps the weights as inputs that
    # need gradients, which freezing cannot fold (measured: twice the compile time, 1.8 times the latency).
    with torch.no_grad():
        program = export_program(model, examples, dynamic_shapes)
        output_names = [name for name, _ in named_outputs(model(*inputs.values()))]
        compile_package(program, package, describe(output_names), config, device)
    loaded = load_package(package, -1 if target.index is None else target.index)[0]
    if not device.is_gpu:
        return Exported(loaded, "AOTInductor-compiled")
    return Exported(OnDevice(loaded, target), "AOTInductor-compiled", device, OnDevice(model, target))


# How far the int8 package's outputs may be from the fp32 model's (deploy.json's "int8_max_drift"): a fraction of each
# output's largest |value|. Random-weight resnet18 drifts 1.3 % (calibrated on its reference input).
INT8_MAX_DRIFT = 0.05


def export_aoti_int8(
    folder: Path, source: Source, inputs: dict[str, torch.Tensor], config: dict, describe: Describe
) -> Exported:
    """model_int8.pt2: the model quantized to int8 after training (PyTorch's PT2E flow with torchao's x86 quantizer:
    static, per-channel weights, activations calibrated on deploy.json's "calibration" inputs, else the reference
    input) and compiled by AOTInductor for this CPU, where oneDNN runs the int8 convolutions and matrix products.
    Its check is a gate: its outputs within "int8_max_drift" of the eager fp32 model's (export_into)."""
    device = devices.of_config(config)
    if device.is_gpu:
        raise ExportError(
            f"formats aoti_int8, device {device}: the int8 package is for the CPU (x86 oneDNN kernels); remove "
            '"aoti_int8" from "formats" in deploy.json, or set "device" to "cpu"'
        )
    pytree = logging.getLogger("torch.utils._pytree")  # torchao 0.18 registers an enum torch 2.14 calls deprecated
    level = pytree.level
    pytree.setLevel(logging.ERROR)
    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86
    except ImportError as err:
        raise ExportError(
            f"formats aoti_int8: quantizing needs torchao, which {sys.executable} lacks ({err}); pip install torchao"
        ) from err
    finally:
        pytree.setLevel(level)
    calibration = calibration_inputs(config, source, inputs)
    given = config.get("calibration")
    if not given:
        print(
            'note: int8 is calibrated on the reference input alone (random values); set "calibration" in deploy.json '
            "to a folder of your images, or a file of your inputs, for activation ranges that represent your data"
        )
    examples, dynamic_shapes = export_examples(inputs, config)
    with torch.no_grad():
        # Captured strictly: a non-strict capture (torch 2.14) groups the nodes by module, and a module called twice
        # (resnet's BasicBlock calls its relu twice) becomes one partition with two outputs, which the quantizer
        # refuses ("Input partition has more than one output node").
        captured = export_program(source.model, examples, dynamic_shapes, strict=True).module()
        quantizer = x86.X86InductorQuantizer().set_global(x86.get_default_x86_inductor_quantization_config())
        try:
            prepared = prepare_pt2e(captured, quantizer)
            for sample in calibration:
                prepared(*sample)
            quantized = convert_pt2e(prepared)
        except Exception as err:  # the quantizer raises many types (AssertionError, ValueError, RuntimeError, ...)
            raise ExportError(
                f'formats aoti_int8: quantizing failed ({cause_of(err)}); remove "aoti_int8" from "formats" in '
                "deploy.json"
            ) from err
        program = export_program(quantized, examples, dynamic_shapes)
        output_names = [name for name, _ in named_outputs(source.model(*inputs.values()))]
        metadata = {**describe(output_names), QUANTIZATION_KEY: "int8"}
        package = folder / FORMATS["aoti_int8"].model_file
        with warnings.catch_warnings():  # Inductor's int8 lowering copies a tensor the way it tells users not to
            warnings.filterwarnings("ignore", "To copy construct from a tensor", UserWarning)
            compile_package(program, package, metadata, config, device)
    if not given:
        samples = "the reference input"
    elif (Path(config["project_dir"]) / given).is_dir():
        samples = f"{len(calibration_images(Path(config['project_dir']) / given))} images of {given.rstrip('/')}/"
    else:
        samples = f"{len(calibration)} inputs of {given}"
    return Exported(load_package(package)[0], f"int8 (calibrated on {samples}) AOTInductor-compiled")


def export_program(
    model: Any, examples: tuple[torch.Tensor, ...], dynamic_shapes: Any, strict: bool = False
) -> torch.export.ExportedProgram:
    """torch.export's program of ``model``; one line saying why when it cannot be exported."""
    try:
        return torch.export.export(model, examples, dynamic_shapes=dynamic_shapes, strict=strict)
    except Exception as err:  # torch.export raises many types (UserError, GuardOnDataDependentSymNode, ...)
        raise ExportError(
            f'torch.export failed: {export_failure(err)}; make the model exportable, or set "formats" to '
            '["torchscript"] in deploy.json (tsgen new --formats torchscript)'
        ) from err


def compile_package(
    program: torch.export.ExportedProgram, package: Path, metadata: dict[str, str], config: dict, device: Any
) -> None:
    """Compile ``program`` into ``package`` with AOTInductor's settings (AOTI_SETTINGS), for deploy.json's "aoti_isa"
    on the CPU, with ``metadata`` and the CPU extensions the runtime checks before loading it."""
    from torch._inductor import aoti_compile_and_package  # imported when needed: it takes seconds

    settings: dict[str, Any] = {**AOTI_SETTINGS, "aot_inductor.metadata": metadata}
    if not device.is_gpu:
        target_isa = AOTI_ISAS[aoti_isa(config)]
        if target_isa:
            settings["cpp.march"], settings["cpp.simdlen"] = target_isa[0], target_isa[1]
        # what the runtime checks this CPU against before loading the package
        extensions = list(target_isa[2]) if target_isa else cpu_extensions()
        settings["aot_inductor.metadata"]["cpu_extensions"] = " ".join(extensions)
    if config.get("dynamic_batch"):  # a dynamic size is taken to be 2 or more; the C++ input check must accept 1
        settings["aot_inductor.check_lowerbound"] = False
    with quiet_compiler_probe():
        aoti_compile_and_package(program, package_path=str(package), inductor_configs=settings)


def calibration_inputs(config: dict, source: Source, inputs: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, ...]]:
    """The inputs int8's activation ranges are measured on: deploy.json's "calibration", a folder of images
    (preprocessed as the model's images are: ts-infer --image) or a file of input tensors (torch.save of a list whose
    items are a tensor, or a tuple of tensors in forward()'s order); without it, the reference input."""
    given = config.get("calibration")
    if not given:
        return [tuple(inputs.values())]
    path = Path(config["project_dir"]) / given
    fix = 'set "calibration" in deploy.json to a folder of images or a torch.save file of inputs'
    if path.is_dir():
        from torch_deploy.predict import preprocess, read_image

        settings = image_settings(config, source, inputs)
        images = calibration_images(path)
        if settings is None or len(inputs) != 1 or not images:
            why = "holds no .jpg or .png image" if not images else "is images, and the model's input is not an image"
            raise ExportError(f"calibration={given}: {path} {why}; {fix}")
        pixels = [preprocess(read_image(image), settings) for image in images]  # each a batch of 1
        batch = next(iter(inputs.values())).shape[0]
        if config.get("dynamic_batch") or batch == 1:
            return [(image,) for image in pixels]
        # batches of the model's fixed size, the images taken in turn (the last batch filled from the first ones)
        count = -(-len(pixels) // batch) * batch
        cycled = [pixels[i % len(pixels)] for i in range(count)]
        return [(torch.cat(cycled[i : i + batch]),) for i in range(0, count, batch)]
    try:
        loaded = torch.load(path, weights_only=True)
        samples = [(item,) if isinstance(item, torch.Tensor) else tuple(item) for item in loaded]
    except (OSError, RuntimeError, TypeError, pickle.UnpicklingError) as err:
        raise ExportError(
            f"calibration={given}: cannot read {path} as a list of inputs ({cause_of(err)}); {fix}"
        ) from err
    skip = 1 if config.get("dynamic_batch") else 0  # any batch size, or the model's own
    wanted = [(t.dtype, list(t.shape[skip:])) for t in inputs.values()]
    if not samples or any([(t.dtype, list(t.shape[skip:])) for t in sample] != wanted for sample in samples):
        shapes = ", ".join(f"{dtype} {shape}" for dtype, shape in wanted)
        raise ExportError(
            f"calibration={given}: {path} is not a list of inputs like the model's ({shapes}"
            f"{' after the batch' if skip else ''}); {fix}"
        )
    return samples


def calibration_images(folder: Path) -> list[Path]:
    """The images of a calibration folder, in name order."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def export_examples(
    inputs: dict[str, torch.Tensor], config: dict
) -> tuple[tuple[torch.Tensor, ...], tuple[dict[int, Any], ...] | None]:
    """torch.export's example inputs and dynamic shapes. With a dynamic batch, dimension 0 of every input is
    dynamic; a batch of 1 is doubled for the export, since torch.export takes a size of 1 for a constant."""
    examples = tuple(inputs.values())
    if not config.get("dynamic_batch"):
        return examples, None
    examples = tuple(torch.cat([t, t]) if t.dim() and t.shape[0] == 1 else t for t in examples)
    return examples, tuple({0: torch.export.Dim.DYNAMIC} if t.dim() else {} for t in examples)


def export_failure(error: BaseException) -> str:
    """torch.export's reason in one line: its first line, and the user's code that raised it when it says so."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = lines[0] if lines else type(error).__name__
    if "The following call raised this error:" in lines:
        at = lines.index("The following call raised this error:")
        where = lines[at + 1 : at + 3]
        if where and where[0].startswith("File "):
            code = f" `{where[1]}`" if len(where) > 1 and not where[1].startswith(("File ", "The ")) else ""
            reason += f" ({where[0]}{code})"
    return reason


@contextlib.contextmanager
def quiet_compiler_probe() -> Iterator[None]:
    """AOTInductor's compiler setup logs a warning when the torch wheel is a CUDA one and no CUDA toolkit is found;
    the CPU compile needs none, so that warning is only noise here."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


EXPORTERS: dict[str, Callable[..., Exported]] = {
    "torchscript": export_torchscript,
    "aoti": export_aoti,
    "aoti_int8": export_aoti_int8,
}


def check_compiler(formats: list[Format]) -> None:
    """AOTInductor compiles the model with the C++ compiler CXX names (else g++): refuse early when there is none."""
    compiler = os.environ.get("CXX") or "g++"
    packaged = [f.name for f in formats if f.packaged]
    if packaged and not shutil.which(compiler):
        raise ExportError(
            f"formats {packaged[0]}: no C++ compiler {compiler!r} (CXX, else g++), which AOTInductor compiles the model with; "
            'install one (Debian/Ubuntu: apt install g++), set CXX, or set "formats" to ["torchscript"] in deploy.json'
        )


def export_formats(config: dict) -> list[Format]:
    """deploy.json's "formats" (TorchScript when it has none: a project made before there was a choice)."""
    names = config.get("formats") or ["torchscript"]
    unknown = [name for name in names if name not in FORMATS]
    if unknown:
        raise ExportError(
            f'formats: {unknown[0]!r} is not a format; set "formats" in deploy.json to a list of {", ".join(FORMATS)}'
        )
    packaged = [name for name in names if FORMATS[name].packaged]
    if packaged and config["model"].endswith(".pt"):
        raise ExportError(
            f'model={config["model"]}: a TorchScript file cannot be exported with torch.export; set "formats" to '
            '["torchscript"] in deploy.json, or export the Python model (a models/<file>.py:factory)'
        )
    try:
        devices.of_config(config)  # a device that is not one is named here, before anything is built
    except devices.DeviceError as err:
        raise ExportError(str(err)) from err
    if packaged:
        aoti_isa(config)
    if "aoti_int8" in names:
        int8_max_drift(config)
    precision = config.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise ExportError(
            f'precision: {precision!r} is not a precision; set "precision" in deploy.json to fp32 or bf16'
        )
    if precision == "bf16" and "torchscript" not in names:
        raise ExportError(
            'precision bf16: runs model.pt (an AOTInductor package runs as compiled, in fp32); add "torchscript" to '
            '"formats" in deploy.json, or set "precision" to "fp32"'
        )
    return [FORMATS[name] for name in dict.fromkeys(names)]


# The user's hook: the project's export.py defines build_model(config, seed) -> Source (models and inputs).
BuildModel = Callable[[dict, int], Source]


def export(config: dict, output_dir: Path, seed: int | None = None, model: BuildModel | None = None) -> None:
    """Build (with ``model``, the project's hook; build_model() by default), export, check and save; on any failure
    (or a kill) ``output_dir`` keeps its previous artifacts."""
    seed = config["seed"] if seed is None else seed
    formats = export_formats(config)
    check_output_dir(output_dir)
    was_tuned = (output_dir / listing.TUNED_FILE).is_file()
    check_compiler(formats)
    with atomic_folder(output_dir) as staging, torchscript_deprecation_noted(FORMATS["torchscript"] in formats):
        source = (model or build_model)(config, seed)
        config = {**config, "top_k": top_k_of(source, config)}
        if source.examples:
            inputs = {f"input_{i}": tensor for i, tensor in enumerate(source.examples)}
        else:
            inputs = make_inputs(config["inputs"], seed)
        export_into(staging, source, inputs, config, formats, seed)
    print(f"Saved {', '.join(sorted(path.name for path in output_dir.iterdir()))} in {output_dir}")
    if was_tuned:
        print(f"note: make tune's choice ({listing.TUNED_FILE}) was for the previous export; make tune chooses anew")


def export_into(
    folder: Path,
    source: Source,
    named_inputs: dict[str, torch.Tensor],
    config: dict,
    formats: list[Format],
    seed: int,
) -> None:
    """Export in each format, reload, check against eager (as the tutorial does), and write the model files, the
    reference input and each format's reference outputs into ``folder``."""
    settings = image_settings(config, source, named_inputs)
    names = class_names(config, source)

    device = devices.of_config(config)

    def describe(output_names: list[str]) -> dict[str, str]:
        info = ModelInfo(
            inputs=[(name, list(t.shape), dtype_name(t.dtype)) for name, t in named_inputs.items()],
            outputs=output_names,
            top_k=config["top_k"],
            torch=torch.__version__,
            dynamic_batch=bool(config.get("dynamic_batch")),
            precision=config.get("precision", "fp32"),
            device=str(device),
        )
        return extra_files(info, settings, names[0] if names else None)

    batch_inputs = second_batch(named_inputs, config, seed) if config.get("dynamic_batch") else None
    save_tensors(folder / "input.pt", named_inputs)
    if batch_inputs:
        save_tensors(folder / "input_batch.pt", batch_inputs)
    k = config["top_k"]
    fp32_outputs: dict[str, list[torch.Tensor]] = {}
    for model_format in formats:
        started = time.monotonic()
        exported = EXPORTERS[model_format.name](folder, source, named_inputs, config, describe)
        seconds = time.monotonic() - started
        # int8 is held to its gate against the eager fp32 model (relative alone: outputs below atol are no pass)
        check_config = {**config, "atol": 0.0, "rtol": int8_max_drift(config)} if model_format.int8 else config
        check = "int8 check" if model_format.int8 else "export check"
        eager_out, named = check_export(exported.eager or source.model, exported.model, named_inputs, check_config,
                                        check)  # fmt: skip
        exported_out = [tensor for _, tensor in named]
        if names and not source.detector:  # a detector's names are its labels', not a count of scores
            check_class_names(names, exported_out, config.get("labels"))
        if k > 0 and is_scores(eager_out[0]):
            if model_format == formats[0]:
                print(f"Python model top {k} results:\n  {top_k(eager_out[0], k)}")
            print(f"{model_format.title} model top {k} results:\n  {top_k(exported_out[0], k)}")
        on = f" on {exported.device}" if exported.device.is_gpu else ""
        shown = agreement(exported_out, eager_out, [name for name, _ in named], config["atol"])
        if model_format.int8:
            _, overlap = drift(exported_out, eager_out, k)
            shown += f", top-{k} overlap {overlap}/{k}" if k > 0 and is_scores(eager_out[0]) else ""
            shown += f", within the int8 gate (int8_max_drift {check_config['rtol']:g} of the largest |value|)"
        print(
            f"{check}{on}: PASS: {shown} between the eager{' fp32' if model_format.int8 else ''} and the "
            f"{exported.made_by} model "
            f"({model_format.model_file}, exported in {seconds:.1f} s)"
        )
        record(folder / model_format.expected(), named, config)  # what C++ must reproduce from this very file
        fp32_outputs[model_format.name] = exported_out
        if batch_inputs:
            check_second_batch(folder / model_format.expected(batch=True), exported.eager or source.model,
                               exported.model, batch_inputs, config, check_config)  # fmt: skip
    if config.get("precision") == "bf16":
        record_bf16(folder, named_inputs, fp32_outputs["torchscript"], config)
    if settings:
        print(f"image preprocessing (ts-infer --image, predict.py): {settings.describe()}")
    if names:
        print(f"class names: {len(names[0])} from {names[1]} ({', '.join(names[0][:3])}, ...)")
    listing.write(
        folder,
        [
            listing.Entry(
                f, f.model_file, f.expected(), f.expected(batch=True) if batch_inputs else None,
                "cpu" if f.any_device else device.type,
            )
            for f in formats
        ],
    )  # fmt: skip
    if device.is_gpu and FORMATS["torchscript"] in formats:
        record_gpu_reference(folder, device)


def record_gpu_reference(folder: Path, device: devices.Device) -> None:
    """model.pt's reference outputs on the project's GPU, where this machine has it (else make verify DEVICE=cuda
    records them on a machine that does)."""
    try:
        reference.record(folder, device)
    except devices.DeviceError as err:
        print(f"note: no GPU reference of model.pt yet: {err}; make verify DEVICE={device} records it where the GPU is")


def run_exported(exported: Any, named_inputs: dict[str, torch.Tensor], check: str) -> list[tuple[str, torch.Tensor]]:
    """The exported model's outputs on the inputs, named; an ExportError starting with ``check`` if it fails."""
    with torch.no_grad():
        try:
            return named_outputs(exported(*named_inputs.values()))
        except RuntimeError as err:
            raise ExportError(f"{check}: the exported model fails ({cause_of(err)})") from err


def check_export(
    eager: Any, exported: Any, named_inputs: dict[str, torch.Tensor], config: dict, check: str
) -> tuple[list[torch.Tensor], list[tuple[str, torch.Tensor]]]:
    """Run the ``eager`` and the exported model on the inputs; unless they agree (allclose, same top-k), raise an
    ExportError that starts with ``check``. Returns the eager outputs and the exported ones, named."""
    with torch.no_grad():
        try:
            eager_out = flatten(eager(*named_inputs.values()))
        except RuntimeError as err:
            raise ExportError(f"{check}: the exported model fails ({cause_of(err)})") from err
    named = run_exported(exported, named_inputs, check)
    problem = compare([tensor for _, tensor in named], eager_out, config["atol"], config["rtol"], config["top_k"])
    if problem:
        raise ExportError(f"{check}: the exported model disagrees with the eager one: {problem}")
    return eager_out, named


def record(file: Path, outputs: list[tuple[str, torch.Tensor]], config: dict) -> None:
    """Reference outputs: what C++ must reproduce from the reference input, within the tolerances they record."""
    save_tensors(file, dict(outputs), atol=config["atol"], rtol=config["rtol"], top_k=config["top_k"])


def record_bf16(folder: Path, named_inputs: dict[str, torch.Tensor], fp32: list[torch.Tensor], config: dict) -> None:
    """expected_bf16.pt: model.pt's outputs in bf16 as torch_deploy::Model computes them (frozen, fused by oneDNN
    Graph after the profiling run), which C++ in bf16 must reproduce. The tolerance is measured: the difference between
    those outputs and the same model's first, not yet fused, run (two correct bf16 computations differ by this much),
    and at least one bf16 step at the outputs' scale. The drift from fp32 (``fp32``: model.pt's outputs) is printed
    and recorded beside it."""
    k = config["top_k"]
    try:
        profiling_run, named = run_in_bf16(folder / FORMATS["torchscript"].model_file, list(named_inputs.values()))
    except RuntimeError as err:
        raise ExportError(
            f'precision bf16: model.pt does not run in bf16 ({cause_of(err)}); set "precision" to "fp32" in deploy.json'
        ) from err
    outputs = [tensor for _, tensor in named]
    floating = [(t, first) for t, first in zip(outputs, profiling_run, strict=True) if t.is_floating_point()]
    spread = max_abs_diff([t for t, _ in floating], [first for _, first in floating])  # the others compare exactly
    scale = max((t.abs().max().item() for t, _ in floating if t.numel()), default=0.0)
    step = torch.finfo(torch.bfloat16).eps * 2.0 ** math.floor(math.log2(scale)) if scale > 0 else 0.0
    atol = max(spread, step)
    drift_diff, overlap = drift(outputs, fp32, k)
    shown = f", top-{k} overlap {overlap}/{k}" if k > 0 and is_scores(outputs[0]) else ""
    cpu = "native on this CPU" if native_bf16() else "emulated on this CPU, which has neither AVX512-BF16 nor AMX"
    print(
        f"bf16 check: model.pt in bf16, fused against its first run: max abs diff {spread:.3e}, so C++ in bf16 is held "
        f"to atol {atol:.3e} (that, or one bf16 step at the outputs' scale {scale:.3g}); drift from fp32: max abs "
        f"diff {drift_diff:.3e}{shown} ({cpu})"
    )
    save_tensors(
        folder / BF16_EXPECTED,
        dict(named),
        atol=atol,
        rtol=config["rtol"],
        top_k=k,
        bf16=1,
        drift_max_abs_diff=drift_diff,
        drift_top_k_overlap=overlap,
    )


def second_batch(inputs: dict[str, torch.Tensor], config: dict, seed: int) -> dict[str, torch.Tensor]:
    """The reference inputs at one more row (batch size + 1): new random rows for deploy.json's inputs, the first
    row repeated for a factory's example inputs."""
    if list(inputs) == [spec["name"] for spec in config["inputs"]]:
        specs = [{**spec, "shape": [spec["shape"][0] + 1, *spec["shape"][1:]]} for spec in config["inputs"]]
        return make_inputs(specs, seed + 1)
    return {name: torch.cat([tensor, tensor[:1]]) for name, tensor in inputs.items()}


def check_second_batch(
    file: Path, eager: Any, exported: Any, inputs: dict[str, torch.Tensor], config: dict, check_config: dict
) -> None:
    """dynamic_batch: the exported model must agree with the ``eager`` one at a second batch size too, within
    ``check_config``'s tolerances (a trace can bake the batch size in); its outputs there become the reference outputs
    ``file``, with ``config``'s."""
    batch = next(iter(inputs.values())).shape[0]
    eager_out, named = check_export(eager, exported, inputs, check_config, f"export check at batch {batch}")
    shown = agreement([tensor for _, tensor in named], eager_out, [name for name, _ in named], config["atol"])
    print(f"export check at batch {batch}: PASS: {shown}")
    record(file, named, config)


def check_output_dir(output_dir: Path) -> None:
    """The artifacts folder is replaced as a whole: it must be export.py's own (new, empty, holding only artifacts,
    or the link into .artifacts/ that an older runtime made); anything else is the user's and is not touched."""
    if output_dir.is_symlink() or not output_dir.exists():
        return
    if not output_dir.is_dir():
        raise ExportError(f"{output_dir}: is a file, not a folder for the artifacts; move it, or give --output-dir")
    # (a ".<name>.partial" is a reference file torch_deploy.reference did not finish writing)
    others = sorted(
        path.name
        for path in output_dir.iterdir()
        if path.name not in ARTIFACTS and not (path.name.startswith(".") and path.name.endswith(".partial"))
    )
    if others:
        raise ExportError(
            f"{output_dir}: holds files export.py did not write ({', '.join(others[:3])}); move them out (export.py "
            "replaces the whole folder), or give --output-dir a new or empty folder"
        )


def project_hook(project: Path) -> BuildModel:
    """The build_model() of the project's export.py (the user's way to load the model), else the runtime's."""
    file = project / "export.py"
    if not file.is_file():
        return build_model
    module_spec = importlib.util.spec_from_file_location("_project_export", file)
    assert module_spec and module_spec.loader
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    hook = getattr(module, "build_model", None)
    return hook if callable(hook) else build_model


def main(argv: list[str] | None = None, model: BuildModel | None = None, project: Path | None = None) -> int:
    """The command line of the project's export.py (``model``: its build_model(); ``project``: its folder, else the
    working one, whose export.py's build_model() is then used)."""
    folder = Path.cwd() if project is None else Path(project)
    parser = argparse.ArgumentParser(description="Export the model to TorchScript and record reference data.")
    parser.add_argument("--seed", type=int, help="seed for the random weights and input (default: deploy.json)")
    parser.add_argument("--output-dir", type=Path, default=folder / "artifacts", help="where to write")
    args = parser.parse_args(argv)
    try:
        # absolute, but not resolved: a link named as the output folder (an older project's artifacts) is replaced
        output_dir = Path(os.path.abspath(args.output_dir))
        export(load_config(folder), output_dir, args.seed, model or project_hook(folder))
    except DeployError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
