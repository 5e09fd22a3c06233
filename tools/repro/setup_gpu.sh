#!/usr/bin/env bash
# On the GPU machine (no network, Python 3.12, torch 2.11, no OpenMMLab
# package): installs the wheels carried in .gpu/carry/wheels (from
# tools/repro/prepare_gpu_wheels.sh) into .gpu/site, builds mmcv 2.1.0 with
# its CPU ops against the machine's torch from the carried source (or
# installs a carried cp312 mmcv wheel), checks the imports, and writes
# .gpu/env.sh, which puts .gpu/site and this checkout (mmimb runs from it,
# as in development) on PYTHONPATH. The time of each step is printed.
# A wheel it builds is stripped of debug symbols and copied to $OUT (when
# set) in parts under 16 MB, for a later session to carry
# (cat mmcv-*.whl.part-* > mmcv-...whl; MMCV_WHEEL=... prepare_gpu_wheels.sh).
#
# Usage: bash tools/repro/setup_gpu.sh && . .gpu/env.sh
# Env: PYTHON (default python3), MAX_JOBS (default: all cores).
# Running it again on the same machine only checks the imports.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
CARRY=.gpu/carry
SITE=$PWD/.gpu/site
BUILD=.gpu/build
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
# torch builds extensions with ninja only when it is on PATH (else one file
# at a time); the ninja package keeps its binary beside the interpreter.
BIN=$("$PY" -c 'import os, sys; print(os.path.dirname(sys.executable))')
NINJA=$("$PY" -c 'import ninja, os; print(ninja.BIN_DIR)' 2>/dev/null || true)
export PATH="${NINJA:+$NINJA:}$BIN:$PATH"
cat > .gpu/env.sh <<ENV
export PYTHONPATH="$PYTHONPATH"
export PATH="$PATH"
ENV
check() {
  "$PY" - <<'PY'
import torch, mmcv, mmcv.ops, mmengine, mmseg, mmseg.models, mmpretrain, mmpretrain.models, mmimb
print(f'torch {torch.__version__} (CUDA {torch.version.cuda}, GPU: '
      f'{torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"}), '
      f'mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, '
      f'mmseg {mmseg.__version__}, mmpretrain {mmpretrain.__version__}, '
      f'mmimb {mmimb.__version__} from {mmimb.__file__}')
PY
}
if check 2>/dev/null; then
  echo "setup_gpu: already set up"
  exit 0
fi
step() { echo "setup_gpu: $1 ($(( $(date +%s) - START )) s)"; }
START=$(date +%s)
[ -d "$CARRY/wheels" ] || { echo "error: $CARRY/wheels missing: run tools/repro/prepare_gpu_wheels.sh where the session started and carry .gpu/carry" >&2; exit 1; }
mapfile -t wheels < <(ls "$CARRY"/wheels/*.whl | grep -v '/mmcv-')
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --upgrade --target "$SITE" "${wheels[@]}"
step "installed ${#wheels[@]} wheels into $SITE"

mmcv_ok() { "$PY" -c 'import mmcv.ops' >/dev/null 2>&1; }
carried=$(ls "$CARRY"/wheels/mmcv-2.1.0-cp312-*.whl 2>/dev/null | head -1 || true)
if [ -n "$carried" ] && "$PY" -m pip install -q --no-index --no-deps \
    --no-cache-dir --upgrade --target "$SITE" "$carried" && mmcv_ok; then
  step "installed the carried $carried"
else
  [ -n "$carried" ] && echo "setup_gpu: the carried mmcv wheel does not load here; building"
  include=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  [ -f "$include/Python.h" ] || { echo "error: no Python.h in $include: mmcv cannot be built (carry the Python 3.12 headers, or a built mmcv wheel)" >&2; exit 1; }
  "$PY" -c 'from torch.utils.cpp_extension import is_ninja_available as n; import sys; sys.exit(not n())' ||
    echo "setup_gpu: warning: no ninja on PATH: mmcv compiles one file at a time"
  rm -rf "$BUILD"
  mkdir -p "$BUILD"
  # CPU ops only: mmseg imports mmcv.ops, and no mmimb model needs an mmcv
  # CUDA op. mmcv's setup.py builds the CUDA ops whenever torch sees a GPU,
  # whatever FORCE_CUDA says, so the build does not see it.
  CUDA_VISIBLE_DEVICES= MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    "$PY" -m pip wheel -q --no-deps --no-build-isolation --no-index \
    -w "$BUILD" "$CARRY/mmcv-2.1.0.tar.gz"
  built=$(ls "$BUILD"/mmcv-2.1.0-*.whl)
  step "built $built"
  if command -v strip >/dev/null && "$PY" -m wheel version >/dev/null 2>&1; then
    (cd "$BUILD" && "$PY" -m wheel unpack -d unpacked "$(basename "$built")" >/dev/null &&
      find unpacked -name '*.so' -exec strip --strip-debug {} + &&
      rm "$(basename "$built")" && "$PY" -m wheel pack -d . unpacked/* >/dev/null &&
      rm -rf unpacked)
    built=$(ls "$BUILD"/mmcv-2.1.0-*.whl)
    step "stripped it: $(du -h "$built" | cut -f1)"
  fi
  "$PY" -m pip install -q --no-index --no-deps --no-cache-dir --upgrade \
    --target "$SITE" "$built"
  mmcv_ok || { echo "error: the built mmcv does not import" >&2; "$PY" -c 'import mmcv.ops'; exit 1; }
  if [ -n "${OUT:-}" ]; then
    split -b 15M -d "$built" "$OUT/$(basename "$built").part-"
    step "copied it to \$OUT in $(ls "$OUT" | grep -c part-) parts"
  fi
fi
check
step "imports checked"
