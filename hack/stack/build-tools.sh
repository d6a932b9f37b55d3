#!/usr/bin/env bash
# Builds the binaries the local stack runs, once, from the Go module proxy, and
# caches them under bin/ keyed by version (a present binary is never rebuilt):
#   bin/k8s/$KUBE_VERSION/    etcd, kube-apiserver, kubectl, kube-controller-manager, kube-scheduler
#                             (delegated to hack/build-kube-bins.sh all)
#   bin/kwok/$KWOK_VERSION/   kwokctl, kwok
#   bin/argocd/$ARGOCD_VERSION/ argocd plus the links argocd-application-controller,
#                             argocd-repo-server (one binary that acts by its name),
#                             and kustomize $KUSTOMIZE_VERSION for the repo server
# Usage: hack/stack/build-tools.sh [all|kube|kwok|argocd ...]   (default: all)
# The versions are the ones pinned in hack/tools/*/go.mod; keep them in sync.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
ARGOCD_VERSION=${ARGOCD_VERSION:-v3.2.6}
KUSTOMIZE_VERSION=${KUSTOMIZE_VERSION:-v5.7.1}

# go_build <tools module dir> <output> <package> [ldflags]: builds into a temporary
# name and renames, so an interrupted build never leaves a binary that looks cached.
go_build() {
  local mod=$1 out=$2 pkg=$3 ldflags=${4:-}
  echo "building $(basename "$out") (first run only; Argo CD takes 10+ minutes on 2 cores)" >&2
  mkdir -p "$(dirname "$out")"
  (cd "$root/hack/tools/$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
}

build_kube() {
  "$root/hack/build-kube-bins.sh" all >/dev/null
}

build_kwok() {
  local out="$root/bin/kwok/$KWOK_VERSION" v=${KWOK_VERSION#v} kv=${KUBE_VERSION#v}
  local ld="-X sigs.k8s.io/kwok/pkg/consts.Version=$v -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$kv"
  [ -x "$out/kwokctl" ] || go_build kwok "$out/kwokctl" sigs.k8s.io/kwok/cmd/kwokctl "$ld"
  [ -x "$out/kwok" ] || go_build kwok "$out/kwok" sigs.k8s.io/kwok/cmd/kwok "$ld"
}

build_argocd() {
  local out="$root/bin/argocd/$ARGOCD_VERSION" pkg=github.com/argoproj/argo-cd/v3/common
  local ld="-X $pkg.version=${ARGOCD_VERSION#v} -X $pkg.buildDate=1970-01-01T00:00:00Z -X $pkg.gitTreeState=clean"
  [ -x "$out/argocd" ] || go_build argocd "$out/argocd" github.com/argoproj/argo-cd/v3/cmd "$ld"
  local name
  for name in argocd-application-controller argocd-repo-server; do
    ln -sfn argocd "$out/$name"
  done
  # The repo server runs `kustomize build` (found on PATH) for sources with a
  # kustomization.yaml; the version is the one Argo CD v3.2 ships with.
  [ -x "$out/kustomize" ] || go_build argocd "$out/kustomize" sigs.k8s.io/kustomize/kustomize/v5 \
    "-X sigs.k8s.io/kustomize/api/provenance.version=$KUSTOMIZE_VERSION"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(all)
for t in "${targets[@]}"; do
  case $t in
    all) build_kube; build_kwok; build_argocd ;;
    kube) build_kube ;;
    kwok) build_kwok ;;
    argocd) build_argocd ;;
    *) echo "unknown target $t (want all, kube, kwok or argocd)" >&2; exit 2 ;;
  esac
done
