# Sourced by the launch scripts beside it (dist_*.sh, slurm_*.sh), so that
# they run as README.md shows them: from any directory, without an activated
# environment.
#   PYTHON      interpreter (default: the project's .venv when it exists,
#               else `python` from PATH)
#   PYTHONPATH  this checkout is put first, so its mmimb is the one imported
MMIMB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$MMIMB_ROOT/.venv/bin/python" ]; then
    PYTHON=$MMIMB_ROOT/.venv/bin/python
  else
    PYTHON=python
  fi
fi
export PYTHONPATH="$MMIMB_ROOT${PYTHONPATH:+:$PYTHONPATH}"

# usage_unless MIN_ARGS NUM_ARGS USAGE: stop with the usage line when fewer
# than MIN_ARGS arguments were given.
usage_unless() {
  if [ "$2" -lt "$1" ]; then
    echo "usage: $3" >&2
    exit 2
  fi
}
