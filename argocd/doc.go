// Package argocd holds canaryop's Argo CD integration files, embedded so that
// Go tests and the demo harness read exactly what a person applies:
//
//   - appproject.yaml: the AppProject "canaryapps", restricted to the demo Git
//     repository, the namespace "default" and the CanaryApp kind.
//   - application.yaml: the Application that syncs the demo app folder with
//     automated sync (prune, self-heal).
//   - operator-application.yaml: an Application that installs the operator
//     from the Helm chart charts/canaryop at a release tag.
//   - health-canaryapp.lua and argocd-cm-patch.yaml: the CanaryApp health
//     check and the argocd-cm patch that installs it.
//
// The Go code is only this embedding; the tests run the health check in
// gopher-lua the way Argo CD does.
package argocd

import "embed"

// Files are the manifests and the health check of this folder.
//
//go:embed *.yaml *.lua
var Files embed.FS

// HealthLua is the CanaryApp health check script.
//
//go:embed health-canaryapp.lua
var HealthLua string

const (
	// HealthCheckKey is the argocd-cm key of the CanaryApp health check.
	HealthCheckKey = "resource.customizations.health.canary.atze.io_CanaryApp"
	// RepoURLPlaceholder is the Git repository URL in appproject.yaml and
	// application.yaml that the demo replaces with its own Git server's.
	RepoURLPlaceholder = "https://git.example.com/canaryop-demo.git"
	// InClusterServer is Argo CD's URL of the cluster it runs in, the
	// destination in the manifests; an Argo CD outside the cluster replaces
	// it with the URL under which it registered the API server.
	InClusterServer = "https://kubernetes.default.svc"
)
