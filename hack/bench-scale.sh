#!/usr/bin/env bash
# Scale benchmark on the local stack (hack/stack: kwok cluster, Prometheus):
# N CanaryApps created at once until all are Ready, the operator's API
# requests per app by verb (its rest_client_requests_total), its RSS and
# CPU while idle, then a round in which CANARIES apps run canaries at once
# while one meets errors (time from the errors being visible in Prometheus
# to all traffic on its primary). Prints a Markdown report (hack/benchscale).
#
# Usage: hack/bench-scale.sh N [CANARIES]      (CANARIES: default min(N, 100))
#   OPERATOR_ARGS="--max-concurrent-reconciles=32"  further operator flags
#   IDLE=30s                                         the idle period
#   BENCH_E2E_DIR (default .bench-scale/)            the stack's state dir
#   HEAP_PROFILE=file                                a heap profile of the operator at the end (go tool pprof)
#   MEMORY_ONLY=1                                    stop once every app is reconciled (memory then), not Ready
#   OPERATOR_ENV="GOMEMLIMIT=360MiB"                 environment of the operator alone
# It takes the e2e lock (/tmp/canaryop-e2e.lock) so that it never shares the
# machine's stack with `make e2e`, and stops exactly what it started (the
# operator by its PID, the stack with hack/stack/down.sh), also on failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
N=${1:?usage: hack/bench-scale.sh N [CANARIES]}
CANARIES=${2:-$((N < 100 ? N : 100))}
IDLE=${IDLE:-30s}
export E2E_DIR=${BENCH_E2E_DIR:-$root/.bench-scale}
export E2E_NODE_PODS=$((3 * N + 200))
# shellcheck source=stack/lib.sh
. "$root/hack/stack/lib.sh"

exec 9>/tmp/canaryop-e2e.lock
flock 9

op_pid=""
stack_up=""
bench_bin=$(mktemp -d)
cleanup() {
  local rc=$?
  if [ -n "$op_pid" ] && kill -0 "$op_pid" 2>/dev/null; then
    kill -TERM "$op_pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$op_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$op_pid" 2>/dev/null || true
    wait "$op_pid" 2>/dev/null || true
  fi
  [ -z "$stack_up" ] || "$root/hack/stack/down.sh" >&2 || true
  rm -rf "$bench_bin"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Built outside E2E_DIR, which up.sh clears.
(cd "$root" && go build -o "$bench_bin/canaryop" ./cmd && go build -o "$bench_bin/benchscale" ./hack/benchscale)
stack_up=1
"$root/hack/stack/up.sh" >&2
set -a
# shellcheck disable=SC1091
. "$E2E_DIR/env"
set +a
"$KUBECTL" apply --server-side -f "$root/config/crd/bases" >&2

pick_port metrics_port
pick_port probe_port
pick_port pprof_port
# shellcheck disable=SC2086
env ${OPERATOR_ENV:-} "$bench_bin/canaryop" --metrics-bind-address="127.0.0.1:$metrics_port" --health-probe-bind-address="127.0.0.1:$probe_port" \
  --pprof-bind-address="127.0.0.1:$pprof_port" --git-writeback=false ${OPERATOR_ARGS:-} >"$E2E_DIR/logs/canaryop-bench.log" 2>&1 &
op_pid=$!
wait_for "the operator's metrics" 60 curl -sf "http://127.0.0.1:$metrics_port/metrics"
log "operator pid $op_pid; $N apps, $CANARIES canaries at once"
"$bench_bin/benchscale" -n "$N" -canaries "$CANARIES" -idle "$IDLE" -metrics "http://127.0.0.1:$metrics_port/metrics" \
  ${MEMORY_ONLY:+-memory-only}
if [ -n "${HEAP_PROFILE:-}" ]; then
  curl -sf "http://127.0.0.1:$pprof_port/debug/pprof/heap" -o "$HEAP_PROFILE"
  log "heap profile of the operator in $HEAP_PROFILE"
fi
