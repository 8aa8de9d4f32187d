"""Property: whatever the answers, `tsgen new` either makes a project that renders and configures with CMake, or
refuses with one line and writes nothing."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tsgen.cli import cli

from tests.conftest import tree

printable = st.characters(blacklist_categories=("Cc", "Cs"))
VALID = {
    "NAME": st.from_regex(r"[A-Za-z][A-Za-z0-9 _-]{0,15}", fullmatch=True),
    "--description": st.text(printable, max_size=40).filter(lambda text: "{" not in text),
    "--input-shape": st.lists(st.integers(1, 8), min_size=1, max_size=4).map(lambda dims: ",".join(map(str, dims))),
    "--top-k": st.integers(0, 10).map(str),
    "--atol": st.floats(0, 1).map(str),
}
ANY = {
    "NAME": st.text(max_size=20),
    "--description": st.text(max_size=40),
    "--input-shape": st.one_of(st.lists(st.integers(-2, 9)).map(lambda d: ",".join(map(str, d))), st.text(max_size=8)),
    "--top-k": st.one_of(st.integers(-3, 20).map(str), st.text(max_size=4)),
    "--atol": st.one_of(st.floats().map(str), st.text(max_size=4)),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_new_either_configures_or_refuses_cleanly(data: st.DataObject) -> None:
    """Any answers (all valid, or one of them arbitrary): a project whose CMake configure succeeds, or exit 1
    with one line and an untouched output folder."""
    arbitrary = data.draw(st.sampled_from([None, *VALID]), label="arbitrary answer")
    values = {flag: data.draw(ANY[flag] if flag == arbitrary else VALID[flag], label=flag) for flag in VALID}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        (out / "keep.txt").write_text("mine")
        flags = [part for flag, value in values.items() if flag != "NAME" for part in (flag, value)]
        result = CliRunner().invoke(cli, ["new", values["NAME"], *flags, "--no-build", "-o", str(out)])
        if result.exit_code != 0:
            assert arbitrary is not None, result.output
            assert result.exit_code == 1, result.output
            assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("tsgen: error: ")
            assert tree(out) == {"keep.txt"}
            return
        project = next(path for path in out.iterdir() if path.is_dir())
        configure = subprocess.run(["make", "build/CMakeCache.txt"], cwd=project, capture_output=True, text=True)
        assert configure.returncode == 0, configure.stdout + configure.stderr
