"""Export the model to TorchScript and record the reference input and output that C++ must reproduce.

    python export.py                      # reads deploy.json, writes artifacts/
    python export.py --seed 7 --output-dir /tmp/other

Steps: build the model named in deploy.json, export it (torch.jit.script or trace), check that the exported
model computes what the eager one does (allclose, and the same top-k for classifiers, as the TorchScript
tutorial does), then save model.pt, input.pt and expected.pt. The tensor files are TorchScript modules whose
buffers are the tensors, so the C++ runner reads them with libtorch alone.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

try:
    import torch
except ImportError as missing:  # the first thing a fresh machine runs into: say it in one line
    raise SystemExit(
        f"ERROR: torch is not installed for {sys.executable}; pip install -r requirements.txt, "
        "or run make with PYTHON=/path/to/the/python/that/has/torch"
    ) from missing

PROJECT_DIR = Path(__file__).resolve().parent
CONFIG_FILE = PROJECT_DIR / "deploy.json"
ARTIFACTS = ("model.pt", "input.pt", "expected.pt")


class ExportError(Exception):
    """Raised for a problem the user can fix (bad model spec, failed check); main() prints it as one line."""


def load_config(path: Path = CONFIG_FILE) -> dict:
    """The project's answers: model spec, export method, input shape, seed and tolerances."""
    return json.loads(path.read_text(encoding="utf-8"))


@contextlib.contextmanager
def torchscript_deprecation_noted() -> Iterator[None]:
    """Collect torch.jit's deprecation warnings (one per call on torch 2.14) and report them in one line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    jit = [w for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning)) and "jit" in w.filename]
    for other in caught:
        if other not in jit:
            warnings.showwarning(other.message, other.category, other.filename, other.lineno)
    if jit:
        print(
            f"note: torch {torch.__version__} marks TorchScript as deprecated "
            f"({len(jit)} warning{'s' if len(jit) > 1 else ''} silenced); "
            "libtorch still loads and runs the exported model"
        )


def build_model(spec: str, seed: int) -> torch.nn.Module:
    """The eager model for ``spec``: ``torchvision:<arch>`` (seeded random weights) or ``file.py:factory``."""
    torch.manual_seed(seed)
    if spec.startswith("torchvision:"):
        arch = spec.split(":", 1)[1]
        try:
            import torchvision  # only torchvision models need it
        except ImportError as missing:
            raise ExportError(
                f"model={spec}: torchvision is not installed for {sys.executable}; pip install torchvision"
            ) from missing

        known = torchvision.models.list_models(module=torchvision.models)
        if arch not in known:
            raise ExportError(
                f"model={spec}: torchvision {torchvision.__version__} has no classification model {arch!r}; "
                f"pick one of: {', '.join(sorted(known)[:12])}, ..."
            )
        model = torchvision.models.get_model(arch, weights=None)
    else:
        file_name, _, factory_name = spec.rpartition(":")
        file = PROJECT_DIR / file_name
        if not file.is_file():
            raise ExportError(f"model={spec}: {file} does not exist; fix the model entry in deploy.json")
        module_spec = importlib.util.spec_from_file_location(file.stem, file)
        assert module_spec and module_spec.loader
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        factory = getattr(module, factory_name, None)
        if not callable(factory):
            raise ExportError(f"model={spec}: {file.name} defines no function {factory_name!r}")
        model = factory()
        if not isinstance(model, torch.nn.Module):
            raise ExportError(f"model={spec}: {factory_name}() returned {type(model).__name__}, not an nn.Module")
    return model.eval()


def make_input(shape: list[int], seed: int) -> torch.Tensor:
    """The reference input: uniform [0, 1) like the tutorial's dummy image, from its own seeded generator."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def export_model(model: torch.nn.Module, method: str, example: torch.Tensor) -> torch.jit.ScriptModule:
    """``torch.jit.script`` (keeps control flow) or ``torch.jit.trace`` (records one run on ``example``)."""
    if method == "script":
        return torch.jit.script(model)
    return torch.jit.trace(model, example)


def flatten(output: object) -> list[torch.Tensor]:
    """Every tensor of a model output, in the order the C++ runner sees them."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in flatten(item)]
    if isinstance(output, dict):
        return [t for item in output.values() for t in flatten(item)]
    raise ExportError(f"the model returned {type(output).__name__}; return tensors or tuples/lists/dicts of them")


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k highest softmax scores per row, as the tutorial computes them."""
    return torch.nn.functional.softmax(scores, dim=1).topk(min(k, scores.shape[1])).indices


def is_scores(tensor: torch.Tensor) -> bool:
    """A classifier's output: a 2-D floating tensor of per-class scores."""
    return tensor.dim() == 2 and tensor.is_floating_point()


def compare(actual: list[torch.Tensor], expected: list[torch.Tensor], atol: float, rtol: float, k: int) -> str | None:
    """None when ``actual`` matches ``expected`` (allclose, same top-k for scores), else why not."""
    if len(actual) != len(expected):
        return f"{len(actual)} output tensors, expected {len(expected)}"
    for a, e in zip(actual, expected, strict=True):
        if a.shape != e.shape:
            return f"output shape {tuple(a.shape)}, expected {tuple(e.shape)}"
    for a, e in zip(actual, expected, strict=True):
        if not torch.allclose(a.double(), e.double(), atol=atol, rtol=rtol):
            return f"max abs diff {max_abs_diff(actual, expected):.3e} exceeds atol {atol:g}, rtol {rtol:g}"
        if k > 0 and is_scores(a) and not torch.equal(top_k(a, k), top_k(e, k)):
            return f"top-{k} differs: {top_k(a, k).tolist()} vs {top_k(e, k).tolist()}"
    return None


def max_abs_diff(actual: list[torch.Tensor], expected: list[torch.Tensor]) -> float:
    """The largest absolute difference over all output tensors (of equal shapes)."""
    return max(
        ((a.double() - e.double()).abs().max().item() for a, e in zip(actual, expected, strict=True) if a.numel()),
        default=0.0,
    )


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], **numbers: float) -> None:
    """Write tensors (and a few numbers) as a TorchScript module that libtorch alone can read."""

    class TensorFile(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for name, tensor in tensors.items():
                self.register_buffer(name, tensor.detach().contiguous())
            for name, value in numbers.items():
                setattr(self, name, float(value))

    torch.jit.script(TensorFile()).save(str(path))


def load_tensors(path: Path) -> tuple[list[torch.Tensor], dict[str, float]]:
    """The tensors (in order) and numbers of a file written by save_tensors."""
    module = torch.jit.load(str(path))
    numbers = {name: float(getattr(module, name)) for name in ("atol", "rtol", "top_k") if hasattr(module, name)}
    return [tensor for _, tensor in module.named_buffers()], numbers


def export(config: dict, output_dir: Path, seed: int | None = None) -> None:
    """Build, export, check and save; on any failure nothing in ``output_dir`` is replaced."""
    seed = config["seed"] if seed is None else seed
    model = build_model(config["model"], seed)
    example = make_input(config["input_shape"], seed)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=output_dir.parent))
    try:
        with torchscript_deprecation_noted():
            export_into(staging, model, example, config)
        output_dir.mkdir(parents=True, exist_ok=True)
        for name in ARTIFACTS:
            os.replace(staging / name, output_dir / name)
    finally:
        shutil.rmtree(staging)
    print(f"Saved {', '.join(str(output_dir / name) for name in ARTIFACTS)}")


def export_into(folder: Path, model: torch.nn.Module, example: torch.Tensor, config: dict) -> None:
    """Export, reload, check against eager (as the tutorial does), and write the three artifacts into ``folder``."""
    atol, rtol, k = config["atol"], config["rtol"], config["top_k"]
    export_model(model, config["export_method"], example).save(str(folder / "model.pt"))
    reloaded = torch.jit.load(str(folder / "model.pt"))  # check what C++ will load, not the in-memory module
    with torch.no_grad():
        eager_out = flatten(model(example))
        exported_out = flatten(reloaded(example))

    if k > 0 and is_scores(eager_out[0]):
        print(f"Python model top {k} results:\n  {top_k(eager_out[0], k)}")
        print(f"TorchScript model top {k} results:\n  {top_k(exported_out[0], k)}")
    problem = compare(exported_out, eager_out, atol, rtol, k)
    if problem:
        raise ExportError(f"export check: the exported model disagrees with the eager one: {problem}")
    exported_name = {"script": "scripted", "trace": "traced"}[config["export_method"]]
    diff = max_abs_diff(exported_out, eager_out)
    print(f"export check: PASS: max abs diff {diff:.3e} between the eager and the {exported_name} model")

    save_tensors(folder / "input.pt", {"input_0": example})
    names = ["output"] if len(exported_out) == 1 else [f"output_{i}" for i in range(len(exported_out))]
    save_tensors(folder / "expected.pt", dict(zip(names, exported_out, strict=True)), atol=atol, rtol=rtol, top_k=k)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export the model to TorchScript and record reference data.")
    parser.add_argument("--seed", type=int, help="seed for the random weights and input (default: deploy.json)")
    parser.add_argument("--output-dir", type=Path, default=PROJECT_DIR / "artifacts", help="where to write")
    args = parser.parse_args(argv)
    try:
        export(load_config(), args.output_dir.resolve(), args.seed)
    except ExportError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
