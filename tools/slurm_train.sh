#!/usr/bin/env bash
# Usage: [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#   bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py options]
# PYTHON: see launch_common.sh.
source "$(dirname "${BASH_SOURCE[0]}")/launch_common.sh"
usage_unless 3 $# "bash $0 PARTITION JOB_NAME CONFIG [train.py options]"
slurm_launch "$1" "$2" train.py "$3" --launcher=slurm "${@:4}"
