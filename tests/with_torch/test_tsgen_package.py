"""The tsgen package's `libtorch` command on a real lane's torch (scripts/setup.sh): the prefix, version, standard
and flavour it reports. (The rest of the package is tested in tests/unit/test_tsgen_package.py.)"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from tsgen.cli import cli

from tests.conftest import lane_python, torch_package


def test_libtorch_reports_the_prefix_and_how(monkeypatch: pytest.MonkeyPatch) -> None:
    """`tsgen libtorch --json` gives tools the prefix, version, standard and flavour of the lane's torch."""
    for variable in ("Torch_DIR", "LIBTORCH", "CMAKE_PREFIX_PATH"):
        monkeypatch.delenv(variable, raising=False)
    python = lane_python("cpu")
    result = CliRunner().invoke(cli, ["libtorch", "--python", str(python), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["prefix"], data["version"], data["cxx_standard"], data["cuda"]) == (
        str(torch_package(python)),
        "2.13.0",
        17,
        None,
    )
    plain = CliRunner().invoke(cli, ["libtorch", "--python", str(python)])
    assert plain.output.splitlines()[0] == data["prefix"]
    assert f"found via the torch package of {python}" in plain.output
