# canaryop Makefile. Everything the targets need is built or installed by the
# targets themselves (see hack/), so a fresh machine needs only Go and apt.

KUBE_VERSION ?= v1.37.2
BIN          := $(CURDIR)/bin
ENVTEST_DIR  := $(BIN)/k8s/$(KUBE_VERSION)
CONTROLLER_GEN := $(BIN)/controller-gen
# kubectl on the PATH when there is one, else the one built for envtest.
KUBECTL      ?= $(or $(shell command -v kubectl 2>/dev/null),$(ENVTEST_DIR)/kubectl)
IMG          ?= canaryop:dev
# The version stamped into the manager (canaryop_build_info) and the image;
# make release takes it as the release's version.
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS       = -s -w -X github.com/atzedevries/canaryop/internal/opmetrics.Version=$(VERSION)
GO_TEST_FLAGS ?= -count=1
HELM_VERSION ?= v3.22.0
HELM         ?= $(BIN)/helm/$(HELM_VERSION)/helm
# Debian's prometheus package ships promtool (hack/stack/install-deps.sh).
PROMTOOL     ?= promtool

export KUBEBUILDER_ASSETS := $(ENVTEST_DIR)
# The chart tests (charts/) run this Helm.
export HELM

.PHONY: all
all: build

##@ Development

$(CONTROLLER_GEN):
	cd hack/tools/codegen && GOBIN= go build -o $(CONTROLLER_GEN) sigs.k8s.io/controller-tools/cmd/controller-gen

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code.
	$(CONTROLLER_GEN) object paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRD and the manager's RBAC role from markers.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=manager-role paths="{./controllers/...,./internal/traffic/...}" output:rbac:artifacts:config=config/rbac
	cp config/crd/bases/canary.atze.io_canaryapps.yaml charts/canaryop/crds/
	cp config/rbac/role.yaml charts/canaryop/files/manager-role.yaml

.PHONY: verify
verify: generate manifests ## Fail when generated files are stale.
	@git diff --exit-code -- api/v1/zz_generated.deepcopy.go config/crd/bases config/rbac/role.yaml charts/canaryop/crds charts/canaryop/files/manager-role.yaml || { echo "generated files are stale: run 'make generate manifests' and commit"; exit 1; }

.PHONY: tidy-check
tidy-check: ## Fail when go mod tidy would change go.mod or go.sum (this module, hack/tools/helm).
	@go mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit"; exit 1; }
	@cd hack/tools/helm && go mod tidy -diff || { echo "hack/tools/helm: run 'go mod tidy' there and commit"; exit 1; }

.PHONY: envtest
envtest: ## Build etcd and kube-apiserver for envtest (first run only: several minutes).
	hack/build-kube-bins.sh envtest

.PHONY: test
test: envtest $(HELM) ## Unit and envtest suites against a real kube-apiserver + etcd.
	go vet ./...
	go test $(GO_TEST_FLAGS) ./...

.PHONY: bench
bench: envtest ## Benchmarks reported in BENCHMARKS.md.
	go test -run '^$$' -bench . -benchmem ./...

.PHONY: build
build: ## Build the manager binary.
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/manager ./cmd

.PHONY: kubectl-canaryapp
kubectl-canaryapp: ## Build the kubectl plugin into bin/ (put it on the PATH: kubectl canaryapp ...).
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/kubectl-canaryapp ./cmd/kubectl-canaryapp

.PHONY: run
run: ## Run the manager against the current kubeconfig.
	go run ./cmd --metrics-bind-address=127.0.0.1:8080 --health-probe-bind-address=127.0.0.1:8081

$(HELM):
	@echo "building helm $(HELM_VERSION) from hack/tools/helm (first run only, about 2 minutes on 2 cores)" >&2
	@mkdir -p $(dir $(HELM))
	cd hack/tools/helm && CGO_ENABLED=0 GOBIN= go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION)" -o $(HELM).tmp helm.sh/helm/v3/cmd/helm
	mv $(HELM).tmp $(HELM)

.PHONY: helm
helm: $(HELM) ## Build the Helm CLI into bin/.

.PHONY: chart-check
chart-check: $(HELM) ## helm lint and template over the values matrix; chart vs config/default; values table.
	go test $(GO_TEST_FLAGS) ./charts/

.PHONY: chart-docs
chart-docs: ## Regenerate the values table in charts/canaryop/README.md from values.yaml.
	go test ./charts/ -run '^TestValuesTable$$' -count=1 -args -update

.PHONY: monitoring
monitoring: ## Regenerate the Grafana dashboard (charts/canaryop/files/dashboard.json) from monitoring/.
	go test ./monitoring/ -run '^TestDashboardFileIsGenerated$$' -count=1 -args -update

.PHONY: monitoring-check
monitoring-check: ## promtool check and unit tests of the alert rules; dashboard queries vs exported metrics.
	hack/stack/install-deps.sh
	$(PROMTOOL) check rules charts/canaryop/files/prometheus-rules.yaml
	$(PROMTOOL) test rules monitoring/testdata/alerts_test.yaml
	PROMTOOL=$$(command -v $(PROMTOOL)) go test $(GO_TEST_FLAGS) ./monitoring/ ./internal/opmetrics/

##@ Local demo and end-to-end suite (hack/stack: kwok, Argo CD, Prometheus, Git)

.PHONY: demo
demo: ## Play the GitOps release flow on a local stack (first run builds everything).
	hack/demo.sh

.PHONY: demo-down
demo-down: ## Stop whatever an interrupted demo or e2e run left running.
	hack/stack/down.sh

.PHONY: e2e
e2e: ## End-to-end suite (test/e2e, build tag e2e) against the local stack.
	hack/e2e.sh

##@ Deployment

.PHONY: kubectl
kubectl: ## Use kubectl from the PATH; without one, build it (first run only).
	@[ -x "$(KUBECTL)" ] || hack/build-kube-bins.sh kubectl >/dev/null

.PHONY: install
install: kubectl ## Install the CRD into the current cluster.
	$(KUBECTL) apply -k config/crd

.PHONY: uninstall
uninstall: kubectl
	$(KUBECTL) delete -k config/crd

.PHONY: deploy
deploy: kubectl ## Deploy the operator (CRD, RBAC, manager) with image IMG into the current cluster.
	go run ./hack/render -image $(IMG) config/default | $(KUBECTL) apply -f -

.PHONY: undeploy
undeploy: kubectl
	$(KUBECTL) delete -k config/default

.PHONY: docker-build
docker-build: ## Build the image IMG (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the image IMG.
	docker push $(IMG)

.PHONY: release
release: $(HELM) ## make release VERSION=vX.Y.Z [DIGEST=sha256:...]: dist/install.yaml and the packaged chart.
	VERSION=$(VERSION) DIGEST=$(DIGEST) HELM=$(HELM) hack/release.sh

.PHONY: help
help:
	@grep -E '^[a-zA-Z_-]+:.*?## .*$$' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'
