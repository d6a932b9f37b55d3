#!/usr/bin/env bash
# Installs and builds what `make demo` and `make e2e` run on top of the local
# stack: the Debian packages, the stack's binaries (once, cached in bin/), the
# operator and the traffic simulator (every time, from this checkout).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
hack/stack/install-deps.sh
hack/stack/build-tools.sh all
echo "building the operator and the traffic simulator" >&2
CGO_ENABLED=0 go build -trimpath -o bin/manager ./cmd
go build -o bin/trafficsim ./test/trafficsim
