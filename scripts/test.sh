#!/usr/bin/env bash
# Set up both torch lanes and run every test tier, two tests at a time. Extra arguments go to pytest. The tiers, by
# what they need:
#   tests/unit        neither torch nor CMake (tsgen and the test tools alone)
#   tests/bake        real cookiecutter renders of the template
#   tests/with_torch  a lane venv's torch (made by scripts/setup.sh), no C++ build
#   tests/with_build  torch, CMake and a compiler: end-to-end builds of real projects (minutes)
#   scripts/test.sh tests/unit tests/bake tests/with_torch     every tier that builds no C++
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Two tests at a time (TEST_WORKERS): most of an end-to-end test is one process at a time (an export, CMake's
# configure, a project's tests, CPack's gzip), so two keep both cores busy. Each worker makes its own session
# fixtures: with --dist loadgroup the tests sharing a project that a fixture builds run on one worker, so it is built
# once (tests/conftest.py's BUILT_ONCE).
exec .venvs/default/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadgroup "$@"
