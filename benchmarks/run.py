"""Measure every performance ratio tsgen promises, in one run, and print them as a table.

    .venvs/default/bin/python benchmarks/run.py              # after scripts/setup.sh default
    .venvs/default/bin/python benchmarks/run.py --rounds 5 --runs 200

Each timing is the median of several rounds: these machines are noisy, so this prints measured ratios and never
fails on them (the test suite only checks that the bench commands run and give well-formed results).

Measured, all on resnet18 (seeded random weights), batch 1, --threads (default 2):
- the C++ runner's p50 with each optimisation (--optimize none / ofi / onednn) against Python eager and Python
  TorchScript (the generated project's `make bench`), and the GEMM floor (model FLOPs at this machine's GEMM rate);
- the builds of a plain install (`pip install` of this checkout into a new venv, no extras: what a user gets): a
  cold build (no ccache) against a second project's build with ccache warm, and the rebuild after editing one
  library source (the quickest, compare.cpp, and the slowest, script.cpp);
- the first `make verify` against a rerun with nothing changed;
- `tsgen new --no-build` against a bare `cookiecutter --no-input` of the same template;
- the two formats (a project with --formats both): the export time of each, as export.py reports it in one export;
  the runner's p50 on model.pt2 against model.pt (rounds alternate); and the cold build (no ccache) with the
  library's AOTInductor support against one without it (-DTORCH_DEPLOY_AOTI=OFF);
- against the runtimes a user would pick instead (--peers-only for these rows alone): resnet18, mobilenet_v3_small and
  efficientnet_b0 projects (random weights, batch-norm statistics measured on random normalised images:
  RECALIBRATED) with --precision bf16 and the formats torchscript and aoti_int8, each verified (C++ against Python in
  fp32, bf16 and int8), the runner with and without its oneDNN Graph rewrites (TORCH_DEPLOY_REWRITES=0) and with its
  inputs channels-last and as given (TORCH_DEPLOY_CHANNELS_LAST=0, in fp32 and bf16; rounds alternate), then the
  project's `make bench` with ONNX Runtime, OpenVINO and NNCF installed: the C++ runner's fp32 p50 against the faster
  of the two, its bf16 p50 against OpenVINO's bf16 and its int8 package against OpenVINO's int8 (NNCF; both
  calibrated on the same 16 random images, int8_max_drift 0.25: random weights drift more than trained ones), with the
  drifts from fp32. On a CPU without native bf16 (AVX512-BF16 or AMX) the bf16 rows are
  emulated on both sides and only informative.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(command)}\n{result.stdout}{result.stderr}")
    return result


def seconds(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_of(rounds: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(rounds))


def tsgen(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "tsgen", *args], cwd)


def plain_install(work: Path) -> Path:
    """tsgen installed into a new venv with nothing but its own dependencies; returns that venv's bin folder."""
    venv = work / "plain-venv"
    run([sys.executable, "-m", "venv", str(venv)], work)
    run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(REPO)], work)
    return venv / "bin"


def runner_bench(
    project: Path,
    optimize: str | None,
    runs: int,
    threads: int,
    model: str = "model.pt",
    precision: str = "fp32",
    **env: str,
) -> dict:
    """The runner's --bench --json line, in fp32 unless ``precision`` says bf16 (emulated on a CPU without native bf16,
    as the peers' rows are), also in a bf16 project (``env``: more environment, e.g. TORCH_DEPLOY_REWRITES=0)."""
    command = [str(project / "build/ts-infer"), f"artifacts/{model}", "--input", "artifacts/input.pt"]
    command += ["--bench", str(runs), "--threads", str(threads), "--precision", precision, "--json"]
    command += ["--emulate-bf16"] if precision == "bf16" else []
    command += ["--optimize", optimize] if optimize else []
    return json.loads(run(command, project, **env).stdout.splitlines()[-1])


def runner_p50(project: Path, optimize: str | None, runs: int, threads: int, model: str = "model.pt") -> float:
    return float(runner_bench(project, optimize, runs, threads, model)["p50_ms"])


def format_rows(work: Path, rounds: int, runs: int, threads: int) -> list[tuple[str, str, str]]:
    """TorchScript against AOTInductor on one project that exports both (see the module's docstring)."""
    run([sys.executable, "-m", "tsgen", "new", "both", "--formats", "both", "--no-build"], work)
    project = work / "both"
    exports: dict[str, list[float]] = {"model.pt": [], "model.pt2": []}
    for round_ in range(rounds):
        output = run([sys.executable, "export.py", "--output-dir", str(work / f"export-{round_}")], project).stdout
        for model, spent in re.findall(r"\((model\.pt2?), exported in ([0-9.]+) s\)", output):
            exports[model].append(float(spent))
    run(["make", "export"], project)

    def cold(*make_args: str) -> float:
        build = next(arg.split("=", 1)[1] for arg in make_args if arg.startswith("BUILD_DIR="))
        shutil.rmtree(project / build, ignore_errors=True)
        return seconds(lambda: run(["make", "build", *make_args], project, CCACHE_DISABLE="1"))

    with_aoti, without_aoti = [], []
    for _ in range(rounds):  # alternating, so that both see the same machine
        with_aoti.append(cold("BUILD_DIR=build"))
        without_aoti.append(cold("BUILD_DIR=build-no-aoti", "CMAKE_ARGS=-DTORCH_DEPLOY_AOTI=OFF"))
    torchscript, package = [], []
    for _ in range(rounds):
        torchscript.append(runner_p50(project, None, runs, threads, "model.pt"))
        package.append(runner_p50(project, None, runs, threads, "model.pt2"))
    ts_export, aoti_export = (statistics.median(exports[m]) for m in ("model.pt", "model.pt2"))
    ts_p50, aoti_p50 = statistics.median(torchscript), statistics.median(package)
    built, plain = statistics.median(with_aoti), statistics.median(without_aoti)
    return [
        ("export: model.pt / model.pt2", f"{ts_export:.1f} s / {aoti_export:.1f} s", "info"),
        ("C++ p50 model.pt2 / model.pt", f"{aoti_p50:.2f} ms / {ts_p50:.2f} ms = {aoti_p50 / ts_p50:.2f}", "<= 1.0"),
        ("cold build with / without AOTInductor", f"{built:.1f} s / {plain:.1f} s = {built / plain:.2f}", "info"),
    ]


PEER_MODELS = ("resnet18", "mobilenet_v3_small", "efficientnet_b0")
# Each peer model: the torchvision architecture with seeded random weights and its batch norms' statistics measured on
# random images normalised as the image preprocessing does (values of about -2 to 2.5), so that its activations have a
# trained model's scale. With torchvision's initial statistics mobilenet_v3_small's and efficientnet_b0's outputs are
# near 1e-10 and 1e-14: int8 rounds them to zero (its gate refuses that), and top-k compares ties. With statistics of
# images in [0, 1) a photo's activations grow through efficientnet_b0 to logits near 2e3 that float32's rounding alone
# moves by 4 % (against float64), so the project's image test found C++ and Python naming different classes, each
# right to its rounding. Weights are never downloaded here.
RECALIBRATED = """\
import torch
import torchvision


def make():
    torch.manual_seed(0)
    model = torchvision.models.{arch}()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over the batch below
    model.train()
    with torch.no_grad():
        model((torch.rand(8, 3, 224, 224, generator=torch.Generator().manual_seed(3)) - 0.45) / 0.225)
    return model.eval()
"""


def switched(
    project: Path, switch: str, rounds: int, runs: int, threads: int, precision: str = "fp32"
) -> tuple[list[dict], list[dict]]:
    """The runner's --bench results with one of the library's switches (TORCH_DEPLOY_REWRITES,
    TORCH_DEPLOY_CHANNELS_LAST) on and off (=0), rounds alternating: (on, off), round by round."""
    on, off = [], []
    for _ in range(rounds):
        off.append(runner_bench(project, "onednn", runs, threads, precision=precision, **{switch: "0"}))
        on.append(runner_bench(project, "onednn", runs, threads, precision=precision, **{switch: "1"}))
    return on, off


def rewrite_rows(arch: str, project: Path, rounds: int, runs: int, threads: int) -> list[tuple[str, str, str]]:
    """The oneDNN Graph rewrites (docs/performance.md), which apply in fp32: the runner's p50 with them against without
    them (TORCH_DEPLOY_REWRITES=0), rounds alternating, and the partitions and operators outside them."""
    with_them, without = switched(project, "TORCH_DEPLOY_REWRITES", rounds, runs, threads)
    p50 = [statistics.median(b["p50_ms"] for b in benches) for benches in (with_them, without)]
    counts = [f"{b[0]['fused_partitions']} / {b[0]['unfused_operators']}" for b in (without, with_them)]
    return [
        (f"{arch}: C++ fp32 p50 with / without the rewrites", f"{p50[0]:.2f} ms / {p50[1]:.2f} ms = {p50[0] / p50[1]:.2f}",
         "info"),
        (f"{arch}: partitions / operators outside them", f"{counts[0]} without, {counts[1]} with the rewrites", "info"),
    ]  # fmt: skip


def layout_rows(arch: str, project: Path, rounds: int, runs: int, threads: int) -> list[tuple[str, str, str]]:
    """The runner's channels-last images (docs/performance.md): its p50 with them against the inputs as given
    (TORCH_DEPLOY_CHANNELS_LAST=0), in fp32 and bf16, rounds alternating, and the median of the rounds' ratios."""
    rows = []
    for precision in ("fp32", "bf16"):
        on, off = switched(project, "TORCH_DEPLOY_CHANNELS_LAST", rounds, runs, threads, precision)
        ours, given = [b["p50_ms"] for b in on], [b["p50_ms"] for b in off]
        ratio = statistics.median(a / b for a, b in zip(ours, given, strict=True))
        label = f"{arch}: C++ {precision} p50 channels-last / inputs as given"
        value = f"{statistics.median(ours):.2f} ms / {statistics.median(given):.2f} ms, ratio {ratio:.2f}"
        rows.append((label, value, "info"))
    return rows


def peer_rows(work: Path, rounds: int, runs: int, threads: int) -> list[tuple[str, str, str]]:
    """Our runner against ONNX Runtime and OpenVINO, per model in PEER_MODELS (see the module's docstring)."""
    rows = []
    for arch in PEER_MODELS:
        (work / f"{arch}.py").write_text(RECALIBRATED.format(arch=arch))
        run([sys.executable, "-m", "tsgen", "new", arch, "--model", f"{work / arch}.py:make", "--precision", "bf16",
             "--no-build", "--no-git"], work)  # fmt: skip
        project = work / arch
        # int8 calibrated on 16 random images (the inputs' distribution here), with the gate wide enough for these
        # random-weight models: resnet18, efficientnet_b0 and mobilenet_v3_small drift about 5, 7 and 14 % of their
        # largest output in int8, and OpenVINO's NNCF int8 about 5, 12 and 15 % (calibrated on one input alike).
        calibration = "import torch; torch.save([torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(i))"
        run([sys.executable, "-c", f"{calibration} for i in range(16)], 'calibration.pt')"], project)
        config = json.loads((project / "deploy.json").read_text())
        int8 = {"formats": ["torchscript", "aoti_int8"], "calibration": "calibration.pt", "int8_max_drift": 0.25}
        (project / "deploy.json").write_text(json.dumps({**config, **int8}, indent=2))
        with (project / "requirements.txt").open("a") as requirements:
            requirements.write("torchao\n")  # the int8 format's quantizer (make requirements asks for it)
        run(["make", "verify"], project)
        rows += rewrite_rows(arch, project, rounds, runs, threads)
        rows += layout_rows(arch, project, rounds, runs, threads)
        benches = []
        for _ in range(rounds):
            bench = ["make", "bench", f"BENCH_RUNS={runs}", f"BENCH_THREADS={threads}", "BENCH_ARGS=--emulate-bf16"]
            run(bench, project)
            benches.append(json.loads((project / "bench/results.json").read_text()))
        names = benches[0]["variants"]
        if "OpenVINO" not in names:
            raise SystemExit("benchmark step failed: onnxruntime, openvino and onnx are not installed; run setup.sh")
        p50 = {name: statistics.median(b["variants"][name]["p50_ms"] for b in benches) for name in names}
        diff = {name: names[name]["max_abs_diff_from_ours"] for name in names}
        relative = {name: names[name]["relative_diff_from_ours"] for name in names}
        cpp = p50["C++ model.pt (onednn)"]
        peer = min(("ONNX Runtime", "OpenVINO"), key=p50.__getitem__)
        cpp_bf16_name = next(name for name in names if name.startswith("C++ model.pt bf16"))
        cpp_bf16, ov_bf16 = p50[cpp_bf16_name], p50["OpenVINO bf16"]
        cpp_int8, ov_int8 = p50["C++ model_int8.pt2"], p50["OpenVINO int8 (NNCF)"]
        native = benches[0]["native_bf16"]
        rows += [
            (f"{arch}: C++ fp32 p50 / faster peer", f"{cpp:.2f} ms / {p50[peer]:.2f} ms ({peer}) = {cpp / p50[peer]:.2f}",
             "<= 0.95"),
            (f"{arch}: ORT / OpenVINO fp32 p50", f"{p50['ONNX Runtime']:.2f} ms / {p50['OpenVINO']:.2f} ms", "info"),
            (f"{arch}: C++ bf16 p50 / OpenVINO bf16" + ("" if native else " (emulated)"),
             f"{cpp_bf16:.2f} ms / {ov_bf16:.2f} ms = {cpp_bf16 / ov_bf16:.2f}", "<= 1.0" if native else "info"),
            (f"{arch}: C++ bf16 / fp32 p50", f"{cpp_bf16 / cpp:.2f}", "info"),
            (f"{arch}: bf16 drift from fp32, C++ / OpenVINO",
             f"{diff[cpp_bf16_name]:.3e} / {diff['OpenVINO bf16']:.3e} (max abs diff)", "info"),
            (f"{arch}: C++ int8 p50 / OpenVINO int8 (NNCF)", f"{cpp_int8:.2f} ms / {ov_int8:.2f} ms = "
             f"{cpp_int8 / ov_int8:.2f}", "info"),
            (f"{arch}: C++ int8 / fp32 p50", f"{cpp_int8 / cpp:.2f}", "info"),
            (f"{arch}: int8 drift from fp32, C++ / OpenVINO",
             f"{relative['C++ model_int8.pt2']:.3e} / {relative['OpenVINO int8 (NNCF)']:.3e} (of the largest |value|)", "info"),
        ]  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per measurement (median); default 3")
    parser.add_argument("--runs", type=int, default=100, help="timed inferences per round; default 100")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads; default 2")
    parser.add_argument("--formats-only", action="store_true", help="only the TorchScript / AOTInductor rows")
    parser.add_argument("--peers-only", action="store_true", help="only the ONNX Runtime / OpenVINO rows")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tsgen-bench-"))
    rows: list[tuple[str, str, str]] = []
    try:
        if args.formats_only or args.peers_only:
            rows += format_rows(work, args.rounds, args.runs, args.threads) if args.formats_only else []
            rows += peer_rows(work, args.rounds, args.runs, args.threads) if args.peers_only else []
            return report(rows, args)
        # Generation: tsgen new --no-build vs bare cookiecutter (both render the same template, hooks included).
        cookiecutter = shutil.which("cookiecutter", path=str(Path(sys.executable).parent)) or "cookiecutter"

        def fresh(name: str, command: list[str]) -> float:
            shutil.rmtree(work / name, ignore_errors=True)
            return seconds(lambda: run(command + ["-o", str(work / name)], work))

        new_s = median_of(args.rounds, lambda: fresh("new", [sys.executable, "-m", "tsgen", "new", "p", "--no-build"]))
        bare_s = median_of(
            args.rounds, lambda: fresh("bare", [cookiecutter, str(REPO), "--no-input", "first_build=no"])
        )
        rows.append(
            (
                "tsgen new --no-build / bare cookiecutter",
                f"{new_s:.2f} s / {bare_s:.2f} s = {new_s / bare_s:.2f}",
                "<= 1.3",
            )
        )

        # Builds, as a plain install makes them: cold (no ccache) vs a second project with ccache warm (the ccache
        # that came with tsgen: the projects' environment has no other), and rebuilds after editing one source.
        plain = plain_install(work)
        path = os.pathsep.join([str(plain), *(p for p in os.environ["PATH"].split(os.pathsep) if "ccache" not in p)])
        for name in ("first", "second"):
            run([str(plain / "tsgen"), "new", name, "--no-build", "--python", sys.executable], work, PATH=path)
        first, second = work / "first", work / "second"
        recorded = (first / "local.mk").read_text()
        ccache = next(line.split(":= ", 1)[1] for line in recorded.splitlines() if line.startswith("CCACHE :="))
        assert ccache.startswith(str(plain)), f"the plain install's ccache was not recorded: {ccache}"
        cold = median_of(
            args.rounds,
            lambda: (
                shutil.rmtree(first / "build", ignore_errors=True),
                seconds(lambda: run(["make", "build"], first, CCACHE_DISABLE="1", PATH=path)),
            )[1],
        )
        run(["make", "build"], first, PATH=path)  # fill ccache
        warm = median_of(
            args.rounds,
            lambda: (
                shutil.rmtree(second / "build", ignore_errors=True),
                seconds(lambda: run(["make", "build"], second, PATH=path)),
            )[1],
        )
        rows.append(
            ("second project build (ccache) / cold build", f"{warm:.2f} s / {cold:.2f} s = {warm / cold:.3f}", "<= 0.1")
        )

        # The library's sources are the runtime's, compiled in the project's build (time restored after each edit).
        runtime = Path(run([sys.executable, "-m", "torch_deploy", "--cmakedir"], first).stdout.strip()).parent

        def edit(source: str) -> float:
            file = runtime / source
            times = file.stat()
            file.touch()
            try:
                return seconds(lambda: run(["make", "build"], first, CCACHE_DISABLE="1", PATH=path))
            finally:
                os.utime(file, ns=(times.st_atime_ns, times.st_mtime_ns))

        for source in ("src/compare.cpp", "src/script.cpp"):
            rebuild = median_of(args.rounds, lambda source=source: edit(source))
            rows.append(
                (f"rebuild after editing {Path(source).name} / cold", f"{rebuild:.1f} s / {cold:.1f} s", "info")
            )

        # make verify: first run (export + tests; the build is there) vs a rerun with nothing changed.
        verify_first = seconds(lambda: run(["make", "verify"], first))
        verify_again = median_of(args.rounds, lambda: seconds(lambda: run(["make", "verify"], first)))
        rows.append(
            (
                "make verify rerun / first run",
                f"{verify_again:.2f} s / {verify_first:.2f} s = {verify_again / verify_first:.3f}",
                "<= 0.2",
            )
        )

        # Inference: the optimisation ladder, then `make bench` (C++ vs Python, GEMM floor), medians of rounds.
        ladder = {
            mode: median_of(args.rounds, lambda m=mode: runner_p50(first, m, args.runs, args.threads))
            for mode in ("none", "ofi", "onednn")
        }
        benches = []
        for _ in range(args.rounds):
            run(["make", "bench", f"BENCH_RUNS={args.runs}", f"BENCH_THREADS={args.threads}"], first)
            benches.append(json.loads((first / "bench/results.json").read_text()))
        variants = {
            name: statistics.median(b["variants"][name]["p50_ms"] for b in benches) for name in benches[0]["variants"]
        }
        eager = variants["Python eager"]
        cpp = next(value for name, value in variants.items() if name.startswith("C++"))
        floor = statistics.median(b["floor_ms"] for b in benches)
        gemm = statistics.median(b["gemm_gflops"] for b in benches)
        for mode, p50 in ladder.items():
            rows.append((f"C++ p50 --optimize {mode}", f"{p50:.2f} ms ({p50 / eager:.2f} x eager)", "info"))
        rows.append(
            ("Python eager / TorchScript p50", f"{eager:.2f} ms / {variants['Python TorchScript']:.2f} ms", "info")
        )
        rows.append(("C++ p50 / Python eager p50", f"{cpp:.2f} ms / {eager:.2f} ms = {cpp / eager:.2f}", "<= 0.75"))
        rows.append(
            (
                "GEMM floor / C++ p50",
                f"{floor:.2f} ms / {cpp:.2f} ms = {floor / cpp:.2f} ({gemm:.0f} GFLOP/s)",
                ">= 0.80",
            )
        )
        rows += format_rows(work, args.rounds, args.runs, args.threads)
        rows += peer_rows(work, args.rounds, args.runs, args.threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    return report(rows, args)


def report(rows: list[tuple[str, str, str]], args: argparse.Namespace) -> int:
    width = max(len(row[0]) for row in rows)
    print(f"\n{'measure':<{width}}  {'goal':>8}  measured (median of {args.rounds} rounds, {args.threads} threads)")
    for name, measured, goal in rows:
        print(f"{name:<{width}}  {goal:>8}  {measured}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
