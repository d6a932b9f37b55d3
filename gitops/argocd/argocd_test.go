package argocd

import (
	"context"
	"errors"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

func application(ns, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(ApplicationGVK)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

func reader(t *testing.T, objs ...client.Object) client.Reader {
	t.Helper()
	scheme := runtime.NewScheme()
	scheme.AddKnownTypeWithName(ApplicationGVK, &unstructured.Unstructured{})
	scheme.AddKnownTypeWithName(ApplicationGVK.GroupVersion().WithKind("ApplicationList"), &unstructured.UnstructuredList{})
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
}

func canary(annotations, labels map[string]string) *v1.CanaryApp {
	return &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Annotations: annotations, Labels: labels}}
}

func src(repo, rev, path string) map[string]any {
	return map[string]any{"source": map[string]any{"repoURL": repo, "targetRevision": rev, "path": path}}
}

func TestDiscover(t *testing.T) {
	r := reader(t,
		application("argocd", "shop", src("https://github.com/acme/apps.git", "HEAD", "apps/shop/")),
		application("argocd", "labelled", src("https://github.com/acme/apps.git", "refs/heads/release", ".")),
		application("team-a", "scoped", map[string]any{"sources": []any{
			map[string]any{"repoURL": "https://charts.example.com", "chart": "x", "targetRevision": "1.0.0"},
			map[string]any{"repoURL": "git@github.com:acme/team.git", "targetRevision": "prod", "path": "deploy"},
		}}),
	)
	d := New(r, "")
	cases := []struct {
		name string
		app  *v1.CanaryApp
		want Source
	}{
		{"tracking id", canary(map[string]string{TrackingAnnotation: "shop:canary.atze.io/CanaryApp:shop/web"}, nil),
			Source{Application: "argocd/shop", RepoURL: "https://github.com/acme/apps.git", Branch: "main", Path: "apps/shop"}},
		{"instance label", canary(nil, map[string]string{InstanceLabel: "labelled"}),
			Source{Application: "argocd/labelled", RepoURL: "https://github.com/acme/apps.git", Branch: "release", Path: ""}},
		{"app in any namespace, multi-source", canary(map[string]string{TrackingAnnotation: "team-a_scoped:canary.atze.io/CanaryApp:shop/web"}, nil),
			Source{Application: "team-a/scoped", RepoURL: "git@github.com:acme/team.git", Branch: "prod", Path: "deploy"}},
		{"tracking id of another object falls back to the label",
			canary(map[string]string{TrackingAnnotation: "shop:apps/Deployment:shop/web"}, map[string]string{InstanceLabel: "labelled"}),
			Source{Application: "argocd/labelled", RepoURL: "https://github.com/acme/apps.git", Branch: "release", Path: ""}},
	}
	for _, c := range cases {
		got, err := d.Discover(context.Background(), c.app)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Fatalf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestDiscoverErrors(t *testing.T) {
	r := reader(t,
		application("argocd", "pinned", src("https://github.com/acme/apps.git", "0123456789abcdef0123456789abcdef01234567", "apps")),
		application("argocd", "tagged", src("https://github.com/acme/apps.git", "refs/tags/v1", "apps")),
		application("argocd", "chart", map[string]any{"source": map[string]any{"repoURL": "https://charts.example.com", "chart": "web", "targetRevision": "1.2.3"}}),
		application("argocd", "norepo", map[string]any{"source": map[string]any{"path": "apps"}}),
	)
	d := New(r, "argocd")
	ctx := context.Background()
	if _, err := d.Discover(ctx, canary(nil, nil)); !errors.Is(err, ErrNotManaged) {
		t.Fatalf("unmanaged: %v", err)
	}
	if _, err := d.Discover(ctx, canary(map[string]string{TrackingAnnotation: "shop:canary.atze.io/CanaryApp:other/web"}, nil)); !errors.Is(err, ErrNotManaged) {
		t.Fatalf("tracking id of another namespace: %v", err)
	}
	for _, name := range []string{"missing", "pinned", "tagged", "chart", "norepo"} {
		_, err := d.Discover(ctx, canary(nil, map[string]string{InstanceLabel: name}))
		if !errors.Is(err, ErrUnresolvable) {
			t.Fatalf("%s: err = %v, want ErrUnresolvable", name, err)
		}
	}
}
