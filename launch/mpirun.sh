#!/usr/bin/env bash
# Ranks started by MPI (mpiexec / mpirun, MPICH or Open MPI); needs mpi4py.
#
#   launch/mpirun.sh DATA_DIR [OUT_DIR] [key=value ...]
#   NP=8 HOSTS=node1:4,node2:4 launch/mpirun.sh data/products-8 runs/p8
#
# Each rank finds its rank, size and local rank through mpi4py; rank 0 picks the
# rendezvous address (its host name) and a free port and broadcasts them, so no
# MASTER_ADDR is needed. Training itself uses torch.distributed (gloo / nccl), not MPI.
# Stopping: MPICH's mpiexec forwards SIGTERM, SIGINT (Ctrl-C) and SIGUSR1 to every rank;
# they finish their step, rank 0 checkpoints, and mpiexec exits with the ranks' 75.
# Environment:
#   NP       number of ranks (default 2)
#   HOSTS    passed as `-hosts` (MPICH) / `--host` (Open MPI) when set
#   CONFIG   YAML run config passed as --config
#   MPIEXEC  the launcher (default: mpiexec on PATH); PYTHON the interpreter (default python)
set -euo pipefail
usage="usage: launch/mpirun.sh DATA_DIR [OUT_DIR] [key=value ...]"
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
DATA=$1; shift
OUT=runs/mpirun
if [ $# -ge 1 ] && [[ "$1" != *=* ]]; then OUT=$1; shift; fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
MPIEXEC=${MPIEXEC:-mpiexec}

mpi=(-n "${NP:-2}")
if [ -n "${HOSTS:-}" ]; then
  if "$MPIEXEC" --version 2>&1 | grep -qi "open mpi"; then mpi+=(--host "$HOSTS"); else mpi+=(-hosts "$HOSTS"); fi
fi
train=(--data "$DATA" --out "$OUT")
[ -n "${CONFIG:-}" ] && train+=(--config "$CONFIG")

exec "$MPIEXEC" "${mpi[@]}" "${PYTHON:-python}" -m "${GIANTGCN_MODULE:-dist_train}" "${train[@]}" "$@"
