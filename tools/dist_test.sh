#!/usr/bin/env bash
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
# Env: NNODES, NODE_RANK, PORT, MASTER_ADDR as for torchrun; PYTHON (see
# launch_common.sh). Without a GPU the processes test on the CPU over gloo.
source "$(dirname "${BASH_SOURCE[0]}")/launch_common.sh"
usage_unless 3 $# "bash $0 CONFIG CHECKPOINT GPUS [test.py options]"
torch_launch "$3" test.py "$1" "$2" --launcher pytorch "${@:4}"
