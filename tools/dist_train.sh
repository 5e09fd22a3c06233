#!/usr/bin/env bash
# Usage: bash tools/dist_train.sh CONFIG GPUS [train.py options]
# Env: NNODES, NODE_RANK, PORT, MASTER_ADDR as for torchrun; PYTHON (see
# launch_common.sh). Without a GPU the processes train on the CPU over gloo.
source "$(dirname "${BASH_SOURCE[0]}")/launch_common.sh"
usage_unless 2 $# "bash $0 CONFIG GPUS [train.py options]"
torch_launch "$2" train.py "$1" --launcher pytorch "${@:3}"
