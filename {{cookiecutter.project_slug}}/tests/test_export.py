"""Each exported model file computes what Python recorded, and the checks can tell when it does not."""

from __future__ import annotations

import pytest
import torch
from torch_deploy import artifacts as artifact_format
from torch_deploy.device import parse, problem
from torch_deploy.export import export_formats
from torch_deploy.formats import Format

import export


def test_exported_model_reproduces_the_recorded_output(
    config: dict, artifacts, model_format: Format, top_k: int, entries: dict
) -> None:
    """Loading the model file in Python and running the reference input gives the output recorded from it (on the
    GPU for a package compiled for it)."""
    compiled_for = entries[model_format.name].device
    if problem(parse(compiled_for)):
        pytest.skip(f"{model_format.model_file} is compiled for {compiled_for}: {problem(parse(compiled_for))}")
    inputs = [t.to(compiled_for) for t in artifact_format.load_tensors(artifacts / "input.pt")[0].values()]
    expected = list(artifact_format.load_tensors(artifacts / model_format.expected())[0].values())
    deployed = artifact_format.load_model(artifacts / model_format.model_file)
    assert deployed.format == model_format  # told by the file's contents
    model = deployed.model
    with torch.no_grad():
        actual = [t.cpu() for t in artifact_format.flatten(model(*inputs))]
    assert artifact_format.compare(actual, expected, config["atol"], config["rtol"], top_k) is None


def test_reference_input_is_what_export_feeds_the_model(config: dict, artifacts) -> None:
    """The reference inputs are the ones export.py uses (the factory's example inputs, else deploy.json's inputs,
    with their names, shapes and dtypes), so C++ is tested on what will be deployed."""
    inputs, _ = artifact_format.load_tensors(artifacts / "input.pt")
    source = export.build_model(config, config["seed"])
    if source.examples:
        wanted = {f"input_{i}": (list(t.shape), t.dtype) for i, t in enumerate(source.examples)}
    else:
        wanted = {spec["name"]: (spec["shape"], artifact_format.DTYPES[spec["dtype"]]) for spec in config["inputs"]}
    assert {name: (list(t.shape), t.dtype) for name, t in inputs.items()} == wanted


def test_expected_file_records_the_tolerances(config: dict, artifacts, model_format: Format, top_k: int) -> None:
    """The C++ parity mode reads its tolerances from the reference outputs; they must be the configured ones."""
    _, numbers = artifact_format.load_tensors(artifacts / model_format.expected())
    assert numbers == {"atol": config["atol"], "rtol": config["rtol"], "top_k": float(top_k)}


def test_compare_reports_a_difference_beyond_tolerance(config: dict, artifacts) -> None:
    """compare() names the max abs diff when outputs drift past the tolerance."""
    expected = list(artifact_format.load_tensors(artifacts / export_formats(config)[0].expected())[0].values())
    # beyond the tolerance at each output's own scale (parity's rule), however large the outputs are
    drifted = [t + 10 * (config["atol"] + config["rtol"] * (artifact_format.largest(t) or 0.0)) + 1.0 for t in expected]
    problem = artifact_format.compare(drifted, expected, config["atol"], config["rtol"], 0)
    assert problem is not None and "max abs diff" in problem


def test_model_file_records_what_cpp_needs(
    config: dict, artifacts, model_format: Format, top_k: int, entries: dict
) -> None:
    """The model file carries its inputs (the reference inputs' names, shapes and dtypes), its output names (those
    of its reference outputs), top_k and the project's device, so that the model file alone is a deployment:
    ts-infer and torch_deploy::Model read them."""
    compiled_for = entries[model_format.name].device
    if problem(parse(compiled_for)):
        pytest.skip(f"{model_format.model_file} is compiled for {compiled_for}: {problem(parse(compiled_for))}")
    info = artifact_format.load_model(artifacts / model_format.model_file).info
    inputs, _ = artifact_format.load_tensors(artifacts / "input.pt")
    expected, _ = artifact_format.load_tensors(artifacts / model_format.expected())
    assert info is not None
    assert info.inputs == [(name, list(t.shape), artifact_format.dtype_name(t.dtype)) for name, t in inputs.items()]
    assert info.outputs == list(expected)
    assert (info.top_k, info.torch, info.device) == (top_k, torch.__version__, config.get("device", "cpu"))
