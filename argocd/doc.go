// Package argocd holds canaryop's Argo CD integration files, embedded so that
// Go tests and the demo harness read exactly what a person applies:
//
//   - appproject.yaml: the AppProject "canaryapps", restricted to the demo Git
//     repository, the namespace "default" and the CanaryApp kind.
//   - application.yaml: the Application that syncs the demo app folder with
//     automated sync (prune, self-heal).
//   - operator-application.yaml: an Application that installs the operator
//     from the Helm chart charts/canaryop at a release tag.
//   - health-canaryapp.lua, actions/*.lua and argocd-cm-patch.yaml: the
//     CanaryApp health check, its resource actions (approve, abort, retry,
//     suspend, resume) and the argocd-cm patch that installs them.
//
// The Go code is this embedding and the rendering of the argocd-cm patch;
// the tests run the scripts in gopher-lua the way Argo CD does.
package argocd

import (
	"embed"
	"fmt"
	"strings"
)

// Files are the manifests and the health check of this folder.
//
//go:embed *.yaml *.lua
var Files embed.FS

// HealthLua is the CanaryApp health check script.
//
//go:embed health-canaryapp.lua
var HealthLua string

// Actions are the resource action scripts by action name, and the discovery
// script under "discovery".
//
//go:embed actions/*.lua
var Actions embed.FS

// ActionNames are the CanaryApp resource actions, in the order the patch
// lists them.
var ActionNames = []string{"approve", "abort", "retry", "suspend", "resume"}

// ActionsYAML is the value of ActionsKey in argocd-cm: the discovery script
// and one definition per action, as Argo CD's ResourceActions reads it.
func ActionsYAML() (string, error) {
	var b strings.Builder
	discovery, err := Actions.ReadFile("actions/discovery.lua")
	if err != nil {
		return "", err
	}
	b.WriteString("discovery.lua: |\n")
	b.WriteString(indent(string(discovery), "  "))
	b.WriteString("definitions:\n")
	for _, name := range ActionNames {
		script, err := Actions.ReadFile("actions/" + name + ".lua")
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "- name: %s\n  action.lua: |\n", name)
		b.WriteString(indent(string(script), "    "))
	}
	return b.String(), nil
}

func indent(text, prefix string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(text, "\n") {
		if strings.TrimSpace(l) == "" {
			if l != "" {
				b.WriteString("\n")
			}
			continue
		}
		b.WriteString(prefix + l)
	}
	return b.String()
}

const (
	// ActionsKey is the argocd-cm key of the CanaryApp resource actions.
	ActionsKey = "resource.customizations.actions.canary.atze.io_CanaryApp"
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
