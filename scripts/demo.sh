#!/usr/bin/env bash
# The main job, end to end: generate the default project (torchvision resnet18) with `tsgen new`, then run its
# `make verify`: export -> build -> C++ on the reference input -> compare with Python -> the project's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh default
rm -rf demo/resnet18_deploy   # demo/ is this script's own folder (ignored by git)
.venvs/default/bin/tsgen new resnet18-deploy --output-dir demo
make -C demo/resnet18_deploy verify
