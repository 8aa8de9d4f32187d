"""An AOTInductor package and the CPU it runs on: export.py records the instruction set extensions its code may use
(the exporting CPU's, for -march=native; or those of the x86-64 level deploy.json's "aoti_isa" names), and the runtime
refuses it, in one line, on a CPU that lacks one, where its code would die of an illegal instruction. An older CPU is
played by this one: a /proc/cpuinfo without the AVX-512 and AMX flags, bound over the real one in a mount namespace of
the runner's own (unshare), and libtorch told to use AVX2 (ATEN_CPU_CAPABILITY)."""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import lane_python, run

pytestmark = pytest.mark.e2e

NEWER = re.compile(r"^(avx512\w*|amx\w*|avx_vnni\w*)$")  # what an AVX2 CPU (x86-64-v3, Haswell to Zen 3) lacks


def metadata(package: Path) -> dict:
    with zipfile.ZipFile(package) as archive:
        return json.loads(archive.read(next(n for n in archive.namelist() if n.endswith("wrapper_metadata.json"))))


def on_an_avx2_cpu(tmp_path: Path, *command: object) -> SimpleNamespace:
    """``command`` where /proc/cpuinfo lists no AVX-512 or AMX flag and libtorch dispatches to AVX2 kernels."""
    real = Path("/proc/cpuinfo").read_text()
    older = re.sub(
        r"^(flags\s*:)(.*)$",
        lambda m: m[1] + " ".join(["", *(flag for flag in m[2].split() if not NEWER.match(flag))]),
        real,
        flags=re.MULTILINE,
    )
    fake = tmp_path / "cpuinfo"
    fake.write_text(older)
    script = 'mount --bind "$0" /proc/cpuinfo && exec "$@"'
    result = run(
        ["unshare", "--mount", "sh", "-c", script, fake, *command], env={**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}
    )
    return SimpleNamespace(result=result, flags=set(re.search(r"^flags\s*:(.*)$", real, re.MULTILINE)[1].split()))


def test_a_native_package_is_refused_on_a_cpu_without_its_extensions(
    default_project: SimpleNamespace, tmp_path: Path
) -> None:
    """The default project's model.pt2, compiled for this CPU: its package lists this CPU's extensions; played on an
    AVX2 CPU, the runner names the ones missing and exits 1 before loading any code."""
    assert default_project.first.returncode == 0, default_project.first.stdout
    package = default_project.path / "artifacts" / "model.pt2"
    recorded = metadata(package)["cpu_extensions"].split()
    older = on_an_avx2_cpu(tmp_path, default_project.path / "build/ts-infer", package)
    assert set(recorded) <= older.flags and "avx2" in recorded, recorded
    newer = [name for name in recorded if NEWER.match(name)]
    if not newer:
        pytest.skip("this CPU has no AVX-512: its packages run on an AVX2 CPU")
    refused = older.result
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1, refused.stdout + refused.stderr
    # libtorch's own view (AVX2 here) refuses an AVX-512 package first, naming what it compiled for; else the flags
    assert (
        f"model.pt2: compiled for {metadata(package)['AOTI_CPU_ISA']}, and this CPU lacks AVX512" in refused.stderr
        or f"model.pt2: compiled for a CPU with {' '.join(newer)}, which this CPU lacks" in refused.stderr
    ), refused.stderr


def test_a_package_for_avx2_runs_on_an_avx2_cpu(default_project: SimpleNamespace, tmp_path: Path) -> None:
    """ "aoti_isa": "avx2": the package is compiled for x86-64-v3 with Inductor's 256-bit kernels, records AVX2's
    extensions only, and passes parity on the AVX2 CPU played here; an unknown "aoti_isa" is one line at export."""
    assert default_project.first.returncode == 0, default_project.first.stdout
    project = tmp_path / "project"
    shutil.copytree(default_project.path, project, ignore=shutil.ignore_patterns("build*", "artifacts*", ".artifacts"))
    config = json.loads((project / "deploy.json").read_text())
    python = lane_python("default")
    (project / "deploy.json").write_text(json.dumps({**config, "formats": ["aoti"], "aoti_isa": "avx3"}))
    wrong = run([python, "export.py"], cwd=project)
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "ERROR: aoti_isa: 'avx3' is not one; set \"aoti_isa\" in deploy.json to native, avx2, avx512" in wrong.stderr
    (project / "deploy.json").write_text(json.dumps({**config, "formats": ["aoti"], "aoti_isa": "avx2"}))
    exported = run([python, "export.py"], cwd=project)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    artifacts = project / "artifacts"
    recorded = metadata(artifacts / "model.pt2")
    assert recorded["AOTI_CPU_ISA"].split()[0] == "AVX2", recorded
    assert recorded["cpu_extensions"] == "avx avx2 bmi1 bmi2 f16c fma movbe", recorded
    runner = default_project.path / "build/ts-infer"
    args = [artifacts / "model.pt2", "--input", artifacts / "input.pt", "--expect", artifacts / "expected_aoti.pt"]
    older = on_an_avx2_cpu(tmp_path, runner, *args).result
    assert older.returncode == 0 and "parity: PASS" in older.stdout, older.stdout + older.stderr
