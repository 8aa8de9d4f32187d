#!/usr/bin/env bash
# The GPU end to end, in one command, on a machine with an NVIDIA GPU (at most 8 minutes there): tsgen generates
# resnet18 (TorchScript and .pt2) and a model of two inputs for the GPU, builds each against the CUDA build of torch
# that this machine's Python has, proves the C++ output on the GPU equals Python's on the GPU (make verify DEVICE=cuda),
# runs one Model from 8 threads on the GPU, and times the GPU beside the CPU (make bench). One summary line per check.
# Where there is no GPU it runs the part that needs none (the same projects built for the GPU, checked on the CPU) and
# says in one line that the GPU part was skipped.
#
#   scripts/gpu-check.sh --make-wheels DIR [--python-version 3.12]   here, with the package index: tsgen, its runtime and
#                                                                     every package they need, as wheels, into DIR
#   scripts/gpu-check.sh --wheels DIR [--python PY] [--workdir DIR]  there, with no network: the check
#
# Needs there: a Python with a CUDA build of torch and torchvision (torch 2.11 or newer; PYTHON or --python, else
# python3), CMake 3.21 or newer and a C++ compiler. tsgen is installed from DIR into a venv over that Python, which
# gives it torch (nothing is downloaded). Exits 0 only when every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-python3}
WHEELS=""
WORKDIR=""
MAKE_WHEELS=""
PYTHON_VERSION=3.12

usage() { echo "usage: scripts/gpu-check.sh --wheels DIR [--python PY] [--workdir DIR] | --make-wheels DIR [--python-version X.Y]" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --wheels) WHEELS=$(realpath "${2:?}"); shift 2 ;;
    --python) PYTHON=${2:?}; shift 2 ;;
    --workdir) WORKDIR=${2:?}; shift 2 ;;
    --make-wheels) MAKE_WHEELS=${2:?}; shift 2 ;;
    --python-version) PYTHON_VERSION=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done

# --- the wheel folder (here, where pip reaches the package index) ---------------------------------------------------
if [[ -n $MAKE_WHEELS ]]; then
  mkdir -p "$MAKE_WHEELS"
  python3 -m pip wheel --quiet --no-deps --wheel-dir "$MAKE_WHEELS" ./runtime .
  # The closure for the other machine's Python: pure-Python wheels, and binary ones for its version (PyYAML,
  # MarkupSafe) and any manylinux x86-64 (cmake, ninja, ccache). Packages it has already are kept there.
  python3 -m pip download --quiet --dest "$MAKE_WHEELS" --find-links "$MAKE_WHEELS" --only-binary=:all: \
    --python-version "$PYTHON_VERSION" --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    "$(ls "$MAKE_WHEELS"/tsgen-[0-9]*.whl)"
  echo "gpu-check: wheels for Python $PYTHON_VERSION in $MAKE_WHEELS ($(ls "$MAKE_WHEELS" | wc -l) files); there: scripts/gpu-check.sh --wheels $MAKE_WHEELS"
  exit 0
fi
[[ -n $WHEELS && -d $WHEELS ]] || { echo "gpu-check: --wheels DIR is missing: make it with scripts/gpu-check.sh --make-wheels DIR" >&2; exit 2; }

started=$SECONDS
WORKDIR=${WORKDIR:-$(mktemp -d -t gpu-check-XXXXXX)}
mkdir -p "$WORKDIR"
WORKDIR=$(realpath "$WORKDIR")
LOGS=$WORKDIR/logs
mkdir -p "$LOGS"
failures=0
summary=()
say() { echo "gpu-check: $*"; }
# check NAME LOG COMMAND...: run one check, its output in LOG; one PASS or FAIL line (with the log's last lines).
check() {
  local name=$1 log=$2
  shift 2
  if "$@" > "$log" 2>&1; then
    summary+=("PASS: $name")
    say "PASS: $name"
  else
    failures=$((failures + 1))
    summary+=("FAIL: $name (log: $log)")
    say "FAIL: $name; the end of $log:"
    tail -n 15 "$log" | sed 's/^/    /'
  fi
}

# --- the Python, its torch, and a venv with tsgen from the wheels ---------------------------------------------------
command -v "$PYTHON" >/dev/null || { say "FAIL: Python '$PYTHON' not found; give the one with torch: --python PATH"; exit 1; }
read -r torch_version torch_cuda vision < <("$PYTHON" - <<'EOF'
import importlib.util
import torch
vision = importlib.util.find_spec("torchvision") is not None
print(torch.__version__, torch.version.cuda or "none", "yes" if vision else "no")
EOF
) || { say "FAIL: $PYTHON cannot import torch; give the Python with a CUDA build of torch: --python PATH"; exit 1; }
[[ $vision == yes ]] || { say "FAIL: $PYTHON has no torchvision, which resnet18 needs; install it there"; exit 1; }
if ! "$PYTHON" -c "import sys, torch; sys.exit(tuple(map(int, torch.__version__.split('.')[:2])) < (2, 11))"; then
  say "FAIL: torch $torch_version of $PYTHON is older than 2.11; use a Python with torch 2.11 or newer"
  exit 1
fi
# A venv that sees that Python's packages (a .pth file: --system-site-packages would see its base interpreter's only,
# when it is a venv itself), with tsgen and what it lacks installed from the wheels, over them.
VENV=$WORKDIR/venv
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$PYTHON" -c "import site; print('\n'.join(site.getsitepackages()))" > "$("$VENV/bin/python" -c "import site; print(site.getsitepackages()[0])")/gpu-check-base.pth"
install() { "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-index --find-links "$WHEELS" "$@"; }
{ install --no-deps --force-reinstall tsgen tsgen-runtime && install tsgen; } > "$LOGS/install.log" 2>&1 ||
  { say "FAIL: tsgen does not install from $WHEELS (log: $LOGS/install.log)"; tail -5 "$LOGS/install.log"; exit 1; }
PY=$VENV/bin/python
TSGEN=$VENV/bin/tsgen
say "Python $("$PY" -c 'import sys; print(sys.version.split()[0])'), torch $torch_version (CUDA $torch_cuda), tsgen from $WHEELS; work in $WORKDIR"

# The GPU, as the runtime sees it (the NVIDIA driver, asked the way the C++ library asks it), and torch's view.
if missing=$("$PY" -m torch_deploy device --check cuda); then
  GPU=cuda
  gpu_name=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0))")
  say "GPU: $gpu_name"
else
  GPU=""
  missing=${missing#device: FAIL: cuda: }
  missing=${missing%%; run it where*}
fi
[[ $torch_cuda != none ]] || { say "FAIL: torch $torch_version of $PYTHON is a CPU build; give a Python with a CUDA build of torch: --python PATH"; exit 1; }
DEVICE=${GPU:-cpu}

# --- the projects: resnet18 in both formats, and two inputs with a dict output and a dynamic batch ------------------
# Without a GPU the .pt2 cannot be compiled for one (AOTInductor compiles for the device it exports on): TorchScript
# alone there, built for the GPU all the same and checked on the CPU.
formats=$([[ -n $GPU ]] && echo both || echo torchscript)
cat > "$WORKDIR/pair.py" <<'EOF'
import torch


class PairNet(torch.nn.Module):
    """Features and a per-row weight in, a dict of scores and their norms out."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 10)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> dict[str, torch.Tensor]:
        scores = self.fc(x) * w
        return {"scores": scores, "norm": (scores * scores).sum(dim=1).sqrt()}


def make():
    return PairNet(), (torch.rand(2, 4), torch.rand(2, 1))
EOF
projects=$WORKDIR/projects
rm -rf "$projects"
(cd "$WORKDIR" && "$TSGEN" new resnet18 --device cuda --formats "$formats" --no-build --no-git -o "$projects" \
  && "$TSGEN" new pair --model pair.py:make --device cuda --formats "$formats" --dynamic-batch --no-build --no-git \
       -o "$projects") > "$LOGS/new.log" 2>&1 || { say "FAIL: tsgen new (log: $LOGS/new.log)"; tail -5 "$LOGS/new.log"; exit 1; }
# make uses the venv's Python (its torch is the system's) and, through CMake, that torch's libtorch. The projects'
# device is cuda, so their build is for the GPU (it links libtorch_cuda), also where the checks run on the CPU.
verify_for_gpu() {
  make -C "$projects/$1" verify DEVICE="$DEVICE" PYTHON="$PY"
  # ldd's whole output first: under pipefail, grep -q leaving at its first match can kill ldd with SIGPIPE.
  local linked
  linked=$(ldd "$projects/$1/build/ts-infer")
  [[ $linked == *"libtorch_cuda.so => "* ]] || { echo "build/ts-infer links no libtorch_cuda"; return 1; }
}
for project in resnet18 pair; do
  check "$project: make verify DEVICE=$DEVICE (formats $formats, built for the GPU)" "$LOGS/$project-verify.log" \
    verify_for_gpu "$project"
done
grep -h "^verify: PASS" "$LOGS"/*-verify.log | sed 's/^/    /' || true

# --- one Model from 8 threads at once, on the device -------------------------------------------------------------
resnet=$projects/resnet18
threads_check() {
  make -C "$resnet" install PREFIX="$WORKDIR/install" DEVICE="$DEVICE" PYTHON="$PY"
  mkdir -p "$WORKDIR/threads"
  cp "$REPO/tests/with_build/threads.cpp" "$WORKDIR/threads/"
  cat > "$WORKDIR/threads/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.21)
project(threads LANGUAGES CXX)
find_package(TorchDeploy CONFIG REQUIRED)
find_package(Threads REQUIRED)
add_executable(threads threads.cpp)
target_link_libraries(threads PRIVATE TorchDeploy::runtime Threads::Threads)
EOF
  cmake -S "$WORKDIR/threads" -B "$WORKDIR/threads/build" -DCMAKE_PREFIX_PATH="$WORKDIR/install" -DCMAKE_BUILD_TYPE=Release
  cmake --build "$WORKDIR/threads/build"
  local share=$WORKDIR/install/share/resnet18 expected=expected.pt
  [[ -z $GPU ]] || expected=expected_cuda.pt
  "$WORKDIR/threads/build/threads" "$share/model.pt" "$share/input.pt" "$share/$expected" 8 5 "$DEVICE"
  if [[ -n $GPU ]]; then
    "$WORKDIR/threads/build/threads" "$share/model.pt2" "$share/input.pt" "$share/expected_aoti.pt" 8 5 "$DEVICE"
  fi
}
check "resnet18: one Model from 8 threads at once, 5 runs each, on $DEVICE" "$LOGS/threads.log" threads_check
grep -h "^threads:" "$LOGS/threads.log" | sed 's/^/    /' || true

# --- the GPU beside the CPU --------------------------------------------------------------------------------------
if [[ -n $GPU ]]; then
  check "resnet18: make bench DEVICE=cuda (C++ and Python on the GPU beside the CPU)" "$LOGS/bench.log" \
    make -C "$resnet" bench DEVICE=cuda PYTHON="$PY" BENCH_RUNS=50
  timing=$("$PY" - "$resnet/bench/results.json" <<'EOF' || true
import json, sys
results = json.load(open(sys.argv[1]))
rows = results["variants"]
gpu = next(name for name in rows if name.startswith("C++ ") and name.endswith(" on " + results["device"]))
cpu = next(name for name in rows if name.startswith("C++ ") and " on " not in name)
print(f"{gpu} p50 {rows[gpu]['p50_ms']:.2f} ms; {cpu} on the CPU ({results['threads']} threads) p50 "
      f"{rows[cpu]['p50_ms']:.2f} ms")
EOF
)
  [[ -z $timing ]] || summary+=("resnet18 on $gpu_name: $timing")
fi

# --- summary -----------------------------------------------------------------------------------------------------
echo
for line in "${summary[@]}"; do
  say "$line"
done
[[ -n $GPU ]] || say "GPU part skipped: $missing (the checks above ran on the CPU, with builds for the GPU)"
say "$((SECONDS - started)) s, $failures failed"
[[ $failures -eq 0 ]]
