#!/usr/bin/env bash
# Starts the local stack for `make demo` and `make e2e`, everything on 127.0.0.1
# with free ports, state and logs under $E2E_DIR (default .e2e/, git-ignored):
#   - a kwok cluster (binary runtime, the control-plane binaries from bin/k8s)
#     with one fake Node, Istio's, Gateway API's and Argo CD's CRDs
#   - Prometheus (Debian package) scraping the targets listed in
#     $E2E_DIR/prometheus/targets/*.json (file_sd; the demo adds the traffic simulator)
#   - redis-server, argocd-repo-server and argocd-application-controller
#   - test/gitserver serving the bare repo canaryapp-demo.git over smart HTTP
#     with basic auth, seeded from SEED_DIR
# and writes $E2E_DIR/env (KEY=value lines) for the scripts and Go tests that
# come after. See hack/stack/README.md.
#
# Usage: hack/stack/up.sh [SEED_DIR]
#   SEED_DIR (or env SEED_DIR): folder whose files become the first commit of the
#   Git repo. Default: examples/gitops if it exists, else the CanaryApp sample
#   from config/samples. A folder inside this project keeps its project path in
#   the repo (examples/gitops/canaryapp-sample/...); SEED_PREFIX=dir overrides
#   that, SEED_PREFIX= (empty) puts the files at the repo root.
# Leftovers of an earlier run are torn down first; if anything fails, what was
# started is torn down again and the logs stay in $E2E_DIR/logs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

SEED_DIR=${1:-${SEED_DIR:-}}
E2E_NODE=${E2E_NODE:-kwok-node-0}
E2E_NODE_PODS=${E2E_NODE_PODS:-1000}
# Client-side rate limit of kube-controller-manager and kube-scheduler
# (requests per second; the burst is twice that). Kubernetes' default is 20
# for the controller manager, which then bounds how fast Deployments become
# Available (a ReplicaSet, a Pod, statuses: about 0.25 s per Deployment);
# managed control planes run it higher. hack/bench-scale.sh measures both.
STACK_CONTROL_PLANE_QPS=${STACK_CONTROL_PLANE_QPS:-200}
ARGOCD_NS=${ARGOCD_NS:-argocd}
GIT_REPO=${GIT_REPO:-canaryapp-demo}
GIT_BRANCH=${GIT_BRANCH:-main}
GIT_USER=${GIT_USER:-canaryop}
# Further repositories on the Git server besides GIT_REPO (names separated by
# spaces or commas), each with a first commit on GIT_BRANCH and an Argo CD
# repository Secret: the repositories of other teams.
GIT_EXTRA_REPOS=${GIT_EXTRA_REPOS:-}
# How often Argo CD re-checks Git without a refresh annotation (seconds). Both
# the controller's resync period and the repo server's cache of branch -> commit
# resolution (--revision-cache-expiration, 3 minutes by default) bound it.
ARGOCD_APP_RESYNC=${ARGOCD_APP_RESYNC:-20}

case $E2E_DIR in *[[:space:]]*) die "E2E_DIR must not contain whitespace: $E2E_DIR" ;; esac
extra_repos=()
for r in ${GIT_EXTRA_REPOS//,/ }; do
  # "name", or "owner/name" as a GitHub repository is addressed.
  [[ $r =~ ^[a-z0-9][a-z0-9-]*(/[a-z0-9][a-z0-9-]*)?$ ]] || die "GIT_EXTRA_REPOS: $r is not a repository name (lower-case letters, digits, '-', optionally owner/name)"
  [ "$r" != "$GIT_REPO" ] || die "GIT_EXTRA_REPOS: $r is GIT_REPO already"
  extra_repos+=("$r")
done
started=$SECONDS

# --- leftovers, then a clean state dir ---------------------------------------
if [ -d "$PIDS_DIR" ] || [ -d "$KWOK_CLUSTER_DIR" ]; then
  log "tearing down the leftovers of an earlier run"
  "$here/down.sh"
fi
# Only the paths this script creates, never the whole folder: E2E_DIR may be
# set to a folder that holds other things.
for d in pids cmds logs kwok prometheus redis git argocd bin env kubeconfig kwok.yaml; do
  rm -rf "${E2E_DIR:?}/$d"
done
mkdir -p "$E2E_DIR" "$PIDS_DIR" "$LOGS_DIR"

on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    log "up failed (exit $rc); tearing down, logs stay in $LOGS_DIR"
    "$here/down.sh" || true
  fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# --- prerequisites (each a no-op when already there) -------------------------
"$here/install-deps.sh"
"$here/build-tools.sh" all
(cd "$stack_root" && go build -o "$E2E_DIR/bin/gitserver" ./test/gitserver)
for b in "$KUBE_BIN"/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler,kubectl} \
  "$KWOK_BIN"/{kwokctl,kwok} "$ARGOCD_BIN"/argocd; do
  [ -x "$b" ] || die "missing $b (hack/stack/build-tools.sh builds it)"
done
istio_api_dir=$(cd "$stack_root" && go mod download istio.io/api && go list -m -f '{{.Dir}}' istio.io/api)
istio_crds=$istio_api_dir/kubernetes/customresourcedefinitions.gen.yaml
argocd_src=$(cd "$stack_root/hack/tools/argocd" && go list -m -f '{{.Dir}}' github.com/argoproj/argo-cd/v3)
[ -f "$istio_crds" ] || die "no Istio CRDs at $istio_crds"
gateway_api_dir=$(cd "$stack_root" && go mod download sigs.k8s.io/gateway-api && go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)
gateway_api_crds=$gateway_api_dir/config/crd/standard
[ -f "$gateway_api_crds/gateway.networking.k8s.io_httproutes.yaml" ] || die "no Gateway API CRDs in $gateway_api_crds"
[ -d "$argocd_src/manifests/crds" ] || die "no Argo CD CRDs under $argocd_src"

if [ -z "$SEED_DIR" ]; then
  if [ -d "$stack_root/examples/gitops" ]; then
    SEED_DIR=$stack_root/examples/gitops
  else
    SEED_DIR=$E2E_DIR/git/seed-default
    mkdir -p "$SEED_DIR"
    cp "$stack_root/config/samples/canary_v1_canaryapp.yaml" "$SEED_DIR/canaryapp.yaml"
  fi
fi
[ -d "$SEED_DIR" ] || die "seed folder $SEED_DIR does not exist"
SEED_DIR=$(cd "$SEED_DIR" && pwd)
# Where the seed lands in the repo: by default a folder inside this project keeps
# its project path (examples/gitops/... in the repo, as argocd/application.yaml
# expects), anything else goes to the repo root.
if [ -z "${SEED_PREFIX+set}" ]; then
  case $SEED_DIR/ in
    "$stack_root"/*/) SEED_PREFIX=${SEED_DIR#"$stack_root"/} ;;
    *) SEED_PREFIX= ;;
  esac
  case $SEED_PREFIX in "${E2E_DIR#"$stack_root"/}"/*) SEED_PREFIX= ;; esac
fi
# Argo CD's CanaryApp health check (and any other argocd-cm settings), merged
# into argocd-cm; set ARGOCD_CM_PATCH= (empty) to leave argocd-cm bare.
if [ -z "${ARGOCD_CM_PATCH+set}" ] && [ -f "$stack_root/argocd/argocd-cm-patch.yaml" ]; then
  ARGOCD_CM_PATCH=$stack_root/argocd/argocd-cm-patch.yaml
fi

# A fixed port for the Git server too (it could pick its own with :0): a
# restart by ctl.sh must keep GIT_URL, which Argo CD has stored.
pick_port GIT_PORT
pick_port PROM_PORT
pick_port REDIS_PORT
pick_port REPO_SERVER_PORT
pick_port REPO_SERVER_METRICS_PORT
pick_port CONTROLLER_METRICS_PORT

# --- Git server (independent of the cluster: start it first) -----------------
git_root=$E2E_DIR/git/repos
mkdir -p "$git_root"
GIT_TOKEN=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
for r in "$GIT_REPO" "${extra_repos[@]}"; do
  git init -q --bare -b "$GIT_BRANCH" "$git_root/$r.git"
done
(
  export GITSERVER_USER=$GIT_USER GITSERVER_TOKEN=$GIT_TOKEN
  STACK_ENV="GITSERVER_USER GITSERVER_TOKEN"
  start_bg gitserver "$E2E_DIR/bin/gitserver" --listen "127.0.0.1:$GIT_PORT" --root "$git_root" --addr-file "$E2E_DIR/git/addr"
)

# --- Redis for Argo CD's cache ---------------------------------------------
mkdir -p "$E2E_DIR/redis"
start_bg redis "$(command -v redis-server)" --bind 127.0.0.1 --port "$REDIS_PORT" \
  --save "" --appendonly no --dir "$E2E_DIR/redis" --protected-mode yes

# --- Prometheus ----------------------------------------------------------------
prom=$E2E_DIR/prometheus
mkdir -p "$prom/targets" "$prom/data"
cat >"$prom/prometheus.yml" <<EOF
# Written by hack/stack/up.sh. Short intervals so a canary step can be judged
# within seconds. Scrape targets come from files in targets/ (file_sd), e.g.
# targets/trafficsim.json: [{"targets": ["127.0.0.1:PORT"], "labels": {"app": "trafficsim"}}]
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: stack-targets
    # Keep the labels the targets export (Istio's label names) as they are.
    honor_labels: true
    file_sd_configs:
      - files: ["$prom/targets/*.json", "$prom/targets/*.yaml", "$prom/targets/*.yml"]
        refresh_interval: 1s
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:$PROM_PORT"]
EOF
start_bg prometheus "$(command -v prometheus)" --config.file="$prom/prometheus.yml" \
  --storage.tsdb.path="$prom/data" --storage.tsdb.retention.time=6h \
  --web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-lifecycle

# --- Kubernetes (kwok) ---------------------------------------------------------
mkdir -p "$KWOK_WORKDIR"
cat >"$E2E_DIR/kwok.yaml" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  # kwokctl binds every component to 0.0.0.0 unless told otherwise.
  bindAddress: 127.0.0.1
  kubectlBinary: $KUBECTL
# Here rather than as --extra-args: kwokctl v0.8.0 panics on a third
# component given there.
componentsPatches:
- name: kube-controller-manager
  extraArgs:
  - {key: kube-api-qps, value: "$STACK_CONTROL_PLANE_QPS"}
  - {key: kube-api-burst, value: "$((2 * STACK_CONTROL_PLANE_QPS))"}
- name: kube-scheduler
  extraArgs:
  - {key: kube-api-qps, value: "$STACK_CONTROL_PLANE_QPS"}
  - {key: kube-api-burst, value: "$((2 * STACK_CONTROL_PLANE_QPS))"}
EOF
log "creating kwok cluster $E2E_CLUSTER"
# KWOK_KUBECTL_BINARY: kwokctl would download kubectl for its helper commands otherwise.
if ! KWOK_KUBECTL_BINARY=$KUBECTL "$KWOKCTL" -c "$E2E_DIR/kwok.yaml" create cluster --name "$E2E_CLUSTER" \
  --runtime binary \
  --etcd-binary "$KUBE_BIN/etcd" \
  --kube-apiserver-binary "$KUBE_BIN/kube-apiserver" \
  --kube-controller-manager-binary "$KUBE_BIN/kube-controller-manager" \
  --kube-scheduler-binary "$KUBE_BIN/kube-scheduler" \
  --kwok-controller-binary "$KWOK_BIN/kwok" \
  --extra-args kube-apiserver=service-cluster-ip-range=10.96.0.0/12 \
  --kubeconfig "$KWOK_WORKDIR/kubeconfig" \
  --wait 120s >>"$LOGS_DIR/kwokctl.log" 2>&1; then
  tail -20 "$LOGS_DIR/kwokctl.log" >&2
  die "kwokctl create cluster failed"
fi
# A self-contained kubeconfig (certificates inline): the Argo CD cluster Secret
# and Go tests read it without the pki folder.
export KUBECONFIG=$E2E_DIR/kubeconfig
"$KUBECTL" --kubeconfig "$KWOK_CLUSTER_DIR/kubeconfig.yaml" config view --raw --flatten --minify >"$KUBECONFIG"
chmod 600 "$KUBECONFIG"
k() { "$KUBECTL" "$@"; }
api_server=$(k config view -o jsonpath='{.clusters[0].cluster.server}')

k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $E2E_NODE
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: $E2E_NODE
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  allocatable: {cpu: "1000", memory: 1Ti, pods: "$E2E_NODE_PODS"}
  capacity: {cpu: "1000", memory: 1Ti, pods: "$E2E_NODE_PODS"}
EOF
# Server-side apply: several of these CRDs are too large for the
# last-applied-configuration annotation of client-side apply.
k apply --server-side --force-conflicts -f "$istio_crds" >/dev/null
# Gateway API's standard channel, for the gatewayapi router (CRDs only: the
# directory's ValidatingAdmissionPolicy needs no admission here).
for f in "$gateway_api_crds"/gateway.networking.k8s.io_*.yaml; do
  case $f in *_vap_*) continue ;; esac
  k apply --server-side --force-conflicts -f "$f" >/dev/null
done
k apply --server-side --force-conflicts -f "$argocd_src/manifests/crds/application-crd.yaml" \
  -f "$argocd_src/manifests/crds/appproject-crd.yaml" >/dev/null
# kubectl wait fails at once (not after its timeout) on an object that has no
# status.conditions yet, which a CRD or the fake Node may not have a moment
# after their creation: poll it.
wait_for "the CRDs to be established" 60 k wait --for=condition=Established crd --all --timeout=5s
wait_for "node $E2E_NODE to be Ready" 60 k wait --for=condition=Ready "node/$E2E_NODE" --timeout=5s

# --- Argo CD -----------------------------------------------------------------------
ca_data=$(k config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
cert_data=$(k config view --raw -o jsonpath='{.users[0].user.client-certificate-data}')
key_data=$(k config view --raw -o jsonpath='{.users[0].user.client-key-data}')
server_secret_key=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $ARGOCD_NS
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: $ARGOCD_NS
  labels: {app.kubernetes.io/name: argocd-cm, app.kubernetes.io/part-of: argocd}
data:
  # The controller runs outside the cluster: it has no in-cluster config, so the
  # API server is registered by the cluster Secret below instead.
  cluster.inClusterEnabled: "false"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-rbac-cm
  namespace: $ARGOCD_NS
  labels: {app.kubernetes.io/name: argocd-rbac-cm, app.kubernetes.io/part-of: argocd}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cmd-params-cm
  namespace: $ARGOCD_NS
  labels: {app.kubernetes.io/name: argocd-cmd-params-cm, app.kubernetes.io/part-of: argocd}
---
apiVersion: v1
kind: Secret
metadata:
  name: argocd-secret
  namespace: $ARGOCD_NS
  labels: {app.kubernetes.io/name: argocd-secret, app.kubernetes.io/part-of: argocd}
stringData:
  server.secretkey: "$server_secret_key"
---
apiVersion: v1
kind: Secret
metadata:
  name: cluster-local
  namespace: $ARGOCD_NS
  labels: {argocd.argoproj.io/secret-type: cluster, app.kubernetes.io/part-of: argocd}
stringData:
  name: local
  server: "$api_server"
  config: '{"tlsClientConfig":{"caData":"$ca_data","certData":"$cert_data","keyData":"$key_data"}}'
---
# argocd-server creates the default project; it does not run here.
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: default
  namespace: $ARGOCD_NS
spec:
  sourceRepos: ["*"]
  destinations: [{server: "*", namespace: "*"}]
  clusterResourceWhitelist: [{group: "*", kind: "*"}]
EOF
if [ -n "${ARGOCD_CM_PATCH:-}" ]; then
  [ -f "$ARGOCD_CM_PATCH" ] || die "ARGOCD_CM_PATCH $ARGOCD_CM_PATCH does not exist"
  k -n "$ARGOCD_NS" patch configmap argocd-cm --type merge --patch-file "$ARGOCD_CM_PATCH" >/dev/null
fi

argo=$E2E_DIR/argocd
mkdir -p "$argo"/{gnupg,tls,ssh,tmp,home,plugins}
chmod 700 "$argo/gnupg"
(
  export ARGOCD_GPG_ENABLED=false
  export ARGOCD_GNUPGHOME=$argo/gnupg ARGOCD_TLS_DATA_PATH=$argo/tls ARGOCD_SSH_DATA_PATH=$argo/ssh
  # Defaults are fixed paths under /tmp and /home/argocd, shared by every run on the machine.
  export ARGOCD_ASK_PASS_SOCK=$argo/askpass.sock ARGOCD_PLUGINSOCKFILEPATH=$argo/plugins
  export TMPDIR=$argo/tmp HOME=$argo/home
  # With HTTP credentials the repo server runs git with GIT_ASKPASS=argocd: the
  # same binary, found on PATH, acting as the askpass helper.
  export PATH=$ARGOCD_BIN:$PATH
  STACK_ENV="ARGOCD_GPG_ENABLED ARGOCD_GNUPGHOME ARGOCD_TLS_DATA_PATH ARGOCD_SSH_DATA_PATH
    ARGOCD_ASK_PASS_SOCK ARGOCD_PLUGINSOCKFILEPATH TMPDIR HOME PATH"
  start_bg argocd-repo-server "$ARGOCD_BIN/argocd-repo-server" \
    --address 127.0.0.1 --port "$REPO_SERVER_PORT" --disable-tls \
    --metrics-address 127.0.0.1 --metrics-port "$REPO_SERVER_METRICS_PORT" \
    --redis "127.0.0.1:$REDIS_PORT" --logformat text \
    --revision-cache-expiration "${ARGOCD_APP_RESYNC}s"
  start_bg argocd-application-controller "$ARGOCD_BIN/argocd-application-controller" \
    --kubeconfig "$KUBECONFIG" --namespace "$ARGOCD_NS" \
    --repo-server "127.0.0.1:$REPO_SERVER_PORT" --repo-server-plaintext \
    --redis "127.0.0.1:$REDIS_PORT" \
    --metrics-port "$CONTROLLER_METRICS_PORT" \
    --app-resync "$ARGOCD_APP_RESYNC" --app-resync-jitter 0 --self-heal-timeout-seconds 2 \
    --status-processors 4 --operation-processors 2 --logformat text
)

# --- seed the Git repo (while Argo CD starts) ------------------------------------
wait_for "the Git server's address" 20 test -s "$E2E_DIR/git/addr"
GIT_SERVER_URL=$(cat "$E2E_DIR/git/addr")
GIT_URL=$GIT_SERVER_URL/$GIT_REPO.git
seed_work=$E2E_DIR/git/seed-work
# push_first_commit URL MESSAGE: commits the files in $seed_work as the first
# commit of GIT_BRANCH and pushes it through the server (not to the bare
# folder), so that the first commit already proves the HTTP path and the
# credentials work.
push_first_commit() (
  cd "${seed_work:?}"
  # A caller's GIT_DIR/GIT_WORK_TREE (a hook, an IDE, a test runner) would
  # make the commit below land in that repository instead of the seed.
  unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_COMMON_DIR
  export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
  export GIT_AUTHOR_NAME="canaryop demo" GIT_AUTHOR_EMAIL=demo@canaryop.invalid
  export GIT_COMMITTER_NAME="canaryop demo" GIT_COMMITTER_EMAIL=demo@canaryop.invalid
  git init -q -b "$GIT_BRANCH"
  git add -A
  git commit -q --allow-empty -m "$2"
  # Credentials through the environment, not the command line (visible in ps).
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader
  GIT_CONFIG_VALUE_0="Authorization: Basic $(printf '%s:%s' "$GIT_USER" "$GIT_TOKEN" | base64 -w0)"
  export GIT_CONFIG_VALUE_0
  git push -q "$1" "HEAD:refs/heads/$GIT_BRANCH"
)
# argocd_repo_secret NAME URL: Argo CD's repository Secret repo-NAME for URL.
argocd_repo_secret() {
  k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: repo-${1//\//-}
  namespace: $ARGOCD_NS
  labels: {argocd.argoproj.io/secret-type: repository, app.kubernetes.io/part-of: argocd}
stringData:
  type: git
  url: "$2"
  username: "$GIT_USER"
  password: "$GIT_TOKEN"
EOF
}
rm -rf "$seed_work"
mkdir -p "$seed_work/$SEED_PREFIX"
cp -R "$SEED_DIR"/. "$seed_work/$SEED_PREFIX"/
rm -rf "$seed_work/.git" "$seed_work/$SEED_PREFIX/.git"
push_first_commit "$GIT_URL" "seed from $(basename "$SEED_DIR")"
argocd_repo_secret "$GIT_REPO" "$GIT_URL"
for r in "${extra_repos[@]}"; do
  rm -rf "$seed_work"
  mkdir -p "$seed_work"
  printf '# %s\n\nA repository of the local stack besides %s (GIT_EXTRA_REPOS).\n' "$r" "$GIT_REPO" >"$seed_work/README.md"
  push_first_commit "$GIT_SERVER_URL/$r.git" "seed $r"
  argocd_repo_secret "$r" "$GIT_SERVER_URL/$r.git"
done
rm -rf "$seed_work"

# --- readiness -------------------------------------------------------------------
wait_for "Prometheus to be ready" 60 curl -fsS "http://127.0.0.1:$PROM_PORT/-/ready"
wait_for "Redis" 20 port_open "$REDIS_PORT"
wait_for "the Argo CD repo server" 60 port_open "$REPO_SERVER_PORT"
wait_for "the Argo CD application controller" 60 curl -fsS "http://127.0.0.1:$CONTROLLER_METRICS_PORT/healthz"

# --- env file ----------------------------------------------------------------------
# Plain KEY=value lines, no quoting (values never hold spaces): `set -a; . .e2e/env`
# in shell, `include` in make, a line split on the first '=' in Go.
env_tmp=$E2E_DIR/env.tmp
umask 077
cat >"$env_tmp" <<EOF
E2E_DIR=$E2E_DIR
E2E_LOGS_DIR=$LOGS_DIR
E2E_CLUSTER=$E2E_CLUSTER
E2E_NODE=$E2E_NODE
KUBECONFIG=$KUBECONFIG
KUBECTL=$KUBECTL
KUBE_API_SERVER=$api_server
KWOK_CLUSTER_LOGS_DIR=$KWOK_CLUSTER_DIR/logs
PROM_URL=http://127.0.0.1:$PROM_PORT
PROM_TARGETS_DIR=$prom/targets
GIT_SERVER_URL=$GIT_SERVER_URL
GIT_URL=$GIT_URL
GIT_REPO=$GIT_REPO
GIT_BRANCH=$GIT_BRANCH
GIT_USER=$GIT_USER
GIT_TOKEN=$GIT_TOKEN
GIT_REPOS_DIR=$git_root
GIT_EXTRA_REPOS=$(IFS=,; echo "${extra_repos[*]}")
GIT_SEED_PATH=${SEED_PREFIX:-.}
ARGOCD_NS=$ARGOCD_NS
ARGOCD_CLUSTER_SERVER=$api_server
ARGOCD_CLUSTER_NAME=local
ARGOCD_REPO_SECRET=repo-$GIT_REPO
ARGOCD_BIN_DIR=$ARGOCD_BIN
ARGOCD_REPO_SERVER=127.0.0.1:$REPO_SERVER_PORT
REDIS_ADDR=127.0.0.1:$REDIS_PORT
EOF
mv "$env_tmp" "$E2E_DIR/env"
log "stack up in $((SECONDS - started))s; env in $E2E_DIR/env, logs in $LOGS_DIR; stop with hack/stack/down.sh"
