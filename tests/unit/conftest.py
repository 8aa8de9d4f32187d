"""The unit tier needs neither torch nor CMake: it must pass where tsgen and the test tools are installed alone."""

from __future__ import annotations

import sys

import pytest


# A fence, so that the rule cannot silently rot: a unit test that imports torch fails here, not only without torch.
@pytest.fixture(autouse=True)
def no_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """`import torch` (or torchvision) fails in every unit test: a test that needs torch belongs in tests/with_torch."""
    for name in ("torch", "torchvision"):
        monkeypatch.setitem(sys.modules, name, None)  # a None entry makes `import name` raise ImportError
