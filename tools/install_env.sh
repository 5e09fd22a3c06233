#!/usr/bin/env bash
# Creates (or completes) the project's virtual environment with the verified
# OpenMMLab stack; see docs/install.md for why each pin is what it is.
#
# Usage: bash tools/install_env.sh [VENV]   (default .venv)
# Env:   MMIMB_WHEELHOUSE  folder holding a prebuilt mmcv wheel
#                          (default ../shared/wheels when it exists)
#        PYTHON            interpreter used to create the venv (default python3)
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=${1:-.venv}
PYTHON=${PYTHON:-python3}
if [ -z "${MMIMB_WHEELHOUSE:-}" ] && [ -d ../shared/wheels ]; then
  MMIMB_WHEELHOUSE=$(cd ../shared/wheels && pwd)
fi

# torch==2.13.0 alone resolves to a local CPU-only '+cpu' wheel that breaks
# torchvision ('operator torchvision::nms does not exist'); exclude it.
TORCH_REQ='torch==2.13.0,!=2.13.0+cpu'
TORCHVISION_REQ='torchvision==0.28.0'
# mmcv's build and mmengine's pkg:: config lookup need pkg_resources (gone in 81).
SETUPTOOLS_REQ='setuptools>=77,<81'
MMCV_REQ='mmcv==2.1.0'

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

"${PIP[@]}" install -q "$SETUPTOOLS_REQ" wheel ninja
"${PIP[@]}" install -q "$TORCH_REQ" "$TORCHVISION_REQ"

if "$PY" -c "import mmcv.ops" >/dev/null 2>&1; then
  echo "mmcv with compiled ops already installed"
elif [ -n "${MMIMB_WHEELHOUSE:-}" ] &&
    "${PIP[@]}" install -q --no-deps --no-index --find-links "$MMIMB_WHEELHOUSE" "$MMCV_REQ"; then
  echo "Installed mmcv from the wheel folder $MMIMB_WHEELHOUSE"
else
  echo "No usable mmcv wheel (set MMIMB_WHEELHOUSE to a folder holding one)."
  echo "Building mmcv 2.1.0 with its compiled ops from source: this takes about 25 minutes on 2 cores."
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    "${PIP[@]}" install --no-build-isolation "$MMCV_REQ"
fi

# No build isolation: an isolated build would pull a torch that is not ours.
"${PIP[@]}" install -q --no-build-isolation -e ".[dev]"
"$PY" -c "import mmcv.ops, mmseg.models, mmpretrain.models, mmimb; print('mmimb', mmimb.__version__, 'installed in $VENV')"
