"""The exported TorchScript file computes what Python recorded, and the checks can tell when it does not."""

from __future__ import annotations

import torch

import export


def test_exported_model_reproduces_the_recorded_output(config: dict, artifacts) -> None:
    """Loading artifacts/model.pt in Python and running the reference input gives the recorded output."""
    inputs = list(export.load_tensors(artifacts / "input.pt")[0].values())
    expected = list(export.load_tensors(artifacts / "expected.pt")[0].values())
    model = torch.jit.load(str(artifacts / "model.pt"))
    with torch.no_grad():
        actual = export.flatten(model(*inputs))
    assert export.compare(actual, expected, config["atol"], config["rtol"], config["top_k"]) is None


def test_reference_input_is_what_export_feeds_the_model(config: dict, artifacts) -> None:
    """The reference inputs are the ones export.py uses (the factory's example inputs, else deploy.json's inputs,
    with their names, shapes and dtypes), so C++ is tested on what will be deployed."""
    inputs, _ = export.load_tensors(artifacts / "input.pt")
    source = export.build_model(config, config["seed"])
    if source.examples:
        wanted = {f"input_{i}": (list(t.shape), t.dtype) for i, t in enumerate(source.examples)}
    else:
        wanted = {spec["name"]: (spec["shape"], export.DTYPES[spec["dtype"]]) for spec in config["inputs"]}
    assert {name: (list(t.shape), t.dtype) for name, t in inputs.items()} == wanted


def test_expected_file_records_the_tolerances(config: dict, artifacts) -> None:
    """The C++ parity mode reads its tolerances from expected.pt; they must be the configured ones."""
    _, numbers = export.load_tensors(artifacts / "expected.pt")
    assert numbers == {"atol": config["atol"], "rtol": config["rtol"], "top_k": float(config["top_k"])}


def test_compare_reports_a_difference_beyond_tolerance(config: dict, artifacts) -> None:
    """compare() names the max abs diff when outputs drift past the tolerance."""
    expected = list(export.load_tensors(artifacts / "expected.pt")[0].values())
    drifted = [t + 10 * config["atol"] + 1.0 for t in expected]
    problem = export.compare(drifted, expected, config["atol"], config["rtol"], 0)
    assert problem is not None and "max abs diff" in problem
