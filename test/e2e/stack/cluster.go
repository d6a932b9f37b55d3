package stack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/gitops/argocd"
	"github.com/atzedevries/canaryop/gitops/credentials"
)

// Placeholders in argocd/*.yaml (see argocd/README.md).
const (
	RepoURLPlaceholder = "https://git.example.com/canaryop-demo.git"
	ServerPlaceholder  = "https://kubernetes.default.svc"
)

var applicationGVK = argocd.ApplicationGVK

// OperatorNamespace holds the operator's Git credentials Secret.
const OperatorNamespace = "canaryop-system"

// Cluster talks to the stack's API server as its admin.
type Cluster struct {
	Client client.Client
	env    Env
}

// NewCluster connects to the stack's cluster.
func NewCluster(env Env) (*Cluster, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Get("KUBECONFIG"))
	if err != nil {
		return nil, fmt.Errorf("loading the stack's kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "canaryop-e2e"
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1.AddToScheme, istionetv1.AddToScheme, gatewayv1.Install} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to the stack's API server: %w", err)
	}
	return &Cluster{Client: c, env: env}, nil
}

// Kubectl runs the stack's kubectl against the cluster and returns its
// combined output.
func (c *Cluster) Kubectl(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.env.Kubectl(), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.env.Get("KUBECONFIG"))
	cmd.Dir = c.env.Root
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// InstallCRD applies config/crd and waits until the API serves CanaryApps.
func (c *Cluster) InstallCRD(ctx context.Context) error {
	if _, err := c.Kubectl(ctx, nil, "apply", "--server-side", "-k", "config/crd"); err != nil {
		return err
	}
	_, err := c.Kubectl(ctx, nil, "wait", "--for=condition=Established", "--timeout=60s", "crd/canaryapps.canary.atze.io")
	return err
}

// EnsureNamespace creates namespace ns when it does not exist.
func (c *Cluster) EnsureNamespace(ctx context.Context, ns string) error {
	err := c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	return nil
}

// GiveOperatorGitCredentials creates the platform admin's Secret through
// which the operator pushes to the stack's Git server: one token for the
// whole server, as an organisation-wide token would be, and no namespaces
// key, so it serves only CanaryApps whose location an Argo CD Application
// proves (it syncs the app into the app's namespace from that location).
func (c *Cluster) GiveOperatorGitCredentials(ctx context.Context) error {
	return c.GiveGitCredentials(ctx, "git-local", c.env.Get("GIT_SERVER_URL")+"/", nil)
}

// GiveGitCredentials creates a credential Secret of the operator for the
// repositories under url, with the Git server's user and token and the
// admin's scope keys (credentials.KeyNamespaces, KeyPaths, KeyBranches,
// KeyWriteModes).
func (c *Cluster) GiveGitCredentials(ctx context.Context, name, url string, scope map[string]string) error {
	if err := c.EnsureNamespace(ctx, OperatorNamespace); err != nil {
		return err
	}
	data := map[string]string{
		credentials.KeyURL:      url,
		credentials.KeyUsername: c.env.Get("GIT_USER"),
		credentials.KeyPassword: c.env.Get("GIT_TOKEN"),
	}
	for k, v := range scope {
		data[k] = v
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: OperatorNamespace,
			Labels: map[string]string{credentials.LabelKey: "true"},
		},
		StringData: data,
	}
	if err := c.Client.Create(ctx, s); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the Git credentials Secret %s: %w", name, err)
	}
	return nil
}

// argocdObject reads argocd/<file> with its placeholders replaced by the
// stack's Git URL and API server.
func (c *Cluster) argocdObject(file string) (*unstructured.Unstructured, error) {
	b, err := os.ReadFile(filepath.Join(c.env.Root, "argocd", file))
	if err != nil {
		return nil, err
	}
	s := strings.ReplaceAll(string(b), RepoURLPlaceholder, c.env.Get("GIT_URL"))
	s = strings.ReplaceAll(s, ServerPlaceholder, c.env.Get("ARGOCD_CLUSTER_SERVER"))
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(s), &u.Object); err != nil {
		return nil, fmt.Errorf("parsing argocd/%s: %w", file, err)
	}
	u.SetNamespace(c.env.Get("ARGOCD_NS"))
	return u, nil
}

func (c *Cluster) apply(ctx context.Context, u *unstructured.Unstructured) error {
	b, err := yaml.Marshal(u.Object)
	if err != nil {
		return err
	}
	_, err = c.Kubectl(ctx, b, "apply", "-f", "-")
	return err
}

// ApplyProject applies argocd/appproject.yaml: the project that lets Argo CD
// create only CanaryApps, only in namespace default, only from the demo repo.
func (c *Cluster) ApplyProject(ctx context.Context) error {
	u, err := c.argocdObject("appproject.yaml")
	if err != nil {
		return err
	}
	return c.apply(ctx, u)
}

// ApplyTeamProject applies argocd/appproject.yaml as the project name of
// one team: CanaryApps only, only into namespace ns, only from repoURL.
func (c *Cluster) ApplyTeamProject(ctx context.Context, name, repoURL, ns string) error {
	u, err := c.argocdObject("appproject.yaml")
	if err != nil {
		return err
	}
	u.SetName(name)
	if err := unstructured.SetNestedField(u.Object, "CanaryApps of namespace "+ns+", synced from "+repoURL, "spec", "description"); err != nil {
		return err
	}
	if err := unstructured.SetNestedStringSlice(u.Object, []string{repoURL}, "spec", "sourceRepos"); err != nil {
		return err
	}
	dest := []any{map[string]any{"server": c.env.Get("ARGOCD_CLUSTER_SERVER"), "namespace": ns}}
	if err := unstructured.SetNestedSlice(u.Object, dest, "spec", "destinations"); err != nil {
		return err
	}
	return c.apply(ctx, u)
}

// ApplyApplication applies argocd/application.yaml as app's Application: it
// syncs app.Dir of repoURL's branch into app.Namespace, in app.Project (the
// project canaryapps when empty), automated with prune and self-heal.
func (c *Cluster) ApplyApplication(ctx context.Context, app App, repoURL string) error {
	u, err := c.argocdObject("application.yaml")
	if err != nil {
		return err
	}
	u.SetName(app.Application)
	set := func(value string, path ...string) {
		if err == nil {
			err = unstructured.SetNestedField(u.Object, value, path...)
		}
	}
	set(repoURL, "spec", "source", "repoURL")
	set(app.Dir, "spec", "source", "path")
	set(c.env.Get("GIT_BRANCH"), "spec", "source", "targetRevision")
	set(app.Namespace, "spec", "destination", "namespace")
	if app.Project != "" {
		set(app.Project, "spec", "project")
	}
	if err != nil {
		return err
	}
	return c.apply(ctx, u)
}

// RefreshApplication asks Argo CD to look at Git now, which is what a Git
// webhook does after a push.
func (c *Cluster) RefreshApplication(ctx context.Context, name string) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(applicationGVK)
	u.SetNamespace(c.env.Get("ARGOCD_NS"))
	u.SetName(name)
	patch := []byte(`{"metadata":{"annotations":{"argocd.argoproj.io/refresh":"normal"}}}`)
	if err := c.Client.Patch(ctx, u, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("refreshing Application %s: %w", name, err)
	}
	return nil
}

// AppState is what Argo CD reports about an Application.
type AppState struct {
	Sync          string // Synced, OutOfSync, Unknown
	Revision      string // the commit it compared with
	Health        string // Healthy, Progressing, Degraded, Missing, ...
	HealthMessage string
	// OperationPhase and OperationMessage are the last sync operation's.
	OperationPhase, OperationMessage string
	// Conditions are "Type: message" of status.conditions.
	Conditions []string
	// Results are "Kind namespace/name: status: message" of the last sync
	// operation's resources (where a refused resource says why).
	Results []string
}

// ShortRevision is the first 7 characters of Revision.
func (s AppState) ShortRevision() string {
	if len(s.Revision) > 7 {
		return s.Revision[:7]
	}
	return s.Revision
}

// Application reads Argo CD's status of Application name.
func (c *Cluster) Application(ctx context.Context, name string) (AppState, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(applicationGVK)
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.env.Get("ARGOCD_NS"), Name: name}, u); err != nil {
		return AppState{}, fmt.Errorf("reading Application %s: %w", name, err)
	}
	str := func(path ...string) string {
		s, _, _ := unstructured.NestedString(u.Object, path...)
		return s
	}
	st := AppState{
		Sync:             str("status", "sync", "status"),
		Revision:         str("status", "sync", "revision"),
		Health:           str("status", "health", "status"),
		HealthMessage:    str("status", "health", "message"),
		OperationPhase:   str("status", "operationState", "phase"),
		OperationMessage: str("status", "operationState", "message"),
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, raw := range conds {
		if m, ok := raw.(map[string]any); ok {
			st.Conditions = append(st.Conditions, fmt.Sprintf("%v: %v", m["type"], m["message"]))
		}
	}
	results, _, _ := unstructured.NestedSlice(u.Object, "status", "operationState", "syncResult", "resources")
	for _, raw := range results {
		if m, ok := raw.(map[string]any); ok {
			st.Results = append(st.Results, fmt.Sprintf("%v %v/%v: %v: %v", m["kind"], m["namespace"], m["name"], m["status"], m["message"]))
		}
	}
	// The health of the CanaryApp itself (from the Lua check) is in
	// status.resources; Argo CD v3 leaves status.health.message empty.
	res, _, _ := unstructured.NestedSlice(u.Object, "status", "resources")
	for _, raw := range res {
		if m, ok := raw.(map[string]any); ok && m["kind"] == "CanaryApp" {
			if h, ok := m["health"].(map[string]any); ok && st.HealthMessage == "" {
				st.HealthMessage, _ = h["message"].(string)
			}
		}
	}
	return st, nil
}

// CanaryApp reads the CanaryApp ns/name.
func (c *Cluster) CanaryApp(ctx context.Context, ns, name string) (*v1.CanaryApp, error) {
	app := &v1.CanaryApp{}
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, app); err != nil {
		return nil, err
	}
	return app, nil
}

// Weights are the live weights of the app's VirtualService or HTTPRoute;
// Found is false while there is none.
type Weights struct {
	Found           bool
	Primary, Canary int32
	// Kind is the kind that holds them: VirtualService or HTTPRoute.
	Kind string
}

func (w Weights) String() string {
	if !w.Found {
		return "no route"
	}
	return fmt.Sprintf("primary %d / canary %d", w.Primary, w.Canary)
}

// VirtualServiceWeights reads the weights the operator routes by.
func (c *Cluster) VirtualServiceWeights(ctx context.Context, ns, name string) (Weights, error) {
	vs := &istionetv1.VirtualService{}
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, vs); err != nil {
		if apierrors.IsNotFound(err) {
			return Weights{}, nil
		}
		return Weights{}, err
	}
	w := Weights{Found: true, Kind: "VirtualService"}
	if len(vs.Spec.Http) == 0 {
		return w, nil
	}
	// The weighted route is the last: canaryMatch routes come first.
	for _, r := range vs.Spec.Http[len(vs.Spec.Http)-1].Route {
		if r.Destination == nil {
			continue
		}
		switch r.Destination.Subset {
		case "primary":
			w.Primary += r.Weight
		case "canary":
			w.Canary += r.Weight
		}
	}
	return w, nil
}
