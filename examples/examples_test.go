package examples_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/testenv"
)

const limitedUser = "system:serviceaccount:default:limited-user"

// kubectl runs the kubectl built next to the envtest binaries against env.
type kubectl struct {
	t          *testing.T
	bin        string
	kubeconfig string
	root       string
}

func (k kubectl) run(args ...string) (string, error) {
	k.t.Helper()
	cmd := exec.CommandContext(k.t.Context(), k.bin, append([]string{"--kubeconfig", k.kubeconfig}, args...)...)
	cmd.Dir = k.root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (k kubectl) must(args ...string) string {
	k.t.Helper()
	out, err := k.run(args...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func findKubectl(t *testing.T, root string) string {
	t.Helper()
	dirs := []string{os.Getenv("KUBEBUILDER_ASSETS"), filepath.Join(root, "bin", "k8s", testenv.KubeVersion)}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if p := filepath.Join(d, "kubectl"); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath("kubectl"); err == nil {
		return p
	}
	t.Fatalf("no kubectl in %v or on PATH: run `make envtest`", dirs)
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// writeKubeconfig writes a kubeconfig for the envtest administrator.
func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin", Namespace: "default"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReadmeFlow follows the original README on a real API server with RBAC:
// the sample CanaryApp is valid, and the limited user manages CanaryApps in
// "default" and nothing else.
func TestReadmeFlow(t *testing.T) {
	env := testenv.StartT(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	k := kubectl{t: t, bin: findKubectl(t, root), kubeconfig: writeKubeconfig(t, env.Config), root: root}

	// The demo app as Argo CD would sync it.
	k.must("apply", "-k", "examples/gitops/canaryapp-sample")
	app := &v1.CanaryApp{}
	if err := env.Client.Get(t.Context(), types.NamespacedName{Namespace: "default", Name: "canaryapp-sample"}, app); err != nil {
		t.Fatal(err)
	}
	s := app.Spec
	if s.Image != "atzedevries/go-status-code-server:v1" || s.ImageListenPort != 8088 || s.Replicas != 2 || s.TestReplicas != 1 ||
		s.PrometheusQuery != `increase(istio_requests_total{destination_service_name="canaryapp-sample",response_code=~"5.*"}[20s]) > 2` ||
		s.PrometheusURL != "http://prometheus.istio-system.svc:9090" || s.Analysis != nil {
		t.Errorf("the sample differs from the original README's: %+v", s)
	}
	// The folder the README presents as the write-back example writes back.
	if g := s.GitOps; g == nil || g.Promotion != v1.WriteCommit || g.Rollback != v1.WriteCommit {
		t.Errorf("the sample's spec.gitops = %+v, want promotion and rollback by commit", g)
	}

	// The README's commands, in its order: the service account first.
	k.must("create", "serviceaccount", "limited-user")
	k.must("apply", "-f", "examples/limited-user/")

	as := "--as=" + limitedUser
	if out := k.must(as, "get", "canaryapps", "canaryapp-sample"); !strings.Contains(out, "canaryapp-sample") {
		t.Errorf("limited user get canaryapps: %s", out)
	}
	if out, err := k.run(as, "get", "pods"); err == nil || !strings.Contains(out, "Forbidden") {
		t.Errorf("limited user get pods: err %v, want Forbidden:\n%s", err, out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "canaryapps.canary.atze.io"}, "yes"},
		{[]string{"update", "canaryapps.canary.atze.io"}, "yes"},
		{[]string{"patch", "canaryapps.canary.atze.io"}, "yes"},
		{[]string{"delete", "canaryapps.canary.atze.io"}, "yes"},
		{[]string{"watch", "canaryapps.canary.atze.io"}, "yes"},
		{[]string{"list", "canaryapps.canary.atze.io"}, "yes"},
		{[]string{"get", "canaryapps.canary.atze.io", "--subresource=status"}, "yes"},
		{[]string{"update", "canaryapps.canary.atze.io", "--subresource=status"}, "no"},
		{[]string{"get", "canaryapps.canary.atze.io", "-n", "kube-system"}, "no"},
		{[]string{"list", "pods"}, "no"},
		{[]string{"create", "deployments.apps"}, "no"},
		{[]string{"get", "virtualservices.networking.istio.io"}, "no"},
		{[]string{"get", "secrets"}, "no"},
		{[]string{"create", "rolebindings.rbac.authorization.k8s.io"}, "no"},
	} {
		out, _ := k.run(append([]string{"auth", "can-i", as}, tc.args...)...)
		if got := strings.TrimSpace(out); got != tc.want {
			t.Errorf("limited user can-i %s: %q, want %q", strings.Join(tc.args, " "), got, tc.want)
		}
	}

	// Really editing, not just being told so.
	k.must(as, "patch", "canaryapp", "canaryapp-sample", "--type=merge", "--patch", `{"spec":{"image":"atzedevries/go-status-code-server:v2"}}`)
	if err := env.Client.Get(t.Context(), types.NamespacedName{Namespace: "default", Name: "canaryapp-sample"}, app); err != nil {
		t.Fatal(err)
	}
	if app.Spec.Image != "atzedevries/go-status-code-server:v2" {
		t.Errorf("image after the limited user's patch: %s", app.Spec.Image)
	}
	k.must(as, "delete", "canaryapp", "canaryapp-sample")

	// The same rights for a user that authenticates as the service account
	// with its own certificate (no impersonation by an administrator).
	user, err := env.AddUser(limitedUser, "system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated")
	if err != nil {
		t.Fatal(err)
	}
	mine := &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "mine"}, Spec: s}
	if err := user.Create(t.Context(), mine); err != nil {
		t.Fatalf("limited user creates a CanaryApp: %v", err)
	}
	mine.Spec.Image = "atzedevries/go-status-code-server:v3"
	if err := user.Update(t.Context(), mine); err != nil {
		t.Fatalf("limited user updates a CanaryApp: %v", err)
	}
	for name, list := range map[string]client.ObjectList{"pods": &corev1.PodList{}, "deployments": &appsv1.DeploymentList{}, "secrets": &corev1.SecretList{}} {
		if err := user.List(t.Context(), list, client.InNamespace("default")); !apierrors.IsForbidden(err) {
			t.Errorf("limited user lists %s: %v, want Forbidden", name, err)
		}
	}
	if err := user.Delete(t.Context(), mine); err != nil {
		t.Fatalf("limited user deletes a CanaryApp: %v", err)
	}
}
