#!/usr/bin/env bash
# Create (or update) the virtual environments of both torch lanes; safe to run again, fast when nothing changed.
#
#   .venvs/default      torch 2.14.1 + torchvision 0.29.1 (CUDA 13 wheels), tsgen and its runtime (tsgen-runtime)
#                       from this checkout, test tools
#   .venvs/cpu          torch 2.13.0 CPU wheel, pytest and the runtime: the cpu lane's Python and libtorch (C++17)
#   .venvs/cookiecutter cookiecutter alone: proves the template works with nothing else installed
#   libjpeg's and libpng's development files (apt-get), which ts-infer --image decodes images with
#
#   scripts/setup.sh            all three
#   scripts/setup.sh default    one lane
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# The test tools: pytest-xdist for two tests at a time (scripts/test.sh), tritonclient for Triton's config schema,
# check-jsonschema for GitHub's workflow schema, transformers for a traced Hugging Face model, torchao for the int8
# format (its quantizer), and the runtimes a generated project's make bench compares with (its
# requirements-peers.txt). pytest below 9.2: its structured node ids undo pytest-xdist 3.8's --dist loadgroup, which
# then spreads the tests of a group silently (pytest-dev/pytest-xdist#1386), and each worker builds every shared project.
PEERS="onnxruntime openvino onnx nncf"
TEST_TOOLS="pytest>=8,<9.2 pytest-xdist hypothesis ruff clang-format clang-tidy mypy matplotlib tritonclient[grpc] check-jsonschema transformers torchao $PEERS"
declare -A REQUIREMENTS=(
  [default]="torch==2.14.1 torchvision==0.29.1 $TEST_TOOLS"
  [cpu]="torch==2.13.0 pytest>=8 pillow"
  [cookiecutter]="cookiecutter>=2.5"
)
# What each venv takes on disk, with pip's unpacking, in GB (the CUDA wheels are 5.5 GB installed).
declare -A NEEDS_GB=([default]=7 [cpu]=2 [cookiecutter]=1)

# Whether a lane's venv is missing or was made for other requirements.
outdated() { [[ ! -x .venvs/$1/bin/python || "$(cat ".venvs/$1/.requirements" 2>/dev/null)" != "${REQUIREMENTS[$1]}" ]]; }

make_venv() {
  local lane=$1 venv=.venvs/$1 stamp=.venvs/$1/.requirements
  if outdated "$lane"; then
    echo "==> setup: creating $venv (${REQUIREMENTS[$lane]})"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    # shellcheck disable=SC2086  # the requirement list is meant to split
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check ${REQUIREMENTS[$lane]} \
      2> >(grep -v "^WARNING: Location" >&2)
    echo "${REQUIREMENTS[$lane]}" > "$stamp"
  fi
  # Real (non-editable) installs, as a user gets them: the tests then prove what the wheels carry. The runtime first:
  # tsgen depends on it, and the projects of both lanes pin it.
  local pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
  if [[ $lane != cookiecutter ]]; then
    "${pip[@]}" --force-reinstall --no-deps ./runtime 2> >(grep -v "^WARNING: Location" >&2)
  fi
  if [[ $lane == default ]]; then
    "${pip[@]}" --force-reinstall --no-deps . 2> >(grep -v "^WARNING: Location" >&2)
    "${pip[@]}" . 2> >(grep -v "^WARNING: Location" >&2)
  fi
}

# Two small C libraries (and zlib, which libpng brings): their headers, and the libraries to link.
install_image_decoders() {
  [[ -f /usr/include/jpeglib.h && -f /usr/include/png.h ]] && return
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    echo "==> setup: installing libjpeg's and libpng's development files (libjpeg-dev libpng-dev)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libjpeg-dev libpng-dev >/dev/null
  else
    echo "setup: libjpeg's and libpng's development files are missing; install libjpeg-dev and libpng-dev (the image tests need them)" >&2
    exit 1
  fi
}

lanes=("$@")
[[ ${#lanes[@]} -gt 0 ]] || lanes=(default cpu cookiecutter)
[[ " ${lanes[*]} " != *" default "* ]] || install_image_decoders
needed_gb=0
for lane in "${lanes[@]}"; do
  [[ -n ${REQUIREMENTS[$lane]:-} ]] || { echo "setup: unknown lane '$lane'; use default, cpu or cookiecutter" >&2; exit 2; }
  if outdated "$lane"; then
    needed_gb=$((needed_gb + ${NEEDS_GB[$lane]}))
  fi
done
# Said before pip starts, rather than pip's "No space left on device" halfway through.
free_gb=$(df -Pk . | awk 'NR == 2 { print int($4 / 1048576) }')
if [[ -n $free_gb && $free_gb -lt $needed_gb ]]; then
  echo "setup: $free_gb GB free here, and the venvs to make need about $needed_gb GB; free some space and run scripts/setup.sh again" >&2
  exit 1
fi
# The lanes at once: pip unpacking one venv's wheels keeps about one core busy, and the default lane's (7 GB) takes
# longest, so the others are made beside it rather than after it.
made=()
for lane in "${lanes[@]}"; do
  make_venv "$lane" &
  made+=("$lane:$!")
done
failed=()
for entry in "${made[@]}"; do
  wait "${entry#*:}" || failed+=("${entry%%:*}")
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "setup: making the venv of ${failed[*]} failed (the message above); run scripts/setup.sh again once it is fixed" >&2
  exit 1
fi
