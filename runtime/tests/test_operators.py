"""export refuses, in one line, a TorchScript model calling an operator the C++ runner cannot have: one defined in
Python with torch.library. libtorch's own pass, and torchvision's (the runtime loads torchvision's own C++ library when
a model calls them: test_torchvision_operators.py)."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch_deploy.export import ExportError, called_operators, check_operators


@torch.library.custom_op("tsgen_test::twice", mutates_args=())
def twice(x: torch.Tensor) -> torch.Tensor:
    return x * 2


class CallsPythonOp(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.tsgen_test.twice(x) + 1


class CallsNms(torch.nn.Module):
    """What a detector's postprocessing does."""

    def forward(self, boxes: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torchvision.ops.nms(boxes, scores, 0.5)


class Plain(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x).softmax(1)


def test_torchvisions_operators_pass_and_are_found_in_every_branch(capsys: pytest.CaptureFixture[str]) -> None:
    """torchvision's operators are listed from the whole graph, also inside a with statement, which
    torch.jit.export_opnames refuses (RetinaNet's postprocessing has one)."""
    module = torch.jit.script(CallsNms())
    assert "torchvision::nms" in called_operators(module)
    check_operators(module)
    assert capsys.readouterr().out == ""


def test_an_operator_defined_in_python_is_refused_by_name() -> None:
    with pytest.raises(ExportError) as refused:
        check_operators(torch.jit.script(CallsPythonOp()))
    assert str(refused.value).startswith(
        "the model calls the operator tsgen_test::twice, which is defined in Python (torch.library) and so in no C++ "
        "program; "
    )


def test_libtorchs_own_operators_pass(capsys: pytest.CaptureFixture[str]) -> None:
    check_operators(torch.jit.script(Plain()))
    check_operators(torch.jit.script(torchvision.models.resnet18()))
    assert capsys.readouterr().out == ""
