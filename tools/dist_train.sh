#!/usr/bin/env bash
# Distributed training with torchrun: tools/dist_train.sh CONFIG N [train.py args]
# N processes per node (GPUs, or CPU processes with gloo on a CPU-only machine).
# Multi-node: on each node NNODES=2 NODE_RANK=0|1 MASTER_ADDR=<node 0> PORT=29500.
exec "$(dirname "$0")/dist_run.sh" train.py "$2" "$1" "${@:3}"
