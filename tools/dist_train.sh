#!/usr/bin/env bash
# Usage: bash tools/dist_train.sh CONFIG GPUS [train.py options]
# Env: NNODES, NODE_RANK, PORT, MASTER_ADDR as for torchrun; PYTHON (see
# launch_env.sh). Without a GPU the processes train on the CPU over gloo.
source "$(dirname "${BASH_SOURCE[0]}")/launch_env.sh"
usage_unless 2 $# "bash $0 CONFIG GPUS [train.py options]"
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$MMIMB_ROOT/tools/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
