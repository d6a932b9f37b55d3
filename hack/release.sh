#!/usr/bin/env bash
# `make release VERSION=vX.Y.Z [DIGEST=sha256:...]`: writes the release
# artifacts into dist/ ($DIST; removed and written anew):
#   install.yaml                    config/default with the image pinned by tag and
#                                   digest: ghcr.io/atzedevries/canaryop:vX.Y.Z@DIGEST
#   canaryop-X.Y.Z.tgz              the packaged chart (appVersion vX.Y.Z; the image
#                                   digest pinned too when DIGEST is given)
#   canaryop-dashboard.json         the Grafana dashboard (import it, or dashboard.enabled)
#   canaryop-prometheus-rules.yaml  the alert rules (rule_files, or prometheusRule.enabled)
#   kubectl-canaryapp_<os>_<arch>.tar.gz and canaryapp.yaml
#                                   the kubectl plugin per $PLUGIN_PLATFORMS and its krew manifest
#   SHA256SUMS
# Without DIGEST, install.yaml carries the placeholder digest sha256:000...0,
# which no registry serves: the pods fail to pull until the release pipeline,
# which knows the digest of the image it pushed, runs this again with DIGEST.
# VERSION must be the version the tree names (charts/canaryop/Chart.yaml and
# argocd/operator-application.yaml), so that the tag vX.Y.Z holds them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
VERSION=${VERSION:-}
DIGEST=${DIGEST:-}
RELEASE_IMAGE=${RELEASE_IMAGE:-ghcr.io/atzedevries/canaryop}
HELM=${HELM:-$root/bin/helm/v3.22.0/helm}
DIST=${DIST:-$root/dist}
placeholder=sha256:0000000000000000000000000000000000000000000000000000000000000000

die() { echo "release: $*" >&2; exit 1; }
[[ $VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || die "VERSION=$VERSION: want vMAJOR.MINOR.PATCH (make release VERSION=v0.1.0)"
if [ -n "$DIGEST" ] && ! [[ $DIGEST =~ ^sha256:[a-f0-9]{64}$ ]]; then
  die "DIGEST=$DIGEST: want sha256: and 64 hex digits (the digest docker push printed)"
fi
chart_version=${VERSION#v}
app_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/canaryop/Chart.yaml)
version=$(sed -n 's/^version: *//p' charts/canaryop/Chart.yaml)
revision=$(sed -n 's/^ *targetRevision: *//p' argocd/operator-application.yaml)
if [ "$app_version" != "$VERSION" ] || [ "$version" != "$chart_version" ] || [ "$revision" != "$VERSION" ]; then
  die "the tree names another version: Chart.yaml version $version appVersion $app_version, argocd/operator-application.yaml targetRevision $revision; set them to $chart_version, $VERSION and $VERSION and commit first"
fi
[ -x "$HELM" ] || die "no helm at $HELM: run make helm"

# plugin_archives builds the kubectl plugin for $PLUGIN_PLATFORMS into
# kubectl-canaryapp_<os>_<arch>.tar.gz and the krew manifest canaryapp.yaml
# that names them with their sha256.
PLUGIN_PLATFORMS=${PLUGIN_PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}
plugin_archives() {
  local platforms="" p os arch name sum work
  work=$(mktemp -d)
  for p in $PLUGIN_PLATFORMS; do
    os=${p%/*} arch=${p#*/}
    name=kubectl-canaryapp_${os}_${arch}.tar.gz
    mkdir -p "$work/$os-$arch"
    CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "-s -w" -o "$work/$os-$arch/kubectl-canaryapp" ./cmd/kubectl-canaryapp
    cp LICENSE "$work/$os-$arch/" 2>/dev/null || true
    tar -C "$work/$os-$arch" -czf "$DIST/$name" .
    sum=$(sha256sum "$DIST/$name" | cut -d' ' -f1)
    platforms+="  - selector:\n      matchLabels:\n        os: $os\n        arch: $arch\n"
    platforms+="    uri: https://github.com/atzedevries/canaryop/releases/download/$VERSION/$name\n"
    platforms+="    sha256: $sum\n    bin: kubectl-canaryapp\n"
  done
  rm -rf "$work"
  sed -e "s/VERSION/$VERSION/" -e "s|^PLATFORMS$|$platforms|" hack/krew/canaryapp.yaml.tmpl | sed -e '/^$/d' -e '/^#/d' >"$DIST/canaryapp.yaml"
}

digest=${DIGEST:-$placeholder}
image="$RELEASE_IMAGE:$VERSION@$digest"
rm -rf "$DIST"
mkdir -p "$DIST"
{
  echo "# canaryop $VERSION: CRD, RBAC and the manager in canaryop-system."
  echo "#   kubectl apply -f install.yaml"
  echo "# Image: $image"
  [ -n "$DIGEST" ] || echo "# The digest is a placeholder: make release VERSION=$VERSION DIGEST=sha256:... with the pushed image's digest."
  go run ./hack/render -image "$image" config/default
} >"$DIST/install.yaml"

# The chart packaged from a copy, so that the tree stays as it is.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r charts/canaryop "$tmp/canaryop"
if [ -n "$DIGEST" ]; then
  sed -i "s/^  digest: \"\"$/  digest: \"$DIGEST\"/" "$tmp/canaryop/values.yaml"
  grep -q "^  digest: \"$DIGEST\"$" "$tmp/canaryop/values.yaml" || die "could not set image.digest in the packaged values.yaml"
fi
"$HELM" lint --strict "$tmp/canaryop" >/dev/null
"$HELM" package "$tmp/canaryop" --version "$chart_version" --app-version "$VERSION" --destination "$DIST" >/dev/null

cp charts/canaryop/files/dashboard.json "$DIST/canaryop-dashboard.json"
cp charts/canaryop/files/prometheus-rules.yaml "$DIST/canaryop-prometheus-rules.yaml"
plugin_archives
(cd "$DIST" && sha256sum install.yaml canaryop-*.tgz canaryop-dashboard.json canaryop-prometheus-rules.yaml kubectl-canaryapp_* canaryapp.yaml >SHA256SUMS)
echo "release $VERSION in $DIST (image $image):" >&2
(cd "$DIST" && ls -l) >&2
[ -n "$DIGEST" ] || echo "release: install.yaml pins a placeholder digest; pass DIGEST=sha256:... of the pushed image for the published files" >&2
