package argocd

import (
	"context"
	"errors"
	"reflect"
	"slices"
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

// managing makes u an Application that Argo CD reports as syncing the
// CanaryApp ns/name into ns.
func managing(u *unstructured.Unstructured, ns, name string) *unstructured.Unstructured {
	_ = unstructured.SetNestedField(u.Object, ns, "spec", "destination", "namespace")
	_ = unstructured.SetNestedSlice(u.Object, []any{
		map[string]any{"group": "apps", "kind": "Deployment", "namespace": ns, "name": name},
		map[string]any{"group": "canary.atze.io", "kind": "CanaryApp", "namespace": ns, "name": name, "version": "v1"},
	}, "status", "resources")
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
		managing(application("argocd", "shop", src("https://github.com/acme/apps.git", "HEAD", "apps/shop/")), "shop", "web"),
		managing(application("argocd", "labelled", src("https://github.com/acme/apps.git", "refs/heads/release", ".")), "shop", "web"),
		managing(application("team-a", "scoped", map[string]any{"sources": []any{
			map[string]any{"repoURL": "https://charts.example.com", "chart": "x", "targetRevision": "1.0.0"},
			map[string]any{"repoURL": "git@github.com:acme/team.git", "targetRevision": "prod", "path": "deploy"},
		}}), "shop", "web"),
	)
	d := New(r, "", "team-a")
	cases := []struct {
		name string
		app  *v1.CanaryApp
		want Source
	}{
		{"tracking id", canary(map[string]string{TrackingAnnotation: "shop:canary.atze.io/CanaryApp:shop/web"}, nil),
			Source{Application: "argocd/shop", RepoURL: "https://github.com/acme/apps.git", Branch: "main", Path: "apps/shop", DestinationNamespace: "shop"}},
		{"instance label", canary(nil, map[string]string{InstanceLabel: "labelled"}),
			Source{Application: "argocd/labelled", RepoURL: "https://github.com/acme/apps.git", Branch: "release", Path: "", DestinationNamespace: "shop"}},
		{"app in any namespace, multi-source", canary(map[string]string{TrackingAnnotation: "team-a_scoped:canary.atze.io/CanaryApp:shop/web"}, nil),
			Source{Application: "team-a/scoped", RepoURL: "git@github.com:acme/team.git", Branch: "prod", Path: "deploy", DestinationNamespace: "shop"}},
		{"tracking id of another object falls back to the label",
			canary(map[string]string{TrackingAnnotation: "shop:apps/Deployment:shop/web"}, map[string]string{InstanceLabel: "labelled"}),
			Source{Application: "argocd/labelled", RepoURL: "https://github.com/acme/apps.git", Branch: "release", Path: "", DestinationNamespace: "shop"}},
	}
	for _, c := range cases {
		got, err := d.Discover(context.Background(), c.app)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Fatalf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestDiscoverErrors(t *testing.T) {
	r := reader(t,
		managing(application("argocd", "pinned", src("https://github.com/acme/apps.git", "0123456789abcdef0123456789abcdef01234567", "apps")), "shop", "web"),
		managing(application("argocd", "tagged", src("https://github.com/acme/apps.git", "refs/tags/v1", "apps")), "shop", "web"),
		managing(application("argocd", "chart", map[string]any{"source": map[string]any{"repoURL": "https://charts.example.com", "chart": "web", "targetRevision": "1.2.3"}}), "shop", "web"),
		managing(application("argocd", "norepo", map[string]any{"source": map[string]any{"path": "apps"}}), "shop", "web"),
	)
	d := New(r, "argocd")
	ctx := context.Background()
	if _, err := d.Discover(ctx, canary(nil, nil)); !errors.Is(err, ErrNotManaged) {
		t.Fatalf("unmanaged: %v", err)
	}
	if _, err := d.Discover(ctx, canary(map[string]string{TrackingAnnotation: "shop:canary.atze.io/CanaryApp:other/web"}, nil)); !errors.Is(err, ErrNotManaged) {
		t.Fatalf("tracking id of another namespace: %v", err)
	}
	if _, err := d.Discover(ctx, canary(nil, map[string]string{InstanceLabel: "missing"})); !errors.Is(err, ErrNotProven) {
		t.Fatalf("missing Application: %v", err)
	}
	for _, name := range []string{"pinned", "tagged", "chart", "norepo"} {
		_, err := d.Discover(ctx, canary(nil, map[string]string{InstanceLabel: name}))
		if !errors.Is(err, ErrUnresolvable) {
			t.Fatalf("%s: err = %v, want ErrUnresolvable", name, err)
		}
	}
}

// The forged-tracking attack of review finding C1: an author in namespace
// evil names team B's Application in its label or tracking id. Whatever the
// hint, the Application must prove that it manages evil's object.
func TestDiscoverRefusesUnprovenApplications(t *testing.T) {
	teamB := func() map[string]any { return src("https://github.com/acme/team-b.git", "main", "apps/payments") }
	pruned := managing(application("argocd", "pruned", teamB()), "evil", "payments")
	res, _, _ := unstructured.NestedSlice(pruned.Object, "status", "resources")
	res[1].(map[string]any)["requiresPruning"] = true
	_ = unstructured.SetNestedSlice(pruned.Object, res, "status", "resources")
	otherDest := managing(application("argocd", "other-dest", teamB()), "evil", "payments")
	_ = unstructured.SetNestedField(otherDest.Object, "team-b", "spec", "destination", "namespace")
	r := reader(t,
		managing(application("argocd", "team-b-payments", teamB()), "team-b", "payments"),
		managing(application("team-b", "payments", teamB()), "evil", "payments"),
		pruned, otherDest,
	)
	d := New(r, "argocd")
	evil := func(ann, lab string) *v1.CanaryApp {
		a := &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: "evil", Name: "payments"}}
		if ann != "" {
			a.Annotations = map[string]string{TrackingAnnotation: ann}
		}
		if lab != "" {
			a.Labels = map[string]string{InstanceLabel: lab}
		}
		return a
	}
	for name, app := range map[string]*v1.CanaryApp{
		"label naming team B's Application":              evil("", "team-b-payments"),
		"tracking id naming team B's Application":        evil("team-b-payments:canary.atze.io/CanaryApp:evil/payments", ""),
		"Application in a namespace the admin disallows": evil("team-b_payments:canary.atze.io/CanaryApp:evil/payments", ""),
		"resource entry that requires pruning":           evil("", "pruned"),
		"destination in another namespace":               evil("", "other-dest"),
	} {
		_, err := d.Discover(context.Background(), app)
		if !errors.Is(err, ErrNotProven) {
			t.Errorf("%s: err = %v, want ErrNotProven", name, err)
		}
	}
	// Only an Application deploying into the object's own namespace is
	// worth asking again; one deploying elsewhere never proves it.
	for name, app := range map[string]*v1.CanaryApp{
		"resource entry that requires pruning": evil("", "pruned"),
		"label naming team B's Application":    evil("", "team-b-payments"),
		"destination in another namespace":     evil("", "other-dest"),
	} {
		_, err := d.Discover(context.Background(), app)
		if want := name == "resource entry that requires pruning"; errors.Is(err, ErrNotYetProven) != want {
			t.Errorf("%s: err = %v, retried = %v, want %v", name, err, !want, want)
		}
	}
	// Team B's own object is proven by its Application.
	own := &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "payments", Labels: map[string]string{InstanceLabel: "team-b-payments"}}}
	got, err := d.Discover(context.Background(), own)
	if err != nil || got.RepoURL != "https://github.com/acme/team-b.git" || got.DestinationNamespace != "team-b" {
		t.Fatalf("team B's own app: %+v, %v", got, err)
	}
}

// The revisions come from the Application's status, which only Argo CD
// writes: the synced one, the running operation's and the history's.
func TestDiscoverReadsTheSyncedRevisions(t *testing.T) {
	const a, b, c = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "cccccccccccccccccccccccccccccccccccccccc"
	u := managing(application("argocd", "shop", src("https://github.com/acme/apps.git", "main", "apps/shop")), "shop", "web")
	_ = unstructured.SetNestedField(u.Object, a, "status", "sync", "revision")
	_ = unstructured.SetNestedField(u.Object, b, "status", "operationState", "syncResult", "revision")
	_ = unstructured.SetNestedSlice(u.Object, []any{
		map[string]any{"id": int64(1), "revision": c}, map[string]any{"id": int64(2), "revision": "v1.2.3"}, map[string]any{"id": int64(3), "revision": b},
	}, "status", "history")
	got, err := New(reader(t, u), "").Discover(context.Background(), canary(nil, map[string]string{InstanceLabel: "shop"}))
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != a {
		t.Errorf("Revision = %q, want %q", got.Revision, a)
	}
	if want := []string{a, b, c}; !slices.Equal(got.SyncedRevisions, want) {
		t.Errorf("SyncedRevisions = %v, want %v", got.SyncedRevisions, want)
	}

	_ = unstructured.SetNestedField(u.Object, "main", "status", "sync", "revision")
	got, err = New(reader(t, u), "").Discover(context.Background(), canary(nil, map[string]string{InstanceLabel: "shop"}))
	if err != nil || got.Revision != "" {
		t.Errorf("a revision that is no commit SHA: Revision %q, err %v; want none", got.Revision, err)
	}
}
