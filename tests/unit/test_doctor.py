"""`tsgen doctor` checks the real machine: what is missing fails with its fix.
(The checks against the real torch of both lanes are in tests/with_torch/test_doctor.py.)"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from tsgen.cli import cli


def test_a_python_that_does_not_exist_blocks_with_its_fix(tmp_path: Path) -> None:
    """A missing exporting Python is a blocking ✗ naming the fix, and the command exits 1."""
    result = CliRunner().invoke(cli, ["doctor", "--python", "/nonexistent/python3", "--project", str(tmp_path)])
    assert result.exit_code == 1
    assert "/nonexistent/python3 not found" in result.output
    assert "tsgen: error: a build cannot work until these are fixed: Python" in result.output
