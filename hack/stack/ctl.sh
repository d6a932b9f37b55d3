#!/usr/bin/env bash
# Stops and restarts single components of a running stack, for end-to-end tests
# that take one away on purpose (Prometheus during an analysis, for instance).
#   hack/stack/ctl.sh status
#   hack/stack/ctl.sh stop  NAME   # by its recorded PID, like down.sh
#   hack/stack/ctl.sh start NAME   # same command line, environment and ports as up.sh used
# NAME is one of the files in $E2E_DIR/cmds: prometheus, redis, gitserver,
# argocd-repo-server, argocd-application-controller. The kwok control plane is
# kwokctl's (`KWOK_WORKDIR=$E2E_DIR/kwok bin/kwok/v0.8.0/kwokctl stop|start cluster --name canaryop`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
cmd=$1 name=${2:-}

running() { # running NAME: the recorded PID still runs the recorded binary
  local pid exe
  [ -f "$PIDS_DIR/$1.pid" ] || return 1
  { read -r pid && read -r exe; } <"$PIDS_DIR/$1.pid"
  [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" = "$exe" ]
}

case $cmd in
  status)
    for f in "$CMDS_DIR"/*.sh; do
      [ -e "$f" ] || die "no stack in $E2E_DIR (run hack/stack/up.sh)"
      n=$(basename "$f" .sh)
      if running "$n"; then echo "$n running (pid $(head -1 "$PIDS_DIR/$n.pid"))"; else echo "$n stopped"; fi
    done
    ;;
  stop)
    [ -f "$CMDS_DIR/$name.sh" ] || usage
    if [ -f "$PIDS_DIR/$name.pid" ]; then stop_pid "$PIDS_DIR/$name.pid"; fi
    ;;
  start)
    [ -f "$CMDS_DIR/$name.sh" ] || usage
    running "$name" && die "$name is already running"
    # Sourced at the top level of a subshell: `declare -x` inside a function
    # would make the variables local to it.
    (
      start_args=()
      # shellcheck disable=SC1090
      . "$CMDS_DIR/$name.sh"
      start_bg "$name" "${start_args[@]}"
    )
    ;;
  *) usage ;;
esac
