"""Time the C++ runner on each exported format, the eager model and each exported model in Python, side by side on
the same input and threads.

    python bench.py                        # what `make bench` runs
    python bench.py --runs 200 --threads 2

Also measures this machine's fp32 GEMM rate (2048 x 2048 matmul) and the model's FLOPs, which give a compute
floor: the time the model would take if every FLOP ran at GEMM speed. Writes bench/results.json, prints a table,
and draws bench/latency.png (latency distribution per variant) when matplotlib is installed.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

import export
import torch_deploy

PROJECT_DIR = Path(__file__).resolve().parent
ARTIFACTS = PROJECT_DIR / "artifacts"


def summarize(latencies_ms: list[float], batch: int) -> dict:
    """p50/p90/p99/mean latency and throughput (items per second) of one variant."""
    ordered = sorted(latencies_ms)

    def percentile(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]

    mean = statistics.fmean(ordered)
    return {
        "p50_ms": percentile(0.5),
        "p90_ms": percentile(0.9),
        "p99_ms": percentile(0.99),
        "mean_ms": mean,
        "throughput_per_s": 1000.0 * batch / mean,
        "latencies_ms": latencies_ms,
    }


def time_python(model: Callable[..., object], inputs: list[torch.Tensor], runs: int, warmup: int) -> list[float]:
    """Latencies of ``model(*inputs)`` in milliseconds, after ``warmup`` untimed calls, under inference mode."""
    latencies = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(*inputs)
        for _ in range(runs):
            start = time.perf_counter()
            model(*inputs)
            latencies.append((time.perf_counter() - start) * 1000.0)
    return latencies


def time_cpp(runner: Path, model: Path, runs: int, warmup: int, threads: int) -> dict:
    """The C++ runner's own --bench measurement of a model file (its JSON line)."""
    command = [str(runner), str(model), "--input", str(ARTIFACTS / "input.pt")]
    command += ["--bench", str(runs), "--warmup", str(warmup), "--threads", str(threads), "--json"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"ERROR: {runner} --bench failed: {result.stderr.strip()}; run make build")
    return json.loads(result.stdout.strip().splitlines()[-1])


def gemm_gflops(threads: int, size: int = 2048, rounds: int = 10) -> float:
    """This machine's fp32 matrix-multiply rate in GFLOP/s (median of ``rounds``), with ``threads`` threads."""
    torch.set_num_threads(threads)
    a, b = torch.rand(size, size), torch.rand(size, size)
    for _ in range(3):
        a @ b
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        a @ b
        seconds.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(seconds) / 1e9


def model_gflop(model: torch.nn.Module, inputs: list[torch.Tensor]) -> float:
    """FLOPs of one forward pass (convolutions and matrix products, as torch's FlopCounterMode counts them)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(*inputs)
    return counter.get_total_flops() / 1e9


def plot(results: dict, path: Path) -> bool:
    """bench/latency.png: one box per variant; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    variants = results["variants"]
    figure, axes = plt.subplots(figsize=(7, 3.5))
    boxes = [v["latencies_ms"] for v in variants.values()]
    try:  # matplotlib 3.10 named the orientation; 3.11 deprecates the old switch
        axes.boxplot(boxes, orientation="horizontal", showfliers=True)
    except TypeError:
        axes.boxplot(boxes, vert=False, showfliers=True)
    axes.set_yticks(range(1, len(variants) + 1), list(variants))
    axes.axvline(results["floor_ms"], linestyle="--", color="grey", label=f"GEMM floor {results['floor_ms']:.1f} ms")
    axes.set_xlabel(f"latency (ms), batch {results['batch']}, {results['threads']} threads")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="timed runs per variant (default 100)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="intra-op threads")
    parser.add_argument("--runner", type=Path, default=PROJECT_DIR / "build" / "ts-infer", help="the C++ runner")
    parser.add_argument("--output-dir", type=Path, default=PROJECT_DIR / "bench", help="where to write results")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.threads < 1 or args.warmup < 0:
        parser.error("--runs and --threads take numbers >= 1, --warmup >= 0")

    config = export.load_config()
    formats = export.export_formats(config)
    inputs = list(torch_deploy.load_tensors(ARTIFACTS / "input.pt")[0].values())
    batch = inputs[0].shape[0] if inputs[0].dim() else 1
    eager = export.build_model(config, config["seed"]).model

    variants, cpp_p50s = {}, {}
    for model_format in formats:
        cpp = time_cpp(args.runner, ARTIFACTS / model_format.model_file, args.runs, args.warmup, args.threads)
        name = f"C++ {model_format.model_file}" + (
            f" ({cpp['optimize']})" if model_format.name == "torchscript" else ""
        )
        variants[name] = summarize(cpp["latencies_ms"], batch)
        cpp_p50s[model_format.name] = variants[name]["p50_ms"]
    torch.set_num_threads(args.threads)
    variants["Python eager"] = summarize(time_python(eager, inputs, args.runs, args.warmup), batch)
    for model_format in formats:
        exported = torch_deploy.load_model(ARTIFACTS / model_format.model_file).model
        variants[f"Python {model_format.title}"] = summarize(
            time_python(exported, inputs, args.runs, args.warmup), batch
        )
    rate = gemm_gflops(args.threads)
    flops = model_gflop(eager, inputs)
    cpp_p50, eager_p50 = cpp_p50s[formats[0].name], variants["Python eager"]["p50_ms"]
    results = {
        "model": config["model"],
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "threads": args.threads,
        "batch": batch,
        "runs": args.runs,
        "warmup": args.warmup,
        "gemm_gflops": rate,
        "model_gflop": flops,
        "floor_ms": 1000.0 * flops / rate,
        "formats": [f.name for f in formats],
        "variants": variants,
        "ratios": {
            "cpp_p50_over_eager_p50": cpp_p50 / eager_p50,
            "floor_over_cpp_p50": 1000.0 * flops / rate / cpp_p50,
            **(
                {"cpp_aoti_p50_over_torchscript_p50": cpp_p50s["aoti"] / cpp_p50s["torchscript"]}
                if len(cpp_p50s) > 1
                else {}
            ),
        },
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    print(f"{'variant':<28}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'per s':>9}")
    for name, v in variants.items():
        row = (v["p50_ms"], v["p90_ms"], v["p99_ms"], v["mean_ms"], v["throughput_per_s"])
        print(f"{name:<28}" + "".join(f"{x:>9.2f}" for x in row))
    ratios = results["ratios"]
    print(
        f"GEMM {rate:.0f} GFLOP/s x model {flops:.2f} GFLOP -> floor {results['floor_ms']:.2f} ms; "
        f"C++ {formats[0].model_file}/eager p50 {ratios['cpp_p50_over_eager_p50']:.2f}, "
        f"floor/C++ p50 {ratios['floor_over_cpp_p50']:.2f}"
        + (
            f"; C++ model.pt2/model.pt p50 {ratios['cpp_aoti_p50_over_torchscript_p50']:.2f}"
            if len(cpp_p50s) > 1
            else ""
        )
    )
    drawn = plot(results, args.output_dir / "latency.png")
    written = "bench/results.json" + (" and bench/latency.png" if drawn else " (pip install matplotlib for the plot)")
    print(f"Wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
