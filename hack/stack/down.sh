#!/usr/bin/env bash
# Stops everything hack/stack/up.sh started: the processes recorded in
# $E2E_DIR/pids (by PID, only while the PID still runs the recorded binary) and
# the kwok cluster (kwokctl delete cluster, which stops its etcd, API server,
# controller manager, scheduler and kwok controller). Safe to run at any time,
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
  # Remember the cluster's PIDs: if kwokctl cannot delete a half-created cluster,
  # they are stopped here the same way as ours.
  kwok_pids=()
  for f in "$KWOK_CLUSTER_DIR"/pids/*.pid; do
    [ -e "$f" ] || continue
    component=$(basename "$f" .pid)
    kwok_pids+=("$(cat "$f")|$(readlink -f "$KWOK_CLUSTER_DIR/bin/$component")|$component")
  done
  if ! "$KWOKCTL" delete cluster --name "$E2E_CLUSTER" --kubeconfig "$KWOK_WORKDIR/kubeconfig" >>"$LOGS_DIR/kwokctl.log" 2>&1; then
    log "kwokctl delete cluster failed (see $LOGS_DIR/kwokctl.log); stopping its processes by PID"
  fi
  tmp_pids=$(mktemp -d)
  for entry in "${kwok_pids[@]}"; do
    IFS='|' read -r pid exe component <<<"$entry"
    printf '%s\n%s\n' "$pid" "$exe" >"$tmp_pids/$component.pid"
    stop_pid "$tmp_pids/$component.pid"
  done
  rm -rf "$tmp_pids" "$KWOK_CLUSTER_DIR"
fi
rm -f "$E2E_DIR/env"
log "stack down"
