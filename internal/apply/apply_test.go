package apply_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/apply"
	"github.com/atzedevries/canaryop/internal/testenv"
	"github.com/atzedevries/canaryop/internal/workload"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

func newApp(t *testing.T, ns, name string) *v1.CanaryApp { return env.NewApp(t, ns, name) }

func getDeployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, d); err != nil {
		t.Fatalf("reading Deployment %s/%s: %v", ns, name, err)
	}
	return d
}

func TestApplyCreatesOwnedObjects(t *testing.T) {
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	ctx := t.Context()

	for _, obj := range []any{
		workload.PrimaryDeployment(app, app.Spec.Image),
		workload.CanaryDeployment(app, "registry.example.com/shop:v2"),
		workload.Service(app),
	} {
		if err := apply.Apply(ctx, env.Client, app, obj); err != nil {
			t.Fatal(err)
		}
	}

	wantRef := metav1.OwnerReference{
		APIVersion: "canary.atze.io/v1", Kind: "CanaryApp", Name: "shop", UID: app.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}
	for _, obj := range []client.Object{
		getDeployment(t, ns, "shop"),
		getDeployment(t, ns, "shop-canary"),
		func() client.Object {
			s := &corev1.Service{}
			if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, s); err != nil {
				t.Fatal(err)
			}
			return s
		}(),
	} {
		if diff := cmp.Diff([]metav1.OwnerReference{wantRef}, obj.GetOwnerReferences()); diff != "" {
			t.Errorf("%T %s owner references (-want +got):\n%s", obj, obj.GetName(), diff)
		}
		var managers []string
		for _, mf := range obj.GetManagedFields() {
			if mf.Operation != metav1.ManagedFieldsOperationUpdate || mf.Subresource == "" {
				managers = append(managers, fmt.Sprintf("%s/%s", mf.Manager, mf.Operation))
			}
		}
		if len(managers) != 1 || managers[0] != "canaryop/Apply" {
			t.Errorf("%T %s field managers = %v, want [canaryop/Apply]", obj, obj.GetName(), managers)
		}
	}

	canary := getDeployment(t, ns, "shop-canary")
	// Creating and then handing the created fields to the Apply entry must
	// not look like a spec change to the Deployment controller.
	if canary.Generation != 1 {
		t.Errorf("canary generation %d after one Apply, want 1", canary.Generation)
	}
	if got := workload.Image(canary); got != "registry.example.com/shop:v2" {
		t.Errorf("canary image %q", got)
	}
	if got := ptr.Deref(canary.Spec.Replicas, 0); got != 1 {
		t.Errorf("canary replicas %d, want 1", got)
	}
}

func TestApplyTwiceChangesNothing(t *testing.T) {
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	ctx := t.Context()

	if err := apply.Apply(ctx, env.Client, app, workload.PrimaryDeployment(app, app.Spec.Image)); err != nil {
		t.Fatal(err)
	}
	before := getDeployment(t, ns, "shop")
	if err := apply.Apply(ctx, env.Client, app, workload.PrimaryDeployment(app, app.Spec.Image)); err != nil {
		t.Fatal(err)
	}
	after := getDeployment(t, ns, "shop")
	if after.ResourceVersion != before.ResourceVersion || after.Generation != before.Generation {
		t.Errorf("second apply changed the Deployment: resourceVersion %s -> %s, generation %d -> %d",
			before.ResourceVersion, after.ResourceVersion, before.Generation, after.Generation)
	}

	if err := apply.Apply(ctx, env.Client, app, workload.PrimaryDeployment(app, "registry.example.com/shop:v2")); err != nil {
		t.Fatal(err)
	}
	changed := getDeployment(t, ns, "shop")
	if changed.Generation != before.Generation+1 || workload.Image(changed) != "registry.example.com/shop:v2" {
		t.Errorf("new image: generation %d -> %d, image %q", before.Generation, changed.Generation, workload.Image(changed))
	}
}

func TestApplyWinsOverHandEdits(t *testing.T) {
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	ctx := t.Context()

	if err := apply.Apply(ctx, env.Client, app, workload.PrimaryDeployment(app, app.Spec.Image)); err != nil {
		t.Fatal(err)
	}
	d := getDeployment(t, ns, "shop")
	d.Spec.Replicas = ptr.To[int32](7)
	if err := env.Client.Update(ctx, d, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	if err := apply.Apply(ctx, env.Client, app, workload.PrimaryDeployment(app, app.Spec.Image)); err != nil {
		t.Fatalf("apply after a hand edit: %v", err)
	}
	if got := ptr.Deref(getDeployment(t, ns, "shop").Spec.Replicas, 0); got != 2 {
		t.Errorf("replicas = %d after re-apply, want spec.replicas 2", got)
	}
}

func TestApplyNeverAdopts(t *testing.T) {
	ctx := t.Context()
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	other := newApp(t, ns, "other")

	unowned := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns, Labels: map[string]string{"made-by": "hand"}},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "shop"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "shop"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1"}}},
			},
		},
	}
	if err := env.Client.Create(ctx, unowned); err != nil {
		t.Fatal(err)
	}
	// Owned, but by another CanaryApp: not adoptable either. A plain
	// (non-controller) owner reference to the right app does not count.
	ownedByOther := workload.Service(app)
	if err := apply.Apply(ctx, env.Client, other, ownedByOther); err != nil {
		t.Fatal(err)
	}
	plainRef := workload.CanaryDeployment(app, "registry.example.com/shop:v2")
	plain := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: "shop-canary", Namespace: ns,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "canary.atze.io/v1", Kind: "CanaryApp", Name: "shop", UID: app.UID}},
		},
		Spec: *toDeploymentSpec(t, plainRef),
	}
	if err := env.Client.Create(ctx, plain); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		obj      any
		get      client.Object
		wantKind string
		wantErr  string
	}{
		{
			name:     "created by hand",
			obj:      workload.PrimaryDeployment(app, app.Spec.Image),
			get:      &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns}},
			wantKind: "Deployment",
			wantErr:  fmt.Sprintf("Deployment %s/shop exists and is not owned by CanaryApp %s/shop; canaryop never adopts objects it did not create", ns, ns),
		},
		{
			name:     "controlled by another CanaryApp",
			obj:      workload.Service(app),
			get:      &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns}},
			wantKind: "Service",
			wantErr:  fmt.Sprintf("Service %s/shop exists and is not owned by CanaryApp %s/shop; canaryop never adopts objects it did not create", ns, ns),
		},
		{
			name:     "owner reference without controller",
			obj:      workload.CanaryDeployment(app, "registry.example.com/shop:v3"),
			get:      &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "shop-canary", Namespace: ns}},
			wantKind: "Deployment",
			wantErr:  fmt.Sprintf("Deployment %s/shop-canary exists and is not owned by CanaryApp %s/shop; canaryop never adopts objects it did not create", ns, ns),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := client.ObjectKeyFromObject(tc.get)
			if err := env.Client.Get(ctx, key, tc.get); err != nil {
				t.Fatal(err)
			}
			before := tc.get.GetResourceVersion()

			err := apply.Apply(ctx, env.Client, app, tc.obj)
			var foreign *apply.ForeignObjectError
			if !errors.As(err, &foreign) || !apply.IsForeignObject(err) {
				t.Fatalf("Apply() error = %v, want a *ForeignObjectError", err)
			}
			if err.Error() != tc.wantErr {
				t.Errorf("message:\n got %s\nwant %s", err, tc.wantErr)
			}
			if foreign.Namespace != ns || foreign.Name != key.Name || foreign.GVK.Kind != tc.wantKind ||
				foreign.OwnerKind != "CanaryApp" || foreign.OwnerNamespace != ns || foreign.OwnerName != "shop" {
				t.Errorf("error fields %+v", foreign)
			}

			if err := env.Client.Get(ctx, key, tc.get); err != nil {
				t.Fatal(err)
			}
			if got := tc.get.GetResourceVersion(); got != before {
				t.Errorf("object changed: resourceVersion %s -> %s", before, got)
			}
			for _, ref := range tc.get.GetOwnerReferences() {
				if ref.UID == app.UID && ptr.Deref(ref.Controller, false) {
					t.Errorf("object was adopted: %+v", ref)
				}
			}
		})
	}
	if d := getDeployment(t, ns, "shop"); workload.Image(d) != "" || d.Labels["made-by"] != "hand" {
		t.Errorf("hand-made Deployment was changed: labels %v", d.Labels)
	}
}

func toDeploymentSpec(t *testing.T, ac any) *appsv1.DeploymentSpec {
	t.Helper()
	data, err := json.Marshal(ac)
	if err != nil {
		t.Fatal(err)
	}
	d := &appsv1.Deployment{}
	if err := json.Unmarshal(data, d); err != nil {
		t.Fatal(err)
	}
	return &d.Spec
}

func TestApplyRejectsBadOwners(t *testing.T) {
	ctx := t.Context()
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")

	elsewhere := workload.Service(app).WithNamespace("default")
	if err := apply.Apply(ctx, env.Client, app, elsewhere); err == nil || apply.IsForeignObject(err) {
		t.Errorf("Apply() into another namespace: error = %v, want a namespace error", err)
	}
	unsaved := app.DeepCopy()
	unsaved.UID = ""
	if err := apply.Apply(ctx, env.Client, unsaved, workload.Service(app)); err == nil {
		t.Error("Apply() with an owner without UID: want an error")
	}
	if err := apply.Apply(ctx, env.Client, app, struct{ Name string }{"x"}); err == nil {
		t.Error("Apply() of something that is not an object: want an error")
	}
	s := &corev1.Service{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, s); !apierrors.IsNotFound(err) {
		t.Errorf("a rejected apply wrote the Service: get error = %v", err)
	}
}

func TestDelete(t *testing.T) {
	ctx := t.Context()
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	other := newApp(t, ns, "other")

	if err := apply.Apply(ctx, env.Client, app, workload.CanaryDeployment(app, "registry.example.com/shop:v2")); err != nil {
		t.Fatal(err)
	}
	if err := apply.Apply(ctx, env.Client, other, workload.CanaryDeployment(other, "registry.example.com/other:v2")); err != nil {
		t.Fatal(err)
	}

	canary := func(name string) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	}
	err := apply.Delete(ctx, env.Client, app, canary("other-canary"))
	if !apply.IsForeignObject(err) {
		t.Errorf("Delete() of another app's Deployment: error = %v, want a *ForeignObjectError", err)
	}
	getDeployment(t, ns, "other-canary") // still there

	if err := apply.Delete(ctx, env.Client, app, canary("shop-canary")); err != nil {
		t.Fatal(err)
	}
	// envtest runs no garbage collector, but a Deployment without
	// finalizers is gone as soon as the delete returns.
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(canary("shop-canary")), &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("after Delete(): get error = %v, want NotFound", err)
	}
	if err := apply.Delete(ctx, env.Client, app, canary("shop-canary")); err != nil {
		t.Errorf("Delete() of a missing object: %v", err)
	}
}

// staleClient answers Get like a manager's client whose informer cache lags
// the API server: for the keys in stale it returns the object given there,
// or NotFound for nil, whatever the API server holds. Like a manager's
// client by default it reads unstructured objects from the API server,
// unless cachesUnstructured is set.
type staleClient struct {
	client.Client
	stale              map[client.ObjectKey]client.Object
	cachesUnstructured bool
}

func (c *staleClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	old, ok := c.stale[key]
	if _, isU := obj.(*unstructured.Unstructured); !ok || (isU && !c.cachesUnstructured) {
		return c.Client.Get(ctx, key, obj, opts...)
	}
	if old == nil {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "services"}, key.Name)
	}
	data, err := json.Marshal(old)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, obj)
}

func foreignService(t *testing.T, ns string) *corev1.Service {
	t.Helper()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns, Labels: map[string]string{"made-by": "hand"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "someone-else"},
			Ports:    []corev1.ServicePort{{Name: "web", Port: 80}},
		},
	}
	if err := env.Client.Create(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	return s
}

func assertUntouched(t *testing.T, before *corev1.Service) {
	t.Helper()
	s := &corev1.Service{}
	if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(before), s); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"app": "someone-else"}, s.Spec.Selector); diff != "" {
		t.Errorf("selector changed (-want +got):\n%s", diff)
	}
	if len(s.OwnerReferences) != 0 {
		t.Errorf("owner references %+v, want none", s.OwnerReferences)
	}
	if s.ResourceVersion != before.ResourceVersion {
		t.Errorf("Service written: resourceVersion %s -> %s", before.ResourceVersion, s.ResourceVersion)
	}
}

// TestApplyNeverAdoptsWhatTheCacheMissed is the informer-cache race: a
// Service someone created a moment ago is not in the cache yet, so the read
// says NotFound. Apply must still not take it over.
func TestApplyNeverAdoptsWhatTheCacheMissed(t *testing.T) {
	for _, tc := range []struct {
		name               string
		apiReader          bool
		cachesUnstructured bool
		// wantForeign: Apply can read the object's owner and says so;
		// otherwise it fails to be retried. Either way it writes nothing.
		wantForeign bool
	}{
		{name: "with an API reader", apiReader: true, cachesUnstructured: true, wantForeign: true},
		{name: "without, unstructured uncached", wantForeign: true},
		{name: "without, everything cached", cachesUnstructured: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.NewNamespace(t)
			app := newApp(t, ns, "shop")
			before := foreignService(t, ns)
			cache := &staleClient{
				Client:             env.Client,
				stale:              map[client.ObjectKey]client.Object{client.ObjectKeyFromObject(before): nil},
				cachesUnstructured: tc.cachesUnstructured,
			}
			var opts []apply.Option
			if tc.apiReader {
				opts = append(opts, apply.WithAPIReader(env.Client))
			}

			err := apply.Apply(t.Context(), cache, app, workload.Service(app), opts...)
			if got := apply.IsForeignObject(err); err == nil || got != tc.wantForeign {
				t.Errorf("Apply() error = %v, want an error that is a *ForeignObjectError: %v", err, tc.wantForeign)
			}
			assertUntouched(t, before)
		})
	}
}

// TestApplyOwnObjectTheCacheMissed: the app's own Service, created by an
// earlier Apply, is not in the cache yet. Apply goes on with it.
func TestApplyOwnObjectTheCacheMissed(t *testing.T) {
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	ctx := t.Context()
	if err := apply.Apply(ctx, env.Client, app, workload.Service(app)); err != nil {
		t.Fatal(err)
	}
	key := types.NamespacedName{Namespace: ns, Name: "shop"}
	cache := &staleClient{Client: env.Client, stale: map[client.ObjectKey]client.Object{key: nil}}
	if err := apply.Apply(ctx, cache, app, workload.Service(app).WithLabels(map[string]string{"extra": "x"}), apply.WithAPIReader(env.Client)); err != nil {
		t.Fatalf("Apply() of the app's own Service the cache missed: %v", err)
	}
	s := &corev1.Service{}
	if err := env.Client.Get(ctx, key, s); err != nil {
		t.Fatal(err)
	}
	if s.Labels["extra"] != "x" {
		t.Errorf("labels %v: the apply did not happen", s.Labels)
	}
}

// TestApplyNeverAdoptsAReplacement: the cache still shows the app's own
// Service, but it was deleted and someone else created one of that name.
func TestApplyNeverAdoptsAReplacement(t *testing.T) {
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	ctx := t.Context()
	if err := apply.Apply(ctx, env.Client, app, workload.Service(app)); err != nil {
		t.Fatal(err)
	}
	key := types.NamespacedName{Namespace: ns, Name: "shop"}
	old := &corev1.Service{}
	if err := env.Client.Get(ctx, key, old); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(ctx, old); err != nil {
		t.Fatal(err)
	}
	before := foreignService(t, ns)
	cache := &staleClient{Client: env.Client, stale: map[client.ObjectKey]client.Object{key: old}}

	err := apply.Apply(ctx, cache, app, workload.Service(app), apply.WithAPIReader(env.Client))
	if !apply.IsForeignObject(err) {
		t.Errorf("Apply() error = %v, want a *ForeignObjectError", err)
	}
	assertUntouched(t, before)

	// Without an API reader the re-read sees the stale copy too: Apply
	// cannot tell whose the new object is, so it fails and writes nothing.
	cache.cachesUnstructured = true
	if err := apply.Apply(ctx, cache, app, workload.Service(app)); err == nil {
		t.Error("Apply() without an API reader: want an error")
	}
	assertUntouched(t, before)
}

// TestApplyDropsFieldsAfterCreate: the fields of a created object belong to
// the Apply entry, so a later apply that no longer sets one removes it.
func TestApplyDropsFieldsAfterCreate(t *testing.T) {
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	ctx := t.Context()
	if err := apply.Apply(ctx, env.Client, app, workload.Service(app).WithLabels(map[string]string{"dropped-later": "x"})); err != nil {
		t.Fatal(err)
	}
	if err := apply.Apply(ctx, env.Client, app, workload.Service(app)); err != nil {
		t.Fatal(err)
	}
	s := &corev1.Service{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, s); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Labels["dropped-later"]; ok {
		t.Errorf("labels %v: a label the configuration no longer sets stayed", s.Labels)
	}
}

// TestApplyTakesOverCreatedFieldsLater: when the created fields could not
// be handed to the Apply entry at once (the read was stale), Apply does not
// fail, and a later Apply with a fresh read finishes the job.
func TestApplyTakesOverCreatedFieldsLater(t *testing.T) {
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	ctx := t.Context()

	created := toService(t, workload.Service(app).WithLabels(map[string]string{"dropped-later": "x"}))
	created.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: "canary.atze.io/v1", Kind: "CanaryApp", Name: "shop", UID: app.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}}
	if err := env.Client.Create(ctx, created, client.FieldOwner(apply.FieldManager)); err != nil {
		t.Fatal(err)
	}
	stale := created.DeepCopy()
	created.Annotations = map[string]string{"touched": "by someone"}
	if err := env.Client.Update(ctx, created, client.FieldOwner("someone")); err != nil {
		t.Fatal(err)
	}

	cache := &staleClient{Client: env.Client, stale: map[client.ObjectKey]client.Object{client.ObjectKeyFromObject(created): stale}}
	if err := apply.Apply(ctx, cache, app, workload.Service(app)); err != nil {
		t.Fatalf("Apply() with a stale read: %v", err)
	}
	if err := apply.Apply(ctx, env.Client, app, workload.Service(app)); err != nil {
		t.Fatal(err)
	}
	s := &corev1.Service{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(created), s); err != nil {
		t.Fatal(err)
	}
	var managers []string
	for _, mf := range s.ManagedFields {
		managers = append(managers, fmt.Sprintf("%s/%s", mf.Manager, mf.Operation))
	}
	if diff := cmp.Diff([]string{"canaryop/Apply", "someone/Update"}, managers); diff != "" {
		t.Errorf("field managers (-want +got):\n%s", diff)
	}
	if _, ok := s.Labels["dropped-later"]; ok {
		t.Errorf("labels %v: a label the configuration no longer sets stayed", s.Labels)
	}
}

func toService(t *testing.T, ac any) *corev1.Service {
	t.Helper()
	data, err := json.Marshal(ac)
	if err != nil {
		t.Fatal(err)
	}
	s := &corev1.Service{}
	if err := json.Unmarshal(data, s); err != nil {
		t.Fatal(err)
	}
	return s
}
