#!/usr/bin/env bash
# Set up both torch lanes and run every test tier (unit, bake, end-to-end). Extra arguments go to pytest:
#   scripts/test.sh -m "not e2e"     unit and bake tests only (seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venvs/default/bin/python -m pytest "$@"
