"""make tune's choice, through the real runner: it times every way to run the exported model files on this CPU, keeps
those that pass parity, and records the fastest in artifacts/tuned.txt, which ts-infer (and so the library's Model)
then follows for the folder and the file, unless told otherwise. Timings are never asserted: which candidate wins is
this machine's business; that the winner passed and is what runs is the tool's."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import lane_python, run

pytestmark = pytest.mark.e2e


def bench_line(runner: Path, model: Path, *options: str) -> dict:
    """The runner's --bench JSON line for ``model`` (a file, or the artifacts folder)."""
    result = run([runner, model, "--bench", "1", "--warmup", "1", "--json", *options])
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_tune_records_the_fastest_candidate_that_passed_and_the_runner_follows_it(
    default_project: SimpleNamespace, project_copy: Path
) -> None:
    """Every candidate of a --formats both project is in the table (model.pt in each mode, bf16 ones where this CPU
    has native bf16, the .pt2); the chosen one passed parity, tuned.txt names it, bench/tune.json keeps the table,
    ts-infer given the folder or the chosen file runs it that way, and the project's parity checks still pass."""
    assert default_project.first.returncode == 0, default_project.first.stdout
    runner = default_project.path / "build" / "ts-infer"
    python = lane_python("default")
    tune = [python, "-m", "torch_deploy", "tune", "--runner", runner, "--runs", "5", "--warmup", "2", "--rounds", "2"]
    result = run([*tune, "--threads", "1"], cwd=project_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    native = json.loads(run([runner, project_copy / "artifacts/model.pt", "--bench", "1", "--json"]).stdout)[
        "native_bf16"
    ]
    names = ["model.pt onednn fp32", "model.pt ofi fp32", "model.pt none fp32", "model.pt2"]
    names += ["model.pt onednn bf16", "model.pt ofi bf16", "model.pt none bf16"] if native else []
    for name in names:
        assert re.search(rf"^{re.escape(name)} +[\d.]+ +[\d.]+  PASS", out, re.MULTILINE), out
    chosen = re.search(r"^tune: chose (.+?): [\d.]+ x the default \(model\.pt onednn fp32\); wrote", out, re.MULTILINE)
    assert chosen, out
    assert re.search(rf"^{re.escape(chosen[1])} .*<- chosen$", out, re.MULTILINE), out

    artifacts = project_copy / "artifacts"
    model, *settings = chosen[1].split()
    tuned = (artifacts / "tuned.txt").read_text().splitlines()
    assert tuned[0].startswith("# make tune's choice") and len(tuned) == 2, tuned
    assert tuned[1] == " ".join([model, *([f"optimize={settings[0]}", f"precision={settings[1]}"] if settings else [])])
    table = json.loads((project_copy / "bench/tune.json").read_text())
    assert table["chosen"] == chosen[1] and {row["name"] for row in table["candidates"]} == set(names), table
    assert all(row["passed"] and len(row["p50_ms"]) == 2 for row in table["candidates"]), table

    for given in (artifacts, artifacts / model):  # the folder stands for the chosen file
        ran = bench_line(runner, given)
        assert ran["format"] == ("aoti" if model.endswith(".pt2") else "torchscript"), ran
        if settings:
            assert [ran["optimize"], ran["precision"]] == settings, ran
    verify = run([python, "-m", "torch_deploy", "verify", "--runner", runner, "--device", "cpu"], cwd=project_copy)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # make predict runs the folder, so the choice; the Triton model of the chosen file says it was chosen
    default = run([python, "-m", "torch_deploy", "formats", "--default"], cwd=project_copy)
    assert default.stdout == f"artifacts/{model}\n", default.stdout + default.stderr
    triton = run([python, "-m", "torch_deploy", "triton"], cwd=project_copy)
    assert triton.returncode == 0, triton.stdout + triton.stderr
    marked = {
        config.parent.name: "# make tune chose this model file" in config.read_text()
        for config in (project_copy / "triton").glob("*/config.pbtxt")
    }
    chosen_folder = project_copy.name + ("_aoti" if model.endswith(".pt2") else "")
    assert marked == {project_copy.name: chosen_folder == project_copy.name,
                      f"{project_copy.name}_aoti": chosen_folder != project_copy.name}, marked  # fmt: skip
    assert "make tune chose this model file" in triton.stdout, triton.stdout
    # tuned.txt is the export's to replace (a new export needs a new choice), not a file of the user's to keep
    code = "import sys, pathlib; from torch_deploy.export import check_output_dir; check_output_dir(pathlib.Path(sys.argv[1]))"
    checked = run([python, "-c", code, artifacts])
    assert checked.returncode == 0, checked.stderr


def test_the_runner_follows_tuned_txt_and_is_told_otherwise(
    default_project: SimpleNamespace, project_copy: Path
) -> None:
    """A choice of model.pt2 makes the folder stand for it; a choice of a mode is model.pt's default, which
    --optimize overrides; another file's choice is not applied to model.pt."""
    assert default_project.first.returncode == 0, default_project.first.stdout
    runner = default_project.path / "build" / "ts-infer"
    artifacts = project_copy / "artifacts"
    tuned = artifacts / "tuned.txt"
    tuned.write_text("# make tune's choice\nmodel.pt2\n")
    assert bench_line(runner, artifacts)["format"] == "aoti"
    assert bench_line(runner, artifacts / "model.pt")["optimize"] == "onednn"  # model.pt2's choice, not model.pt's
    tuned.write_text("# make tune's choice\nmodel.pt optimize=ofi precision=fp32\n")
    assert bench_line(runner, artifacts)["optimize"] == "ofi"
    assert bench_line(runner, artifacts / "model.pt")["optimize"] == "ofi"
    assert bench_line(runner, artifacts / "model.pt", "--optimize", "none")["optimize"] == "none"
    # In parity mode the reference's precision still decides, the choice's mode runs.
    parity = run([runner, artifacts, "--input", artifacts / "input.pt", "--expect", artifacts / "expected.pt"])
    assert parity.returncode == 0 and "parity: PASS" in parity.stdout, parity.stdout + parity.stderr


@pytest.mark.parametrize(
    "line", ["model.pt optimize=fast", "model.pt precision=fp8", "model.pt threads=2", "model.pt\nmodel.pt2"]
)
def test_a_malformed_tuned_txt_is_one_line_naming_it_and_the_fix(
    default_project: SimpleNamespace, project_copy: Path, line: str
) -> None:
    assert default_project.first.returncode == 0, default_project.first.stdout
    artifacts = project_copy / "artifacts"
    (artifacts / "tuned.txt").write_text(f"# make tune's choice\n{line}\n")
    result = run([default_project.path / "build" / "ts-infer", artifacts / "model.pt", "--bench", "1"])
    assert result.returncode == 1, result.stdout + result.stderr
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and f"{artifacts / 'tuned.txt'}: not make tune's" in errors[0], result.stderr
    assert "run make tune again, or delete it" in errors[0]
