"""The performance tooling runs and reports well-formed results (timings themselves are never asserted: these
machines are noisy; benchmarks/run.py prints the measured ratios)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.conftest import run
from tests.with_build.conftest import make

pytestmark = pytest.mark.e2e

SUMMARY_KEYS = {"p50_ms", "p90_ms", "p99_ms", "mean_ms", "throughput_per_s", "latencies_ms"}


@pytest.mark.parametrize("optimize", ["onednn", "ofi", "none"])
def test_every_optimisation_keeps_parity_and_benches(optimize: str, default_project: SimpleNamespace) -> None:
    """Each --optimize mode reproduces Python's output, and --bench --json gives one well-formed line."""
    project = default_project.path
    runner, model = project / "build/ts-infer", project / "artifacts/model.pt"
    parity = run(
        [
            runner,
            model,
            "--input",
            project / "artifacts/input.pt",
            "--expect",
            project / "artifacts/expected.pt",
            "--optimize",
            optimize,
        ]
    )
    assert parity.returncode == 0 and "parity: PASS" in parity.stdout, parity.stdout + parity.stderr
    assert parity.stderr == ""  # no fallback note: the mode really ran
    bench = run([runner, model, "--bench", "7", "--warmup", "2", "--threads", "1", "--json", "--optimize", optimize])
    assert bench.returncode == 0, bench.stderr
    lines = bench.stdout.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert SUMMARY_KEYS <= set(result) and len(result["latencies_ms"]) == 7
    assert (result["runs"], result["warmup"], result["threads"], result["optimize"], result["batch"]) == (
        7,
        2,
        1,
        optimize,
        1,
    )
    assert 0 < result["p50_ms"] <= result["p90_ms"] <= result["p99_ms"]


def test_a_pt2_benches_as_compiled_and_says_so_when_asked_for_a_torchscript_mode(
    default_project: SimpleNamespace,
) -> None:
    """An AOTInductor package runs as compiled: --bench --json says format aoti, optimize none; asking it for a
    TorchScript mode gives one note and the same run."""
    project = default_project.path
    runner, model = project / "build/ts-infer", project / "artifacts/model.pt2"
    bench = run([runner, model, "--bench", "5", "--warmup", "1", "--threads", "1", "--json"])
    assert bench.returncode == 0 and bench.stderr == "", bench.stderr
    result = json.loads(bench.stdout)
    assert (result["format"], result["optimize"], len(result["latencies_ms"])) == ("aoti", "none", 5)
    asked = run([runner, model, "--optimize", "onednn"])
    assert asked.returncode == 0 and asked.stdout.splitlines()[-1] == "DONE"
    assert asked.stderr.splitlines() == [
        f"ts-infer: note: --optimize onednn is for TorchScript models; {model} is an AOTInductor package, compiled "
        "ahead of time, and runs as compiled"
    ]


def test_make_bench_writes_results_table_and_plot(default_project: SimpleNamespace) -> None:
    """`make bench` times C++ and Python on each format, Python eager, and the peers the test venv has (ONNX Runtime,
    OpenVINO: each with its max abs diff from our output) on one input, measures the GEMM floor, and writes
    bench/results.json and bench/latency.png; bf16 is timed where the CPU has it, else one line says why not."""
    project = default_project.path
    result = make(project, "bench", "BENCH_RUNS=5", "BENCH_THREADS=1")
    assert result.returncode == 0, result.stdout
    results = json.loads((project / "bench/results.json").read_text())
    native = results["native_bf16"]
    assert list(results["variants"]) == [
        "C++ model.pt (onednn)", "C++ model.pt2", *(["C++ model.pt bf16 (onednn)"] if native else []),
        "Python eager", "Python TorchScript", "Python AOTInductor",
        "ONNX Runtime", "OpenVINO", *(["OpenVINO bf16"] if native else []),
    ]  # fmt: skip
    assert results["formats"] == ["torchscript", "aoti"]
    for name, summary in results["variants"].items():
        assert SUMMARY_KEYS <= set(summary) and len(summary["latencies_ms"]) == 5
        assert summary["precision"] == ("bf16" if "bf16" in name else "fp32")
    variants = results["variants"]
    assert variants["C++ model.pt (onednn)"]["max_abs_diff_from_ours"] == 0.0
    for peer in ("ONNX Runtime", "OpenVINO"):  # the same model, in another runtime: the same answer
        assert variants[peer]["max_abs_diff_from_ours"] < 1e-3
    assert (results["threads"], results["batch"], results["runs"]) == (1, 1, 5)
    assert 3.5 < results["model_gflop"] < 3.8  # resnet18: 1.82 GMAC
    assert results["gemm_gflops"] > 0 and results["floor_ms"] > 0
    bf16_ratios = {"cpp_bf16_p50_over_cpp_fp32_p50", "cpp_bf16_p50_over_openvino_bf16_p50"} if native else set()
    assert set(results["ratios"]) == {
        "cpp_p50_over_eager_p50", "floor_over_cpp_p50", "cpp_aoti_p50_over_torchscript_p50",
        "cpp_p50_over_fastest_peer_p50", *bf16_ratios,
    }  # fmt: skip
    assert (project / "bench/latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (project / "bench/model.onnx").stat().st_size > 40_000_000  # resnet18's weights in fp32
    lines = result.stdout.splitlines()
    assert "Wrote bench/results.json and bench/latency.png" in lines
    assert any(line.startswith("fp32: C++ model.pt/") and "(the faster peer) p50 " in line for line in lines)
    assert (
        native
        or (
            "bf16: not timed: this CPU has no native bf16 (AVX512-BF16 or AMX), so ts-infer --precision bf16 runs fp32 "
            "here; make bench BENCH_ARGS=--emulate-bf16 times the emulation (slower than fp32)"
        )
        in lines
    )


def test_bench_json_and_emulated_bf16_and_missing_peers(cpu_lane_project: SimpleNamespace) -> None:
    """make bench BENCH_ARGS=--json prints the results alone on stdout; --emulate-bf16 adds the bf16 row on any CPU; without the
    peers installed (the cpu lane has none), one line says how to add them."""
    project = cpu_lane_project.path
    result = make(project, "bench", "BENCH_RUNS=3", "BENCH_THREADS=1", "BENCH_ARGS=--json --emulate-bf16")
    assert result.returncode == 0, result.stdout
    *notes, last = result.stdout.splitlines()  # make folds the bench's stderr (its notes) in
    results = json.loads(last)
    assert results == json.loads((project / "bench/results.json").read_text())
    emulated = "" if results["native_bf16"] else " emulated"
    assert list(results["variants"]) == [
        "C++ model.pt (onednn)", f"C++ model.pt bf16 (onednn){emulated}", "Python eager", "Python TorchScript",
    ]  # fmt: skip
    assert any(
        line.startswith("peers: ONNX Runtime and OpenVINO not timed (onnxruntime, openvino, onnx not installed for ")
        and line.endswith("); pip install -r requirements-peers.txt to time them beside")
        for line in notes
    ), notes
