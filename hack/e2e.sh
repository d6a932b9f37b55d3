#!/usr/bin/env bash
# `make e2e`: the end-to-end suite (test/e2e, build tag e2e) against the local
# stack. Installs and builds what is missing (a fresh clone has an empty bin/),
# starts the stack, runs the Go tests (which start the operator and the traffic
# simulator themselves) and always tears everything down. Logs of every
# component stay in .e2e/logs (until the next run); on failure they are listed
# and the end of the operator's log is printed.
#   E2E_RUN=regexp   runs only the matching tests (go test -run)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export E2E_DIR=${E2E_DIR:-$root/.e2e}
logs=$E2E_DIR/logs

teardown() {
  local rc=$?
  trap - EXIT INT TERM
  hack/stack/down.sh || true
  if [ "$rc" -ne 0 ]; then
    echo "== e2e FAILED (exit $rc). Logs of every component are kept in $logs:" >&2
    (cd "$logs" 2>/dev/null && find . -type f -name '*.log' | sort | sed 's|^\./|  |') >&2 || true
    if [ -f "$logs/operator.log" ]; then
      echo "== last 40 lines of $logs/operator.log" >&2
      tail -40 "$logs/operator.log" >&2
    fi
  fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

started=$SECONDS
hack/stack/prepare.sh
go test -tags e2e -c -o bin/e2e.test ./test/e2e
# team-b: the repository of a second team (TestTenantIsolation).
SEED_DIR=$root/hack/demo/seed SEED_PREFIX='' GIT_EXTRA_REPOS=team-b,platform/approvals hack/stack/up.sh
echo "== stack ready after $((SECONDS - started))s" >&2

# `go test -tags e2e ./test/e2e -count=1 -v -timeout 25m`, compiled above so
# that the stack does not wait for the build; run from the package folder as go
# test does, in the background so that a SIGTERM to this script reaches it at
# once (it stops the operator and the simulator, then the EXIT trap the stack).
set +e
(cd test/e2e && exec "$root/bin/e2e.test" -test.v -test.count=1 -test.timeout=25m ${E2E_RUN:+-test.run="$E2E_RUN"}) \
  > >(tee "$logs/e2e-test.log") 2>&1 &
child=$!
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 130' INT TERM
wait "$child"
rc=$?
set -e
echo "== e2e finished in $((SECONDS - started))s (exit $rc); test output in $logs/e2e-test.log" >&2
exit "$rc"
