#!/usr/bin/env bash
# Set up both torch lanes and run every test tier. Extra arguments go to pytest. The tiers, by what they need:
#   tests/unit        neither torch nor CMake (tsgen and the test tools alone)
#   tests/bake        real cookiecutter renders of the template
#   tests/with_torch  a lane venv's torch (made by scripts/setup.sh), no C++ build
#   tests/with_build  torch, CMake and a compiler: end-to-end builds of real projects (minutes)
#   scripts/test.sh tests/unit tests/bake tests/with_torch     every tier that builds no C++
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venvs/default/bin/python -m pytest "$@"
