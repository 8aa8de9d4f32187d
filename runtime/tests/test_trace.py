"""export's trace of a model with dict and nested outputs (torch.jit.trace's strict=False), and the check that makes
it safe: the output structure must not change with the input."""

from __future__ import annotations

import pytest
import torch
from torch_deploy.artifacts import named_outputs
from torch_deploy.export import ExportError, other_inputs, trace

# A trace warns of every tensor it turns into a Python value, also while torch prints the output into its own error.
pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")


class Nested(torch.nn.Module):
    """A tuple of a dict and a list, as Hugging Face models (a ModelOutput dict) and detectors (a list of dicts)
    return them."""

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple:
        hidden = ids.float().unsqueeze(-1) * mask.unsqueeze(-1)
        return {"hidden": hidden, "pooled": hidden.mean(1)}, [hidden.amax(1), hidden.amin(1)]


class Mixed(torch.nn.Module):
    """A dict whose values are of two kinds, which a TorchScript dict cannot hold."""

    def forward(self, x: torch.Tensor) -> dict:
        return {"scores": x, "pair": (x, x)}


class Changing(torch.nn.Module):
    """Outputs that depend on the input's values: a trace would record only one of them."""

    def forward(self, x: torch.Tensor) -> dict:
        if bool(x.min() > 0.99):
            return {"scores": x * 2}
        return {"scores": x * 2, "extra": x}


def test_a_tuple_of_a_dict_and_a_list_is_traced_and_named_by_its_keys() -> None:
    ids, mask = torch.randint(0, 100, (2, 8)), torch.ones(2, 8, dtype=torch.int64)
    traced = trace(Nested(), [ids, mask])
    names = [name for name, _ in named_outputs(traced(ids, mask))]
    assert names == ["output_0_hidden", "output_0_pooled", "output_1_0", "output_1_1"]
    for (_, ours), (_, eager) in zip(named_outputs(traced(ids, mask)), named_outputs(Nested()(ids, mask)), strict=True):
        assert torch.equal(ours, eager)


def test_outputs_that_change_with_the_input_are_refused_by_name() -> None:
    x = torch.ones(4)  # one output; the other input (uniform in [0, 1)) gets two
    with pytest.raises(ExportError) as refused:
        trace(Changing(), [x])
    assert str(refused.value) == (
        "torch.jit.trace records one run, and the model's outputs change with its input (scores on the reference "
        "input, scores, extra on another); script it (export_method script), or return the same outputs for every "
        "input"
    )


def test_other_inputs_keep_shapes_dtypes_and_integer_ranges() -> None:
    given = [torch.rand(2, 3), torch.randint(5, 9, (4,)), torch.zeros(3, dtype=torch.bool)]
    others = other_inputs(given)
    assert [(t.shape, t.dtype) for t in others] == [(t.shape, t.dtype) for t in given]
    assert int(others[1].min()) >= 5 and int(others[1].max()) <= 8
    assert not torch.equal(others[0], given[0])


def test_a_dict_of_mixed_values_is_refused_in_one_line() -> None:
    with pytest.raises(ExportError) as refused:
        trace(Mixed(), [torch.ones(2)])
    assert str(refused.value) == (
        "torch.jit.trace cannot return the model's output (Dictionary inputs to traced functions must have consistent "
        "type. Found Tensor and Tuple[Tensor, Tensor]); return tensors, or tuples, lists and dicts of them whose "
        "values in one dict are all of one kind"
    )
