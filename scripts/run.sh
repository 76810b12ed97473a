#!/usr/bin/env bash
# Run the Flower app under the local Ray simulation: start our own SuperLink (by PID), `flwr run . local
# --stream` with any extra arguments, check the run's final status, stop the SuperLink.
# Usage: scripts/run.sh [-c 'key=value ...'] [--federation-config '...']
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/superlink.sh start
trap 'scripts/superlink.sh stop' EXIT
flwr run . local --stream "$@"
# `flwr run --stream` exits 0 even when the ServerApp failed: ask the SuperLink for the run's status
# (only if ours is still up: `flwr ls` would otherwise start a detached one of its own).
scripts/superlink.sh status >/dev/null || { echo "error: the local SuperLink exited; see \$FLWR_HOME/local-superlink/superlink.log" >&2; exit 1; }
status=$(flwr ls --format json | python -c 'import json,sys; runs=json.load(sys.stdin)["runs"]; runs.sort(key=lambda r: r["pending-at"]); print(runs[-1]["status"] if runs else "none")')
echo "run status: $status"
[ "$status" = "finished:completed" ]
