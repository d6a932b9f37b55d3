// Package e2e is the end-to-end suite of canaryop: the release flow of the
// README on the local stack of hack/stack (a kwok cluster, Argo CD,
// Prometheus, a Git server), with the operator and the traffic simulator
// running as local processes. The tests carry the build tag e2e, so
// `go test ./...` skips them; `make e2e` (hack/e2e.sh) starts the stack, runs
// them and tears everything down.
package e2e
