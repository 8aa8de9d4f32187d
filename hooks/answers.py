"""The template's answers: which there are, the rules each must follow, and the project's record of what made it
(standard library only).

The answers themselves are defined in cookiecutter.json alone; ``questions()`` reads them there for ``tsgen new``'s
flags and for ``tsgen update``. This is the single home of answer validation: the ``pre_gen_project`` hook runs it
before anything is written, and ``tsgen new`` runs it on its flags before calling cookiecutter, so both front doors
refuse the same answers with the same words. The ``post_gen_project`` hook writes the record (``record()``).
(cookiecutter only runs files named after a hook, so this module is never run as one.)
"""

from __future__ import annotations

import hashlib
import json
import keyword
import math
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

# This file lives in the template's hooks/ folder, wherever the template is (a checkout, a cookiecutter clone, the
# wheel's tsgen/template/).
TEMPLATE_DIR = Path(__file__).resolve().parent.parent
PROJECT_DIR_NAME = "{{cookiecutter.project_slug}}"
RECORD_FILE = ".cookiecutter.json"
# The formats answer and the model files it exports (export.py's FORMATS names them in deploy.json).
FORMATS = {
    "torchscript": ["torchscript"],
    "aoti": ["aoti"],
    "both": ["torchscript", "aoti"],
    "int8": ["torchscript", "aoti_int8"],
}
WEIGHT_FILE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
_FACTORY_END = re.compile(r":[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_DIMS = 8
MAX_INPUTS = 16
YES_NO = {"true", "false", "1", "0", "yes", "no", "y", "n", "on", "off"}
DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int8", "uint8", "bool")
MAX_SLUG = 64
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
PREPROCESS_KEYS = ("resize", "mean", "std", "interpolation")
LABEL_FILE_SUFFIXES = (".txt",)

_SLUG = re.compile(r"[a-z_][a-z0-9_]*\Z")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# C++ keywords (and alternative tokens) that a slug could collide with when used as an identifier.
_CXX_KEYWORDS = frozenset(
    """alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t char32_t class
    compl concept const consteval constexpr constinit const_cast continue co_await co_return co_yield decltype
    default delete do double dynamic_cast else enum explicit export extern false float for friend goto if inline
    int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public register
    reinterpret_cast requires return short signed sizeof static static_assert static_cast struct switch template
    this thread_local throw true try typedef typeid typename union unsigned using virtual void volatile wchar_t
    while xor xor_eq""".split()
)


@dataclass(frozen=True)
class Question:
    """One answer of the template, defined once in cookiecutter.json: its key, default and ``__prompts__`` text.

    cookiecutter asks the keys without a leading underscore (the interactive door's few questions); the others are
    private, set by ``key=value``, by a replay or a config file's default_context, and by ``tsgen new``'s flags.
    """

    key: str
    default: object
    prompt: object  # the __prompts__ entry: a text, or for a choice {"__prompt__": text, option: text, ...}
    first: bool = False

    @property
    def name(self) -> str:
        """The answer's name everywhere but cookiecutter's context: ``_atol`` -> ``atol``."""
        return self.key.lstrip("_")

    @property
    def choices(self) -> list[str] | None:
        """A cookiecutter choice (a list), or a private answer whose prompt lists its options."""
        if isinstance(self.default, list):
            return [str(choice) for choice in self.default]
        if isinstance(self.prompt, dict):
            return [option for option in self.prompt if option != "__prompt__"]
        return None

    @property
    def default_value(self) -> object:
        return self.default[0] if isinstance(self.default, list) else self.default

    @property
    def flag(self) -> str:
        """``tsgen new``'s flag: the first answer is the NAME argument; a yes/no answer that defaults to yes is
        turned off by ``--no-<name>``; every other answer is ``--<name>``."""
        if self.first:
            return "NAME"
        dashed = self.name.replace("_", "-")
        return f"--no-{dashed}" if self.default is True else f"--{dashed}"

    @property
    def help(self) -> str:
        if isinstance(self.prompt, dict):
            options = "; ".join(f"{key}: {text}" for key, text in self.prompt.items() if key != "__prompt__")
            return f"{self.prompt.get('__prompt__', self.name)} ({options})"
        return str(self.prompt)


def questions(template_dir: Path = TEMPLATE_DIR) -> list[Question]:
    """Every answer of the template at ``template_dir``, in cookiecutter.json's order: the keys ``__prompts__``
    describes (cookiecutter's own settings such as _copy_without_render have no prompt)."""
    data = json.loads((template_dir / "cookiecutter.json").read_text(encoding="utf-8"))
    prompts = data.get("__prompts__", {})
    keys = [key for key in data if key in prompts]
    return [Question(key, data[key], prompts[key], first=index == 0) for index, key in enumerate(keys)]


def question(name: str) -> Question:
    return next(item for item in questions() if item.name == name)


def by_name(context: dict, template_dir: Path = TEMPLATE_DIR) -> dict[str, object]:
    """The answers of a cookiecutter context (or a record), keyed by name: ``{"atol": "1e-4", ...}``."""
    known = {item.name for item in questions(template_dir)}
    return {key.lstrip("_"): value for key, value in context.items() if key.lstrip("_") in known}


def by_key(context: dict, template_dir: Path = TEMPLATE_DIR) -> dict[str, object]:
    """The answers of a cookiecutter context, keyed as cookiecutter.json keys them (what extra_context takes)."""
    return {item.key: context[item.key] for item in questions(template_dir) if item.key in context}


EXPORT_METHODS = tuple(question("export_method").choices or ())
PRECISIONS = tuple(question("precision").choices or ())
DEVICES = tuple(question("device").choices or ())


@dataclass
class AnswerError(Exception):
    """Raised for an answer the template cannot use; str() is the one line users see."""

    answer: str
    value: object
    why: str
    fix: str

    def __str__(self) -> str:
        return f"ERROR: {self.answer}={self.value!r}: {self.why}; {self.fix}"


def _get(answers: dict, name: str, default: object = "") -> object:
    """An answer by name, whether the context keys it as asked (``model``) or private (``_atol``)."""
    return answers.get(name, answers.get(f"_{name}", default))


def _text(answers: dict, name: str) -> str:
    value = _get(answers, name)
    return value if isinstance(value, str) else str(value)


def _integer(answers: dict, name: str, minimum: int, fix: str) -> int:
    text = _text(answers, name).strip()
    if not re.fullmatch(r"[+]?\d+", text) or int(text) < minimum:
        raise AnswerError(name, _get(answers, name), f"not a whole number >= {minimum}", fix)
    return int(text)


def _tolerance(answers: dict, name: str) -> float:
    text = _text(answers, name).strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise AnswerError(name, _get(answers, name), "not a finite number >= 0", "give a tolerance such as 1e-4")
    return value


def _single_line(answers: dict, name: str, fix: str) -> str:
    text = _text(answers, name)
    if _CONTROL.search(text):
        raise AnswerError(name, text, "contains a newline or control character", fix)
    return text


def check_literal(name: str, value: object) -> None:
    """A value given on a command line must not hold Jinja syntax: cookiecutter would evaluate it as a template
    (and Jinja can reach Python objects), so ``{{ ... }}`` in an answer is refused rather than run."""
    if isinstance(value, str) and any(mark in value for mark in ("{{", "{%", "{#")):
        raise AnswerError(name, value, "contains template syntax ({{, {% or {#)", "remove it; answers are plain text")


def check_slug(slug: str) -> None:
    """The slug names the project folder and the CMake project, and must be an identifier in every language."""
    fix = "use lower-case letters, digits and underscores, starting with a letter (e.g. my_model)"
    if not slug:
        raise AnswerError("project_slug", slug, "is empty", fix)
    if len(slug) > MAX_SLUG:
        raise AnswerError("project_slug", slug, f"is longer than {MAX_SLUG} characters", "choose a shorter name")
    if not _SLUG.match(slug):
        raise AnswerError("project_slug", slug, "is not a valid C++/CMake/Python identifier", fix)
    if slug in _CXX_KEYWORDS or keyword.iskeyword(slug) or slug in {"test", "all", "clean", "install", "help"}:
        raise AnswerError(
            "project_slug", slug, "is a reserved word in C++, Python or CMake", "add a suffix such as _deploy"
        )


def parse_shape(text: str) -> list[int]:
    """``"1,3,224,224"`` -> ``[1, 3, 224, 224]``; every dimension a positive integer."""
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or not all(re.fullmatch(r"\d+", part) and int(part) > 0 for part in parts):
        raise AnswerError(
            "input_shape", text, "is not a comma-separated list of positive integers", "give e.g. 1,3,224,224"
        )
    if len(parts) > MAX_DIMS:
        raise AnswerError("input_shape", text, f"has more than {MAX_DIMS} dimensions", "give the model's input shape")
    return [int(part) for part in parts]


def parse_inputs(text: str, input_shape: str) -> list[tuple[str, list[int], str]]:
    """``"ids:1,16:int64;mask:1,16:bool"`` -> [(name, shape, dtype), ...]; empty: one float32 ``input``."""
    if not text.strip():
        return [("input", parse_shape(input_shape), "float32")]
    fix = "give name:shape:dtype items separated by ; e.g. ids:1,16:int64;mask:1,16:bool"
    inputs = []
    for item in text.split(";"):
        parts = [part.strip() for part in item.split(":")]
        if len(parts) != 3 or not _IDENTIFIER.match(parts[0]):
            raise AnswerError("inputs", text, f"{item.strip()!r} is not name:shape:dtype", fix)
        name, dims, dtype = parts
        if dtype not in DTYPES:
            raise AnswerError("inputs", text, f"{dtype!r} is not a dtype", f"use one of: {', '.join(DTYPES)}")
        try:
            shape = parse_shape(dims)
        except AnswerError as err:
            raise AnswerError("inputs", text, f"the shape of {name} {err.why}", fix) from None
        inputs.append((name, shape, dtype))
    names = [name for name, _, _ in inputs]
    if len(set(names)) != len(names) or len(names) > MAX_INPUTS:
        raise AnswerError("inputs", text, f"needs up to {MAX_INPUTS} inputs with distinct names", fix)
    return inputs


def image_input(inputs: list[tuple[str, list[int], str]]) -> tuple[str, list[int], str] | None:
    """The model's image input, if it has one: its only input, shaped (batch, 1 or 3 channels, height, width), of a
    floating dtype. ``ts-infer --image`` fills it. (export.py applies the same rule to the inputs it really uses.)"""
    if len(inputs) != 1:
        return None
    _, shape, dtype = inputs[0]
    floating = dtype in ("float32", "float16", "bfloat16", "float64")
    return inputs[0] if len(shape) == 4 and shape[1] in (1, 3) and floating else None


def _numbers(text: str, count: int, positive: bool) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        return []
    fits = len(values) == count and all(math.isfinite(v) and (v > 0 if positive else True) for v in values)
    return values if fits else []


def parse_preprocess(text: str, inputs: list[tuple[str, list[int], str]]) -> dict[str, object] | None:
    """The image preprocessing of ``ts-infer --image``: ``auto`` (every value from the torchvision weights'
    transforms, else ImageNet's), ``none`` (no image support), or some of
    ``resize=256 mean=0.485,0.456,0.406 std=0.229,0.224,0.225 interpolation=bilinear`` (the rest: auto).
    The crop is the image input's height and width. Returns the values given ({} for auto), None for none."""
    spec = text.strip()
    if spec == "none":
        return None
    if spec in ("", "auto"):
        return {}
    image = image_input(inputs)
    fix = "give e.g. resize=256 mean=0.485,0.456,0.406 std=0.229,0.224,0.225 interpolation=bilinear, or auto"
    if image is None:
        raise AnswerError(
            "preprocess",
            text,
            "needs a model with one image input shaped batch,1 or 3,height,width (float), which the inputs are not",
            "use preprocess auto or none",
        )
    _, (_, channels, height, width), _ = image
    given: dict[str, object] = {}
    for pair in spec.split():
        key, sep, value = pair.partition("=")
        if not sep or key not in PREPROCESS_KEYS:
            raise AnswerError("preprocess", text, f"{pair!r} is not one of {', '.join(PREPROCESS_KEYS)} =value", fix)
        if key in given:
            raise AnswerError("preprocess", text, f"gives {key} twice", fix)
        if key == "resize":
            if not re.fullmatch(r"\d+", value) or int(value) < max(height, width):
                raise AnswerError(
                    "preprocess",
                    text,
                    f"resize={value} is not a whole number >= the crop {height}x{width} (the input's height and width)",
                    f"give the shorter side to resize to before the center crop, e.g. resize={round(max(height, width) * 256 / 224)}",
                )
            given[key] = int(value)
        elif key == "interpolation":
            if value not in INTERPOLATIONS:
                raise AnswerError(
                    "preprocess", text, f"interpolation={value} is unknown", f"use one of: {', '.join(INTERPOLATIONS)}"
                )
            given[key] = value
        else:
            numbers = _numbers(value, channels, positive=key == "std")
            if not numbers:
                raise AnswerError(
                    "preprocess",
                    text,
                    f"{key}={value} is not {channels} comma-separated {'numbers > 0' if key == 'std' else 'numbers'} "
                    f"(one per channel of the {channels}-channel input)",
                    fix,
                )
            given[key] = numbers
    return given


def is_labels_file(labels: str) -> bool:
    """A labels answer that names a file (rather than auto or none)."""
    return labels not in ("", "auto", "none")


def check_labels(labels: str, bases: list[Path]) -> None:
    """auto (the torchvision weights' category names), none, or a text file with one class name per line."""
    if not is_labels_file(labels):
        return
    if not labels.endswith(LABEL_FILE_SUFFIXES):
        raise AnswerError(
            "labels", labels, "is neither auto, none nor a .txt file", "give a text file with one class name per line"
        )
    file = resolve_file("labels", labels, labels, bases)
    try:
        names = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise AnswerError("labels", labels, f"cannot be read as UTF-8 text ({err})", "save it as UTF-8 text") from None
    if not any(name.strip() for name in names):
        raise AnswerError("labels", labels, "holds no class names", "write one class name per line")


def model_file_bases(output_dir: str | None = None) -> list[Path]:
    """Where a relative model file path may be meant from: the user's shell folder, then the output folder."""
    bases = [Path(os.environ["PWD"])] if os.environ.get("PWD") else []
    bases.append(Path.cwd())
    if output_dir:
        bases.append(Path(output_dir))
    return bases


def resolve_file(answer: str, value: str, path_text: str, bases: list[Path]) -> Path:
    """The file an answer names (absolute, or relative to one of ``bases``), made absolute."""
    file = Path(path_text).expanduser()
    if _CONTROL.search(path_text):
        raise AnswerError(answer, value, "contains a newline or control character", "give the file's plain path")
    for candidate in [file] if file.is_absolute() else [base / file for base in bases]:
        if candidate.is_file():
            return candidate.absolute()  # not resolved: a symbolic link keeps the name the user gave
    raise AnswerError(
        answer,
        value,
        f"{file} does not exist",
        "give the file's path (absolute, or relative to where you run the generator)",
    )


def resolve_model_file(spec: str, bases: list[Path]) -> Path:
    """The user's model file named by ``path/to/file.py:factory`` or ``path/to/model.pt``, made absolute."""
    path_text = spec.rpartition(":")[0] if _FACTORY_END.search(spec) else spec
    return resolve_file("model", spec, path_text, bases)


def is_weights_file(weights: str) -> bool:
    """A weights answer that names a file (rather than none, DEFAULT or a torchvision weights name)."""
    return "/" in weights or "\\" in weights or weights.endswith(WEIGHT_FILE_SUFFIXES)


def project_files(answers: dict, bases: list[Path]) -> list[Path]:
    """The user's files the project needs, which the post_gen hook copies into its models/ folder."""
    files = []
    spec = _text(answers, "model")
    if not spec.startswith("torchvision:"):
        files.append(resolve_model_file(spec, bases))
    weights = _text(answers, "weights")
    if is_weights_file(weights):
        files.append(resolve_file("weights", weights, weights, bases))
    labels = _text(answers, "labels").strip()  # as validate() checks it
    if is_labels_file(labels):
        files.append(resolve_file("labels", labels, labels, bases))
    return files


def check_model(spec: str, bases: list[Path]) -> None:
    """``torchvision:<arch>``, ``path/to/file.py:factory`` or ``path/to/model.pt`` (already TorchScript)."""
    if spec.startswith("torchvision:"):
        arch = spec.split(":", 1)[1]
        if not re.fullmatch(r"[a-z][a-z0-9_]*", arch):
            raise AnswerError(
                "model", spec, f"{arch!r} is not a torchvision model name", "give e.g. torchvision:resnet18"
            )
        return
    if spec.endswith(".pt"):
        resolve_model_file(spec, bases)
        return
    file, sep, factory = spec.rpartition(":")
    if not sep or not file.endswith(".py") or not _IDENTIFIER.match(factory):
        raise AnswerError(
            "model",
            spec,
            "is neither torchvision:<arch>, path/to/file.py:factory nor path/to/model.pt",
            "give e.g. torchvision:resnet18, models/net.py:make_model or exported/model.pt",
        )
    resolve_model_file(spec, bases)


def check_weights(weights: str, model: str, bases: list[Path]) -> None:
    """none, DEFAULT, a torchvision weights name (IMAGENET1K_V1 or ResNet18_Weights.IMAGENET1K_V1), or a file."""
    if weights == "none":
        return
    if not model.startswith("torchvision:"):
        raise AnswerError(
            "weights", weights, "applies to torchvision models only", "load weights inside your factory; weights=none"
        )
    if is_weights_file(weights):
        resolve_file("weights", weights, weights, bases)
    elif not re.fullmatch(r"([A-Za-z0-9_]+_Weights\.)?[A-Z][A-Z0-9_]*", weights):
        raise AnswerError(
            "weights",
            weights,
            "is neither none, DEFAULT, a torchvision weights name nor a .pt/.pth file",
            "give e.g. none, DEFAULT, IMAGENET1K_V1 or path/to/weights.pth",
        )


def validate(answers: dict, bases: list[Path] | None = None) -> None:
    """Raise AnswerError for the first answer the template cannot use."""
    for name, value in by_name(answers).items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:  # undecodable bytes on a command line arrive as lone surrogates
                raise AnswerError(name, value, "is not valid UTF-8 text", "retype it in UTF-8") from None
    _single_line(answers, "project_name", "give a one-line project name")
    if not _text(answers, "project_name").strip():
        raise AnswerError(
            "project_name", _get(answers, "project_name"), "is empty", "give a project name, e.g. my-model"
        )
    check_slug(_text(answers, "project_slug"))
    _single_line(answers, "description", "give a one-line description")
    bases = model_file_bases() if bases is None else bases
    check_model(_text(answers, "model"), bases)
    check_weights(_text(answers, "weights") or "none", _text(answers, "model"), bases)
    method = _text(answers, "export_method")
    if method not in EXPORT_METHODS:
        raise AnswerError(
            "export_method", method, "is not an export method", f"use one of: {', '.join(EXPORT_METHODS)}"
        )
    formats = _text(answers, "formats") or "torchscript"
    if formats not in FORMATS:
        raise AnswerError("formats", formats, "is not a format", f"use one of: {', '.join(FORMATS)}")
    precision = _text(answers, "precision") or "fp32"
    if precision not in PRECISIONS:
        raise AnswerError("precision", precision, "is not a precision", f"use one of: {', '.join(PRECISIONS)}")
    if precision == "bf16" and formats == "aoti":
        raise AnswerError(
            "precision",
            precision,
            "runs the TorchScript model, and formats aoti exports none (a package runs as compiled, in fp32)",
            "use formats torchscript or both, or precision fp32",
        )
    device = _text(answers, "device") or "cpu"
    if device not in DEVICES:
        raise AnswerError("device", device, "is not a device", f"use one of: {', '.join(DEVICES)}")
    if formats == "int8" and device != "cpu":
        raise AnswerError(
            "formats",
            formats,
            f"quantizes for the CPU (oneDNN's x86 int8 kernels), and device {device} runs on a GPU",
            "use formats torchscript, aoti or both, or device cpu",
        )
    if formats != "torchscript" and _text(answers, "model").endswith(".pt"):
        raise AnswerError(
            "formats",
            formats,
            "needs the Python model: torch.export cannot export a TorchScript file",
            "use formats torchscript, or give the model as path/to/file.py:factory",
        )
    parse_shape(_text(answers, "input_shape"))
    inputs = parse_inputs(_text(answers, "inputs"), _text(answers, "input_shape"))
    parse_preprocess(_text(answers, "preprocess"), inputs)
    check_labels(_text(answers, "labels").strip(), bases)
    _integer(answers, "top_k", 0, "give the number of classes to compare, or 0")
    _tolerance(answers, "atol")
    _tolerance(answers, "rtol")
    _integer(answers, "seed", 0, "give a whole number, e.g. 0")
    _single_line(answers, "python", "give the interpreter's plain path")
    _single_line(answers, "libtorch", "give the libtorch folder's plain path")
    for name, default in (("dynamic_batch", False), ("first_build", True), ("vendor", False)):
        if str(_get(answers, name, default)).lower() not in YES_NO:
            raise AnswerError(name, _get(answers, name), "is not yes or no", "answer yes or no")


def in_models(path_text: str) -> str:
    """Where a user's file lives inside the project: the post_gen hook copies it into models/ under its own name
    ("path/to/net.py:make" -> "models/net.py:make", "/data/r18.pth" -> "models/r18.pth")."""
    return "models/" + path_text.replace("\\", "/").split("/")[-1]


def deploy_config(answers: dict) -> dict[str, object]:
    """deploy.json, the settings export.py reads, derived once from valid answers (the post_gen hook writes it)."""
    model = _text(answers, "model")
    weights = _text(answers, "weights").strip() or "none"
    inputs = parse_inputs(_text(answers, "inputs"), _text(answers, "input_shape"))
    preprocess = parse_preprocess(_text(answers, "preprocess"), inputs)
    labels = _text(answers, "labels").strip()
    return {
        "model": model if model.startswith("torchvision:") else in_models(model),
        "weights": in_models(weights) if is_weights_file(weights) else weights,
        "export_method": _text(answers, "export_method"),
        "formats": FORMATS[_text(answers, "formats") or "torchscript"],
        "precision": _text(answers, "precision") or "fp32",
        "device": _text(answers, "device") or "cpu",
        "inputs": [{"name": name, "shape": shape, "dtype": dtype} for name, shape, dtype in inputs],
        "dynamic_batch": is_yes(_get(answers, "dynamic_batch", False)),
        "seed": int(_text(answers, "seed").strip()),
        "top_k": int(_text(answers, "top_k").strip()),
        "preprocess": None if preprocess is None else {key: preprocess.get(key, "auto") for key in PREPROCESS_KEYS},
        "labels": None if labels == "none" else in_models(labels) if is_labels_file(labels) else "auto",
        "atol": float(_text(answers, "atol").strip()),
        "rtol": float(_text(answers, "rtol").strip()),
    }


RUNTIME_DIR = (
    Path("runtime") / "torch_deploy"
)  # the runtime, in the template (and vendored as third_party/torch_deploy)
RUNTIME_DISTRIBUTION = "tsgen-runtime"
VENDORED_RUNTIME = Path("third_party") / "torch_deploy"


def runtime_version(template_dir: Path = TEMPLATE_DIR) -> str:
    """The version of the runtime beside the template: what its projects pin (read from its __init__.py)."""
    text = (template_dir / RUNTIME_DIR / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if not match:
        raise RuntimeError(f"{template_dir / RUNTIME_DIR / '__init__.py'} has no __version__")
    return match.group(1)


def requirements_txt(model_packages: list[str], version: str, vendored: bool) -> str:
    """requirements.txt: torch, what deploy.json's model needs (``model_packages``, from the runtime's
    discover.model_packages, which make requirements checks again after deploy.json changes), the runtime pinned at
    ``version`` (unless the project carries it), and what the tests use."""
    lines = [
        "# Python side: export.py and the tests. The C++ side uses the libtorch inside this torch package by default.",
        "torch>=2.1",
        *model_packages,
    ]
    if not vendored:
        lines.append(
            f"{RUNTIME_DISTRIBUTION}=={version}  # the torch_deploy runtime: its library, CMake package and commands"
        )
    lines += ["pillow  # the image tests decode images with it", "pytest"]
    return "\n".join(lines) + "\n"


def deploy_json(config: dict[str, object]) -> str:
    """deploy.json's text: one setting per line, one input per line, for people to edit."""
    lines = []
    for key, value in config.items():
        if key == "inputs" and isinstance(value, list):
            items = ",\n".join(f"    {json.dumps(item, ensure_ascii=False)}" for item in value)
            lines.append(f'  "inputs": [\n{items}\n  ]')
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def is_yes(value: object) -> bool:
    """cookiecutter booleans arrive as bools, or as strings when given on a command line."""
    return str(value).strip().lower() in {"true", "1", "yes", "y", "on"}


# What a copy of the template may hold besides the template: caches that Python, pip and ruff leave behind.
_CACHES = {"__pycache__", ".ruff_cache", ".mypy_cache", ".pytest_cache"}


def template_files(template_dir: Path = TEMPLATE_DIR) -> list[Path]:
    """The files that make the template (cookiecutter.json, hooks/, the Jinja partials of templates/, the project
    folder, the runtime it pins or vendors), relative, sorted."""
    files = [Path("cookiecutter.json")]
    for folder in ("hooks", "templates", PROJECT_DIR_NAME, str(RUNTIME_DIR)):
        files += [path.relative_to(template_dir) for path in (template_dir / folder).rglob("*") if path.is_file()]
    return sorted(
        (path for path in files if not _CACHES.intersection(path.parts) and path.suffix != ".pyc"),
        key=Path.as_posix,
    )


def template_digest(template_dir: Path = TEMPLATE_DIR) -> str:
    """The template's fingerprint: every file's path and bytes. Two copies of one template version agree wherever
    they are (a checkout, a cookiecutter clone, the wheel), and any change to the template changes it."""
    digest = hashlib.sha256()
    for relative in template_files(template_dir):
        content = (template_dir / relative).read_bytes()
        digest.update(f"{relative.as_posix()}\0{len(content)}\0".encode())
        digest.update(content)
    return f"sha256:{digest.hexdigest()}"


def template_version(template_dir: Path = TEMPLATE_DIR) -> str:
    """tsgen's version beside the template: the checkout's generator/tsgen, or the wheel's tsgen package ('' when
    the template was copied away from both)."""
    for init in (template_dir / "generator" / "tsgen" / "__init__.py", template_dir.parent / "__init__.py"):
        found = (
            re.search(r'^__version__ = "([^"]+)"', init.read_text(encoding="utf-8"), re.M) if init.is_file() else None
        )
        if found:
            return found.group(1)
    return ""


def template_commit(template_dir: Path = TEMPLATE_DIR) -> str | None:
    """The commit of a template that is a git checkout (cookiecutter's clone of a git URL, or a local one)."""
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=template_dir, capture_output=True, text=True
        )
    except OSError:
        return None
    lines = top.stdout.split()
    if top.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != template_dir.resolve():
        return None
    return lines[1]


def record(context: dict) -> dict[str, object]:
    """The project's record of what made it (RECORD_FILE): every answer by its cookiecutter key, in cookiecutter's
    replay format, and under "tsgen" the template's version, source, commit and fingerprint for ``tsgen update``."""
    template_dir = Path(context.get("_repo_dir") or TEMPLATE_DIR)
    return {
        "cookiecutter": {item.key: _get(context, item.name, item.default) for item in questions(template_dir)},
        "tsgen": {
            "version": template_version(template_dir),
            # tsgen update renders from its own clone of a git template, and names the source the user gave
            "template": os.environ.get("TSGEN_TEMPLATE_SOURCE") or str(context.get("_template") or template_dir),
            "commit": template_commit(template_dir),
            "digest": template_digest(template_dir),
        },
    }


def read_record(project: Path) -> dict | None:
    """A project's record, or None when it has none that tsgen wrote."""
    try:
        data = json.loads((project / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and isinstance(data.get("cookiecutter"), dict) and isinstance(data.get("tsgen"), dict)
    return data if ok and "digest" in data["tsgen"] else None


def template_label(info: dict) -> str:
    """A record's template in a few words: ``tsgen 0.2.0 (commit 1a2b3c4d, sha256:5e6f7a8b)``."""
    parts = [f"commit {str(info['commit'])[:8]}"] if info.get("commit") else []
    parts.append(str(info.get("digest", ""))[:15])
    return f"tsgen {info.get('version') or '(unknown version)'} ({', '.join(parts)})"
