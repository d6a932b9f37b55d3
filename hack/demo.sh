#!/usr/bin/env bash
# `make demo`: installs and builds what is missing, starts the local stack
# (hack/stack/up.sh), builds the operator and the traffic simulator, and plays
# the release story of canaryop's README (hack/demo/main.go). Whatever
# happens (success, failure, Ctrl-C, SIGTERM) everything it started is
# stopped at the end; `make demo-down` does the same after a hard kill.
# Logs of every component stay in .e2e/logs until the next run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export E2E_DIR=${E2E_DIR:-$root/.e2e}

teardown() {
  local rc=$?
  trap - EXIT INT TERM
  echo >&2
  hack/stack/down.sh || true
  if [ "$rc" -ne 0 ]; then
    echo "demo failed (exit $rc); logs of every component in $E2E_DIR/logs" >&2
  fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

started=$SECONDS
hack/stack/prepare.sh
go build -o bin/demo ./hack/demo
# The demo commits the app itself, so the repository starts with a README only.
SEED_DIR=$root/hack/demo/seed SEED_PREFIX='' hack/stack/up.sh
echo "stack ready after $((SECONDS - started))s; playing the story" >&2
echo
# In the background so that a SIGTERM to this script is handled at once: it is
# passed on to the demo, which stops the operator and the traffic simulator,
# and then the EXIT trap stops the stack.
bin/demo &
child=$!
trap 'kill -TERM "$child" 2>/dev/null || true; wait "$child" || true; exit 130' INT TERM
wait "$child"
