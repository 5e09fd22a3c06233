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

# torch_launch NPROC TOOL ARGS...: tools/TOOL ARGS in NPROC processes on this
# node. Env: NNODES, NODE_RANK, PORT, MASTER_ADDR as for torchrun.
torch_launch() {
  "$PYTHON" -m torch.distributed.run \
      --nnodes="${NNODES:-1}" \
      --node_rank="${NODE_RANK:-0}" \
      --master_addr="${MASTER_ADDR:-127.0.0.1}" \
      --nproc_per_node="$1" \
      --master_port="${PORT:-29500}" \
      "$MMIMB_ROOT/tools/$2" "${@:3}"
}

# slurm_launch PARTITION JOB_NAME TOOL ARGS...: tools/TOOL ARGS as srun tasks.
# Env: GPUS (tasks, default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5),
# SRUN_ARGS (more srun options, split into words).
slurm_launch() {
  local gpus_per_node=${GPUS_PER_NODE:-8}
  set -x
  # shellcheck disable=SC2086  # SRUN_ARGS holds several srun options
  srun -p "$1" \
      --job-name="$2" \
      --gres=gpu:"$gpus_per_node" \
      --ntasks="${GPUS:-8}" \
      --ntasks-per-node="$gpus_per_node" \
      --cpus-per-task="${CPUS_PER_TASK:-5}" \
      --kill-on-bad-exit=1 \
      ${SRUN_ARGS:-} \
      "$PYTHON" -u "$MMIMB_ROOT/tools/$3" "${@:4}"
}
