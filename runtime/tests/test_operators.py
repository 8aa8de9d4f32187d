"""export refuses, in one line, a TorchScript model calling an operator the C++ runner cannot have: torchvision's
(registered by its Python package), or one defined in Python with torch.library. libtorch's own pass."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch_deploy.export import ExportError, check_operators


@torch.library.custom_op("tsgen_test::twice", mutates_args=())
def twice(x: torch.Tensor) -> torch.Tensor:
    return x * 2


class CallsPythonOp(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.tsgen_test.twice(x) + 1


class CallsNms(torch.nn.Module):
    """What a detector's postprocessing does."""

    def forward(self, boxes: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return torchvision.ops.nms(boxes, scores, 0.5)


class Plain(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x).softmax(1)


def test_torchvisions_operators_are_refused_by_name() -> None:
    with pytest.raises(ExportError) as refused:
        check_operators(torch.jit.script(CallsNms()))
    assert str(refused.value) == (
        "the model calls torchvision's C++ operators (torchvision::nms), which the C++ runner does not register "
        "(torchvision's Python package does, for Python only); deploy a model that does not call torchvision.ops (a "
        "classifier or a segmentation model: detectors are not supported yet)"
    )


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
