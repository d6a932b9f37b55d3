#!/usr/bin/env bash
# Stops everything hack/stack/up.sh started: the processes recorded in
# $E2E_DIR/pids (by PID, only while the PID still runs the recorded binary) and
# the kwok cluster (kwokctl delete cluster, which stops its etcd, API server,
# controller manager, scheduler and kwok controller). It returns only once
# every one of them has exited, so that a stack started right after finds
# its ports free, and says which one it had to kill. Safe to run at any time,
# also after an interrupted up.sh or demo (`make demo-down`). Logs stay in
# $E2E_DIR/logs (the cluster's are copied to logs/kwok/ before the cluster
# folder is deleted); up.sh clears them on its next run.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

# Argo CD first (it talks to all the others), the rest in any order.
for name in argocd-application-controller argocd-repo-server; do
  [ -f "$PIDS_DIR/$name.pid" ] && stop_pid "$PIDS_DIR/$name.pid"
done
for f in "$PIDS_DIR"/*.pid; do
  [ -e "$f" ] && stop_pid "$f"
done
rmdir "$PIDS_DIR" 2>/dev/null

if [ -d "$KWOK_CLUSTER_DIR" ]; then
  mkdir -p "$LOGS_DIR/kwok"
  cp -f "$KWOK_CLUSTER_DIR"/logs/*.log "$LOGS_DIR/kwok/" 2>/dev/null
  # Remember the cluster's processes (PID and start time, while each still runs
  # the binary kwokctl started): kwokctl SIGKILLs them and returns without
  # waiting, and if it cannot delete a half-created cluster they are stopped
  # here the same way as ours.
  kwok_pids=()
  for f in "$KWOK_CLUSTER_DIR"/pids/*.pid; do
    [ -e "$f" ] || continue
    component=$(basename "$f" .pid)
    pid=$(cat "$f")
    [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$KWOK_CLUSTER_DIR/bin/$component")" ] || continue
    st=$(proc_stat "$pid") || continue
    kwok_pids+=("$pid|${st#* }|$component")
  done
  deleted=true
  if ! "$KWOKCTL" delete cluster --name "$E2E_CLUSTER" --kubeconfig "$KWOK_WORKDIR/kubeconfig" >>"$LOGS_DIR/kwokctl.log" 2>&1; then
    log "kwokctl delete cluster failed (see $LOGS_DIR/kwokctl.log); stopping its processes by PID"
    deleted=false
  fi
  killed=()
  for entry in "${kwok_pids[@]}"; do
    IFS='|' read -r pid start component <<<"$entry"
    if $deleted; then
      killed+=("$component")
      wait_gone "$pid" "$start" 10 && continue
      log "$component (pid $pid) still runs 10s after kwokctl's SIGKILL"
    fi
    stop_started "$pid" "$start" "$component"
  done
  [ ${#killed[@]} -eq 0 ] || log "kwokctl stopped the cluster with SIGKILL: ${killed[*]} (all exited)"
  rm -rf "$KWOK_CLUSTER_DIR"
fi
rm -f "$E2E_DIR/env"
log "stack down"
