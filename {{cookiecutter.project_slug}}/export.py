"""Export the model in the formats deploy.json asks for, and record the reference input and outputs that the C++
program must reproduce: what `make export` runs.

    python export.py                      # reads deploy.json, writes artifacts/
    python export.py --seed 7 --output-dir /tmp/other

The model is the one deploy.json names ("model": torchvision:<arch> with its "weights", models/<file>.py:<factory>,
or a TorchScript models/<file>.pt). To load it another way (a checkpoint of your own, a model that needs arguments,
example inputs of your choosing), change build_model() below: make export, make bench and the tests all build the
model through it. Exporting, checking against eager, and writing the artifacts is the runtime's (torch_deploy.export).
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import torch  # noqa: F401  (named first: a Python without torch is the first thing a fresh machine runs into)
    from torch_deploy import export
except ImportError as missing:
    package = {"torch_deploy": "the torch_deploy runtime (tsgen-runtime)"}.get(missing.name or "", missing.name)
    raise SystemExit(
        f"ERROR: {package} is not installed for {sys.executable}; {sys.executable} -m pip install -r requirements.txt, "
        "or run make with PYTHON=/path/to/the/python/that/has/torch"
    ) from missing

PROJECT_DIR = Path(__file__).resolve().parent


def build_model(config: dict, seed: int) -> export.Source:
    """The model to export, from deploy.json's settings (``config``), with random weights seeded by ``seed``:
    ``export.Source(module)``, or ``export.Source(module, examples=[tensor, ...])`` to give the reference inputs."""
    return export.build_model(config, seed)


if __name__ == "__main__":
    raise SystemExit(export.main(sys.argv[1:], model=build_model, project=PROJECT_DIR))
