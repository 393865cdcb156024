#!/usr/bin/env bash
# Distributed testing with torchrun: tools/dist_test.sh CONFIG CHECKPOINT N [test.py args]
# N processes per node (GPUs, or CPU processes with gloo on a CPU-only machine).
# Multi-node: on each node NNODES=2 NODE_RANK=0|1 MASTER_ADDR=<node 0> PORT=29500.
exec "$(dirname "$0")/dist_run.sh" test.py "$3" "$1" "$2" "${@:4}"
