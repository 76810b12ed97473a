#!/usr/bin/env bash
# Start / stop / check the local simulation SuperLink that `flwr run . local` talks to, by PID.
# `flwr run` would otherwise start a detached one itself (and leave it running, with whatever
# environment the first caller had); starting it here pins its environment (runtime dependency
# installation disabled) and lets us stop exactly the process we started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
pidfile="$FLWR_HOME/local-superlink.pid"
http_port="${FLWR_LOCAL_SUPERLINK_HTTP_API_PORT:-39091}"
control_port="${FLWR_LOCAL_CONTROL_API_PORT:-39093}"

descendants() { local p; for p in $(ps -o pid= --ppid "$1" 2>/dev/null); do echo "$p"; descendants "$p"; done; }
healthy() { python -c "import httpx,sys; sys.exit(0 if httpx.get('http://127.0.0.1:$http_port/health', timeout=1).is_success else 1)" 2>/dev/null; }

case "${1:-}" in
  start)
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "local SuperLink already running (pid $(cat "$pidfile"))"; exit 0
    fi
    if healthy; then
      echo "error: another SuperLink already answers on port $http_port (not started by this project); stop it first" >&2
      exit 1
    fi
    mkdir -p "$FLWR_HOME/local-superlink"
    rm -f "$FLWR_HOME/local-superlink/state.db"
    flower-superlink --insecure --simulation --isolation subprocess \
      --disable-runtime-dependency-installation \
      --control-api-address "127.0.0.1:$control_port" --host 127.0.0.1 --port "$http_port" \
      --database "$FLWR_HOME/local-superlink/state.db" \
      --log-file "$FLWR_HOME/local-superlink/superlink.log" >/dev/null 2>&1 &
    echo $! > "$pidfile"
    for _ in $(seq 1 150); do
      if healthy; then echo "local SuperLink started (pid $(cat "$pidfile"))"; exit 0; fi
      kill -0 "$(cat "$pidfile")" 2>/dev/null || { echo "error: SuperLink exited; see $FLWR_HOME/local-superlink/superlink.log" >&2; exit 1; }
      sleep 0.2
    done
    echo "error: SuperLink did not become healthy in 30 s" >&2; exit 1
    ;;
  stop)
    # The SuperLink and its children (SuperExec, ServerApp, simulation / Ray processes), all by PID.
    if [ -f "$pidfile" ]; then
      pid="$(cat "$pidfile")"
      if kill -0 "$pid" 2>/dev/null; then
        all=("$pid")
        while read -r d; do [ -n "$d" ] && all+=("$d"); done < <(descendants "$pid")
        kill "${all[@]}" 2>/dev/null || true
        for _ in $(seq 1 100); do
          alive=0; for p in "${all[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
          [ "$alive" = 0 ] && break; sleep 0.1
        done
        for p in "${all[@]}"; do kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null; done
        echo "local SuperLink stopped (pid $pid and ${#all[@]} processes in all)"
      fi
      rm -f "$pidfile"
    fi
    ;;
  status)
    # Exit 0 if the SuperLink we started is running. Check this before any other `flwr` command: one that finds
    # no SuperLink starts a detached one of its own, which nothing would stop.
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "local SuperLink running (pid $(cat "$pidfile"))"; exit 0
    fi
    echo "local SuperLink not running"; exit 1
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
