"""Time the C++ runner on each exported format and precision, the eager model and each exported model in Python, and
the runtimes a deployment could use instead (ONNX Runtime, OpenVINO), side by side on the same input and threads.

    python -m torch_deploy bench                # in the project folder: what `make bench` runs
    python -m torch_deploy bench --runs 200 --threads 2
    python -m torch_deploy bench --json         # every row as JSON on stdout, instead of the table
    python -m torch_deploy bench --device cuda  # also each model file on the GPU, C++ and Python (make bench DEVICE=cuda)

Rows: the C++ runner on each model file in fp32, and on model.pt in bf16 where the CPU has native bf16 (elsewhere a
line says why not: emulated bf16 is slower than fp32; --emulate-bf16 times it anyway); Python eager and each model
file in Python; and, when the optional peers are installed (pip install -r requirements-peers.txt: onnxruntime,
openvino, onnx), the eager model exported to ONNX (bench/model.onnx) and run by ONNX Runtime (fp32) and OpenVINO (fp32,
and bf16 beside ours), each with its max abs diff from our fp32 output (artifacts/expected.pt). With a GPU device
(deploy.json's, or --device), the same C++ and Python rows on the GPU too, each from the CPU's input to outputs back
on the CPU (what a caller of torch_deploy::Model gets), beside the CPU's rows.

Also measures this machine's fp32 GEMM rate (2048 x 2048 matmul) and the model's FLOPs, which give a compute
floor: the time the model would take if every FLOP ran at GEMM speed. Writes bench/results.json, prints a table,
and draws bench/latency.png (latency distribution per variant) when matplotlib is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import io
import json
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from torch_deploy import artifacts, export
from torch_deploy import device as devices
from torch_deploy import formats as listing

ARTIFACTS = Path("artifacts")  # in the project folder, where make bench runs
# The runtimes timed beside ours when installed (requirements-peers.txt), by the module each needs.
PEER_MODULES = ("onnxruntime", "openvino", "onnx")


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


def time_calls(call: Callable[[], object], runs: int, warmup: int) -> list[float]:
    """Latencies of ``call()`` in milliseconds, after ``warmup`` untimed calls."""
    latencies = []
    for _ in range(warmup):
        call()
    for _ in range(runs):
        start = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - start) * 1000.0)
    return latencies


def time_python(model: Callable[..., object], inputs: list[torch.Tensor], runs: int, warmup: int) -> list[float]:
    """Latencies of ``model(*inputs)`` in milliseconds, after ``warmup`` untimed calls, under inference mode."""
    with torch.inference_mode():
        return time_calls(lambda: model(*inputs), runs, warmup)


def time_cpp(
    runner: Path,
    model: Path,
    runs: int,
    warmup: int,
    threads: int,
    *options: str,
    inputs: Path = ARTIFACTS / "input.pt",
) -> dict:
    """The C++ runner's own --bench measurement of a model file on ``inputs`` (its JSON line); ``threads`` 0 is
    libtorch's choice."""
    command = [str(runner), str(model), "--input", str(inputs)]
    command += ["--bench", str(runs), "--warmup", str(warmup), "--threads", str(threads), "--json", *options]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"ERROR: {runner} --bench failed: {result.stderr.strip()}; run make build")
    return json.loads(result.stdout.strip().splitlines()[-1])


def missing_peers() -> list[str]:
    """The peer runtimes' modules that are not installed."""
    return [name for name in PEER_MODULES if importlib.util.find_spec(name) is None]


def export_onnx(model: torch.nn.Module, inputs: list[torch.Tensor], names: list[str], path: Path) -> None:
    """The eager model as ONNX, for the peers: torch.onnx's TorchScript-based exporter (the dynamo one needs
    onnxscript), with the inputs' names; its deprecation notice and progress lines are kept off the table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(inputs), str(path), input_names=names, dynamo=False)


def time_peers(
    onnx_file: Path,
    inputs: dict[str, torch.Tensor],
    args: argparse.Namespace,
    bf16: bool,
    int8_calibration: list[tuple[torch.Tensor, ...]] | None = None,
) -> dict[str, tuple[list[float], list[Any]]]:
    """ONNX Runtime (CPU provider, every graph optimisation) and OpenVINO (CPU, latency hint) on the ONNX file, with
    ``args.threads`` threads: each one's latencies and outputs, by row name; OpenVINO also in bf16 when ``bf16``, and
    quantized to int8 by NNCF (its post-training quantization, calibrated on ``int8_calibration``, the samples our
    int8 package was calibrated on) when that is given and nncf is installed."""
    import numpy as np
    import onnxruntime
    import openvino

    feed = {name: tensor.numpy() for name, tensor in inputs.items()}
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    peers = {"ONNX Runtime": (lambda: session.run(None, feed))}
    core = openvino.Core()
    settings = {"INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": "LATENCY"}
    for precision in ("f32", "bf16") if bf16 else ("f32",):
        compiled = core.compile_model(str(onnx_file), "CPU", {**settings, "INFERENCE_PRECISION_HINT": precision})
        request = compiled.create_infer_request()
        name = "OpenVINO" if precision == "f32" else "OpenVINO bf16"
        peers[name] = lambda request=request: [np.array(o) for o in request.infer(feed).values()]
    if int8_calibration and importlib.util.find_spec("nncf"):
        import nncf

        samples = [{name: t.numpy() for name, t in zip(inputs, sample, strict=True)} for sample in int8_calibration]
        quantized = nncf.quantize(core.read_model(str(onnx_file)), nncf.Dataset(samples), subset_size=len(samples))
        compiled = core.compile_model(quantized, "CPU", {**settings, "INFERENCE_PRECISION_HINT": "f32"})
        int8_request = compiled.create_infer_request()
        peers["OpenVINO int8 (NNCF)"] = lambda: [np.array(o) for o in int8_request.infer(feed).values()]
    return {name: (time_calls(run, args.runs, args.warmup), run()) for name, run in peers.items()}


def diff_from_ours(outputs: list[Any], ours: list[torch.Tensor]) -> tuple[float, float | None] | None:
    """The largest absolute difference between a runtime's outputs (tensors or arrays) and ours, in order, and the
    largest relative one (parity's: of each output's largest |value|); None when they cannot be paired (another count
    or shape)."""
    theirs = [torch.as_tensor(output) for output in outputs]
    if len(theirs) != len(ours) or any(a.shape != b.shape for a, b in zip(theirs, ours, strict=False)):
        return None
    return artifacts.max_abs_diff(theirs, ours), artifacts.relative_diff(theirs, ours)


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
    parser = argparse.ArgumentParser(prog="python -m torch_deploy bench", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="timed runs per variant (default 100)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="intra-op threads")
    parser.add_argument("--runner", type=Path, default=Path("build/ts-infer"), help="the C++ runner")
    parser.add_argument("--output-dir", type=Path, default=Path("bench"), help="where to write results")
    parser.add_argument(
        "--emulate-bf16", action="store_true", help="time bf16 on a CPU without native bf16 too (emulated: slow)"
    )
    parser.add_argument("--json", action="store_true", help="print the results (every row) as JSON, not the table")
    parser.add_argument("--device", help="also time on this GPU (default: deploy.json's device)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.threads < 1 or args.warmup < 0:
        parser.error("--runs and --threads take numbers >= 1, --warmup >= 0")
    say = print if not args.json else lambda *text: print(*text, file=sys.stderr)  # stdout: the JSON alone

    config = export.load_config()
    formats = export.export_formats(config)
    try:
        device = devices.parse(args.device) if args.device else devices.of_config(config)
    except devices.DeviceError as err:
        parser.error(str(err))
    if device.is_gpu and (missing := devices.problem(device)):
        raise SystemExit(f"ERROR: --device {device}: {missing}; make bench DEVICE=cpu times the CPU alone")
    places = ["cpu", str(device)] if device.is_gpu else ["cpu"]
    entries = {entry.format.name: entry for entry in listing.exported(ARTIFACTS)}
    named_inputs = artifacts.load_tensors(ARTIFACTS / "input.pt")[0]
    inputs = list(named_inputs.values())
    ours = list(artifacts.load_tensors(ARTIFACTS / formats[0].expected())[0].values())  # what C++ reproduces
    batch = inputs[0].shape[0] if inputs[0].dim() else 1
    source = export.project_hook(Path.cwd())(config, config["seed"])  # the project's model, as export.py builds it
    eager = source.model

    variants, cpp_p50s = {}, {}

    def add(name: str, latencies: list[float], precision: str, diff: tuple[float, float | None] | None) -> None:
        absolute, relative = diff or (None, None)
        variants[name] = {
            **summarize(latencies, batch),
            "precision": precision,
            "max_abs_diff_from_ours": absolute,
            "relative_diff_from_ours": relative,
        }

    for place in places:
        for model_format in formats:
            if not entries[model_format.name].runs_on(place):
                continue
            cpp = time_cpp(args.runner, ARTIFACTS / model_format.model_file, args.runs, args.warmup, args.threads,
                           "--precision", "fp32", "--device", place)  # fmt: skip
            name = f"C++ {model_format.model_file}" + (
                f" ({cpp['optimize']})" if model_format.name == "torchscript" else ""
            )
            if place != "cpu":
                add(f"{name} on {place}", cpp["latencies_ms"], "fp32", None)
                cpp_p50s.setdefault(f"{place}", variants[f"{name} on {place}"]["p50_ms"])
                continue
            if model_format.int8:  # what it computes (C++ reproduces its reference exactly), against ours
                computed = list(artifacts.load_tensors(ARTIFACTS / model_format.expected())[0].values())
                add(name, cpp["latencies_ms"], "int8", diff_from_ours(computed, ours))
            else:
                add(name, cpp["latencies_ms"], "fp32", (0.0, 0.0) if model_format == formats[0] else None)
            cpp_p50s[model_format.name] = variants[name]["p50_ms"]
    scripted = artifacts.FORMATS["torchscript"] in formats  # bf16 runs model.pt
    bf16 = scripted and (artifacts.native_bf16() or args.emulate_bf16)
    if bf16:
        emulate = [] if artifacts.native_bf16() else ["--emulate-bf16"]
        cpp = time_cpp(args.runner, ARTIFACTS / "model.pt", args.runs, args.warmup, args.threads,
                       "--precision", "bf16", *emulate)  # fmt: skip
        if cpp["precision"] == "bf16":
            name = f"C++ model.pt bf16 ({cpp['optimize']})" + (" emulated" if emulate else "")
            fused = [t for _, t in artifacts.run_in_bf16(ARTIFACTS / "model.pt", inputs)[1]]  # what C++ computes
            add(name, cpp["latencies_ms"], "bf16", diff_from_ours(fused, ours))
            cpp_p50s["bf16"] = variants[name]["p50_ms"]
        else:  # the library fell back to fp32 (ts-infer --precision bf16 --emulate-bf16 says why)
            bf16 = False
            say("bf16: not timed: model.pt does not run in bf16 (the runner fell back to fp32)")
    elif scripted:
        say("bf16: not timed: this CPU has no native bf16 (AVX512-BF16 or AMX), so ts-infer --precision bf16 runs fp32 "
            "here; make bench BENCH_ARGS=--emulate-bf16 times the emulation (slower than fp32)")  # fmt: skip
    torch.set_num_threads(args.threads)
    add("Python eager", time_python(eager, inputs, args.runs, args.warmup), "fp32", None)
    for model_format in formats:
        if entries[model_format.name].runs_on("cpu"):
            exported = artifacts.load_model(ARTIFACTS / model_format.model_file).model
            precision = "int8" if model_format.int8 else "fp32"
            add(f"Python {model_format.title}", time_python(exported, inputs, args.runs, args.warmup), precision, None)
    if device.is_gpu:  # the same, on the GPU: inputs from the CPU, outputs back on it (each call waits for the GPU)
        target = torch.device(str(device))
        on_gpu = export.OnDevice(copy.deepcopy(eager).to(target), target)  # the CPU's stays for the peers
        add(f"Python eager on {device}", time_python(on_gpu, inputs, args.runs, args.warmup), "fp32", None)
        for model_format in formats:
            if model_format.name == "torchscript":
                model = artifacts.load_torchscript(ARTIFACTS / model_format.model_file, map_location=target).eval()
            else:
                model = artifacts.load_package(ARTIFACTS / model_format.model_file, target.index or 0)[0]
            gpu_model = export.OnDevice(model, target)
            add(f"Python {model_format.title} on {device}", time_python(gpu_model, inputs, args.runs, args.warmup),
                "fp32", None)  # fmt: skip

    missing = missing_peers()
    peer_p50s = {}
    if missing:
        say(f"peers: ONNX Runtime and OpenVINO not timed ({', '.join(missing)} not installed for {sys.executable}); "
            "pip install -r requirements-peers.txt to time them beside")  # fmt: skip
    else:
        onnx_file = args.output_dir / "model.onnx"
        try:
            export_onnx(eager, inputs, list(named_inputs), onnx_file)
        except Exception as err:  # the exporter fails in many types; all mean "this model is not exportable"
            say(f"peers: not timed: the model does not export to ONNX ({export.cause_of(err)})")
        else:
            int8 = artifacts.FORMATS["aoti_int8"] in formats
            calibration = export.calibration_inputs(config, source, named_inputs) if int8 else None
            for name, (latencies, outputs) in time_peers(onnx_file, named_inputs, args, bf16, calibration).items():
                precision = "bf16" if "bf16" in name else "int8" if "int8" in name else "fp32"
                add(name, latencies, precision, diff_from_ours(outputs, ours))
                peer_p50s[name] = variants[name]["p50_ms"]

    rate = gemm_gflops(args.threads)
    flops = model_gflop(eager, inputs)
    first = next(f for f in formats if f.name in cpp_p50s)  # the first format that runs on the CPU
    cpp_p50, eager_p50 = cpp_p50s[first.name], variants["Python eager"]["p50_ms"]
    ratios = {
        "cpp_p50_over_eager_p50": cpp_p50 / eager_p50,
        "floor_over_cpp_p50": 1000.0 * flops / rate / cpp_p50,
    }
    if "aoti" in cpp_p50s and "torchscript" in cpp_p50s:
        ratios["cpp_aoti_p50_over_torchscript_p50"] = cpp_p50s["aoti"] / cpp_p50s["torchscript"]
    fp32_peers = {name: p50 for name, p50 in peer_p50s.items() if variants[name]["precision"] == "fp32"}
    if fp32_peers:
        ratios["cpp_p50_over_fastest_peer_p50"] = cpp_p50 / min(fp32_peers.values())
    if device.is_gpu:
        ratios["cpp_gpu_p50_over_cpp_cpu_p50"] = cpp_p50s[str(device)] / cpp_p50
    if "aoti_int8" in cpp_p50s:
        ratios["cpp_int8_p50_over_cpp_fp32_p50"] = cpp_p50s["aoti_int8"] / cpp_p50
        if "OpenVINO int8 (NNCF)" in peer_p50s:
            ratios["cpp_int8_p50_over_openvino_int8_p50"] = cpp_p50s["aoti_int8"] / peer_p50s["OpenVINO int8 (NNCF)"]
    if "bf16" in cpp_p50s:
        ratios["cpp_bf16_p50_over_cpp_fp32_p50"] = cpp_p50s["bf16"] / cpp_p50s["torchscript"]
        if "OpenVINO bf16" in peer_p50s:
            ratios["cpp_bf16_p50_over_openvino_bf16_p50"] = cpp_p50s["bf16"] / peer_p50s["OpenVINO bf16"]
    results = {
        "model": config["model"],
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "native_bf16": artifacts.native_bf16(),
        "threads": args.threads,
        "device": str(device),
        "batch": batch,
        "runs": args.runs,
        "warmup": args.warmup,
        "gemm_gflops": rate,
        "model_gflop": flops,
        "floor_ms": 1000.0 * flops / rate,
        "formats": [f.name for f in formats],
        "variants": variants,
        "ratios": ratios,
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    drawn = plot(results, args.output_dir / "latency.png")
    if args.json:
        print(json.dumps(results))
        return 0

    width = max(len(name) for name in variants) + 2
    print(
        f"{'variant':<{width}}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'per s':>9}  max abs diff from ours"
        "  relative"
    )
    for name, v in variants.items():
        row = (v["p50_ms"], v["p90_ms"], v["p99_ms"], v["mean_ms"], v["throughput_per_s"])
        absolute, relative = v["max_abs_diff_from_ours"], v["relative_diff_from_ours"]
        diffs = f"  {absolute:>22.3e}" if absolute is not None else ""
        diffs += f"  {relative:.3e}" if absolute is not None and relative is not None else ""
        print(f"{name:<{width}}" + "".join(f"{x:>9.2f}" for x in row) + diffs)
    print(
        f"GEMM {rate:.0f} GFLOP/s x model {flops:.2f} GFLOP -> floor {results['floor_ms']:.2f} ms; "
        f"C++ {formats[0].model_file}/eager p50 {ratios['cpp_p50_over_eager_p50']:.2f}, "
        f"floor/C++ p50 {ratios['floor_over_cpp_p50']:.2f}"
        + (
            f"; C++ model.pt2/model.pt p50 {ratios['cpp_aoti_p50_over_torchscript_p50']:.2f}"
            if "cpp_aoti_p50_over_torchscript_p50" in ratios
            else ""
        )
    )
    if device.is_gpu:
        gpu_row = next(name for name in variants if name.startswith("C++ ") and name.endswith(f" on {device}"))
        print(f"{device}: {gpu_row} p50 {variants[gpu_row]['p50_ms']:.2f} ms beside the CPU's {cpp_p50:.2f} ms "
              f"(GPU/CPU {ratios['cpp_gpu_p50_over_cpp_cpu_p50']:.3f})")  # fmt: skip
    if fp32_peers:
        fastest = min(fp32_peers, key=fp32_peers.__getitem__)
        print(
            f"fp32: C++ {formats[0].model_file}/{fastest} (the faster peer) p50 {ratios['cpp_p50_over_fastest_peer_p50']:.2f}"
        )
    if "cpp_bf16_p50_over_cpp_fp32_p50" in ratios:
        print(
            f"bf16: C++ bf16/fp32 p50 {ratios['cpp_bf16_p50_over_cpp_fp32_p50']:.2f}"
            + (
                f", C++ bf16/OpenVINO bf16 p50 {ratios['cpp_bf16_p50_over_openvino_bf16_p50']:.2f}"
                if "cpp_bf16_p50_over_openvino_bf16_p50" in ratios
                else ""
            )
        )
    if "cpp_int8_p50_over_cpp_fp32_p50" in ratios:
        print(
            f"int8: C++ model_int8.pt2/{formats[0].model_file} p50 {ratios['cpp_int8_p50_over_cpp_fp32_p50']:.2f}"
            + (
                f", C++ int8/OpenVINO int8 (NNCF) p50 {ratios['cpp_int8_p50_over_openvino_int8_p50']:.2f}"
                if "cpp_int8_p50_over_openvino_int8_p50" in ratios
                else ""
            )
        )
    written = "bench/results.json" + (" and bench/latency.png" if drawn else " (pip install matplotlib for the plot)")
    print(f"Wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
