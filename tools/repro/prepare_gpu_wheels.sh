#!/usr/bin/env bash
# Gathers here, into .gpu/carry/ (ignored by git), what the GPU pack needs
# on the GPU machine and cannot fetch there (no network; Python 3.12 with
# torch 2.11 and no OpenMMLab package, ../shared/ENVIRONMENT.md):
#   wheels/        the OpenMMLab stack's pure-Python wheels for Python 3.12
#                  and their needs that the machine lacks (no --deps: every
#                  name is listed below; tools/repro/setup_gpu.sh installs
#                  them without an index)
#   mmcv-2.1.0.tar.gz  mmcv's source, built there against its torch
#   cifar10-jpg.tar.gz the CIFAR-10 JPEG release (20 MB), for part 1
# and prints the total against the 64 MiB that travels with a device call.
#
# Usage, in the checkout the session was started in (the device tool sends
# that one): bash tools/repro/prepare_gpu_wheels.sh
# Env: PYTHON (default .venv/bin/python), CIFAR_ARCHIVE (default
#      ../shared/data/cifar10-jpg.tar.gz), MMCV_WHEEL (a cp312 mmcv wheel
#      built on the GPU machine earlier; setup_gpu.sh then skips the build).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
DEST=.gpu/carry
CIFAR_ARCHIVE=${CIFAR_ARCHIVE:-../shared/data/cifar10-jpg.tar.gz}
# The versions verified together on the development machine (Python 3.11,
# docs/install.md), all with Python 3.12 wheels. Needs of these that the GPU
# machine already has (numpy, matplotlib, scipy, opencv, rich, pyyaml,
# regex, packaging, pillow, einops, click, markdown, zipp, tqdm) are left
# out; mat4py is not imported by what the pack runs.
WHEELS=(
  mmengine==0.10.7 mmsegmentation==1.2.2 mmpretrain==1.2.0
  addict==2.4.0 yapf==0.43.0 platformdirs==4.14.9 termcolor==3.3.0
  ftfy==6.3.1 wcwidth==0.9.4 prettytable==3.18.0
  model-index==0.1.11 ordered-set==4.1.0
  importlib_metadata==10.2.0 lazy-importer==0.1.0
  # pkg_resources, for mmcv's setup.py and mmengine's pkg:: config lookup.
  setuptools==80.10.2
)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64)

mkdir -p "$DEST/wheels"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${PLATFORMS[@]/#/--platform=}" -d "$DEST/wheels" \
  "${WHEELS[@]}"
[ -f "$DEST/mmcv-2.1.0.tar.gz" ] ||
  "$PY" -m pip download -q --no-deps --no-binary=:all: -d "$DEST" mmcv==2.1.0
if [ -n "${MMCV_WHEEL:-}" ]; then
  cp "$MMCV_WHEEL" "$DEST/wheels/"
fi
if [ -f "$CIFAR_ARCHIVE" ]; then
  cp -u "$CIFAR_ARCHIVE" "$DEST/cifar10-jpg.tar.gz"
else
  echo "warning: $CIFAR_ARCHIVE not found: part 1 (cifar) will have no data" >&2
fi

# Exactly one version of each package (two would stop the install there).
dupes=$(ls "$DEST/wheels" | sed -E 's/-[0-9].*//' | tr 'A-Z-' 'a-z_' | sort | uniq -d)
if [ -n "$dupes" ]; then
  echo "error: several versions in $DEST/wheels of: $dupes; remove the old ones" >&2
  exit 1
fi
carry=$(du -sb "$DEST" | cut -f1)
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)
total=$((carry + tree + ${untracked:-0}))
ls -l "$DEST" "$DEST/wheels"
echo "$DEST: $((carry / 1024 / 1024)) MiB; with the working tree" \
  "$(( (tree + ${untracked:-0}) / 1024 / 1024 )) MiB: $((total / 1024 / 1024)) MiB" \
  "of the 64 MiB a device call carries"
if [ "$total" -gt $((64 * 1024 * 1024)) ]; then
  echo "error: over 64 MiB: a device call would refuse it" >&2
  exit 1
fi
