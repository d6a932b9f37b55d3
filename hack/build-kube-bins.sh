#!/usr/bin/env bash
# Builds etcd and the Kubernetes control-plane binaries from the Go module proxy
# (no release download is reachable from CI) and caches them under
# bin/k8s/<version>/, which is what KUBEBUILDER_ASSETS points at.
# Usage: hack/build-kube-bins.sh [kubectl|envtest|all]
#   kubectl: kubectl only (make install/deploy without a kubectl on the PATH)
#   envtest: etcd, kube-apiserver, kubectl  (enough for `make test`)
#   all:     also kube-controller-manager, kube-scheduler (the local cluster)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
set_what=${1:-envtest}
out="$root/bin/k8s/$KUBE_VERSION"
mkdir -p "$out"

minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

# with_progress NAME COMMAND...: runs COMMAND and, while it runs, says every
# 30s that NAME is still building, so a cold build (minutes per binary on 2
# cores) never looks hung; then how long it took.
with_progress() {
  local name=$1 start=$SECONDS pid rc
  shift
  "$@" &
  pid=$!
  while ! wait_up_to 30 "$pid"; do
    echo "  ... still building $name ($((SECONDS - start))s)" >&2
  done
  wait "$pid" && rc=0 || rc=$?
  [ "$rc" -eq 0 ] && echo "  built $name in $((SECONDS - start))s" >&2
  return "$rc"
}

# wait_up_to SECONDS PID: true once PID (a child) has exited, false after SECONDS.
wait_up_to() {
  local i
  for ((i = 0; i < $1 * 10; i++)); do
    kill -0 "$2" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

build_kube() {
  local name=$1
  if [ -x "$out/$name" ]; then return; fi
  echo "building $name $KUBE_VERSION (first run only: 3-6 minutes each on 2 cores)" >&2
  with_progress "$name" bash -c 'cd "$1/hack/tools/kube" && CGO_ENABLED=0 go build -trimpath -ldflags "$2" -o "$3.tmp" "k8s.io/kubernetes/cmd/$4"' _ "$root" "$ldflags" "$out/$name" "$name"
  mv "$out/$name.tmp" "$out/$name"
}

if [ "$set_what" = kubectl ]; then
  build_kube kubectl
  echo "$out"
  exit 0
fi
if [ ! -x "$out/etcd" ]; then
  echo "building etcd (first run only)" >&2
  with_progress etcd bash -c 'cd "$1/hack/tools/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$2.tmp" .' _ "$root" "$out/etcd"
  mv "$out/etcd.tmp" "$out/etcd"
fi
build_kube kube-apiserver
build_kube kubectl
if [ "$set_what" = all ]; then
  build_kube kube-controller-manager
  build_kube kube-scheduler
fi
echo "$out"
