#!/usr/bin/env bash
# Distributed prediction with torchrun: tools/dist_predict.sh CONFIG CKPT N [predict.py args]
# N processes per node (GPUs, or CPU processes on a CPU-only machine) share the
# images of --data-root/--images or the tiles of each --slides slide; rank 0
# writes the same outputs as one process would.
# Multi-node: on each node NNODES=2 NODE_RANK=0|1 MASTER_ADDR=<node 0> PORT=29500
# (the output folder must be shared by the nodes).
exec "$(dirname "$0")/dist_run.sh" predict.py "$3" "$1" "$2" "${@:4}"
