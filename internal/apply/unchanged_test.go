package apply_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	istionetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/apply"
	"github.com/atzedevries/canaryop/internal/workload"
)

// trimmingClient reads like a manager's client whose cache has
// apply.TrimManagedFields as its transform.
type trimmingClient struct{ client.Client }

func (c trimmingClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := c.Client.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	_, err := apply.TrimManagedFields(obj)
	return err
}

// writeCounter counts the requests that write.
type writeCounter struct {
	client.Client
	writes int
}

func (c *writeCounter) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.writes++
	return c.Client.Create(ctx, obj, opts...)
}

func (c *writeCounter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.writes++
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c *writeCounter) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	c.writes++
	return c.Client.Apply(ctx, obj, opts...)
}

func (c *writeCounter) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.writes++
	return c.Client.Update(ctx, obj, opts...)
}

// applyUnlessUnchanged is what a reconciler does with Unchanged.
func applyUnlessUnchanged(t *testing.T, c client.Client, app *v1.CanaryApp, obj any, opts ...apply.Option) {
	t.Helper()
	if apply.Unchanged(t.Context(), c, app, obj, opts...) {
		return
	}
	if err := apply.Apply(t.Context(), c, app, obj); err != nil {
		t.Fatal(err)
	}
}

func managers(obj client.Object) []string {
	var out []string
	for _, mf := range obj.GetManagedFields() {
		out = append(out, fmt.Sprintf("%s/%s", mf.Manager, mf.Operation))
	}
	return out
}

// TestUnchangedSteadyObjectsCostNoWrites: a create costs two writes and
// leaves the object as an apply would; the same configurations are then
// never written again, judged from a trimmed cache too, until one of them
// changes, which costs one apply.
func TestUnchangedSteadyObjectsCostNoWrites(t *testing.T) {
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	c := &writeCounter{Client: trimmingClient{env.Client}}
	configs := func(image string) []any {
		return []any{workload.PrimaryDeployment(app, image), workload.CanaryDeployment(app, image), workload.Service(app)}
	}

	for _, obj := range configs(app.Spec.Image) {
		applyUnlessUnchanged(t, c, app, obj)
	}
	if c.writes != 6 {
		t.Fatalf("creating three objects took %d writes, want 6 (a create and its applied fields each)", c.writes)
	}
	for _, obj := range []client.Object{getDeployment(t, ns, "shop"), getDeployment(t, ns, "shop-canary")} {
		if diff := cmp.Diff([]string{"canaryop/Apply"}, managers(obj)); diff != "" {
			t.Errorf("%s field managers after the create (-want +got):\n%s", obj.GetName(), diff)
		}
	}
	memo := apply.WithMemo(apply.NewMemo())
	for range 5 {
		for _, obj := range configs(app.Spec.Image) {
			applyUnlessUnchanged(t, c, app, obj, memo)
		}
	}
	if c.writes != 6 {
		t.Fatalf("five rounds with the same configurations wrote %d times, want none", c.writes-6)
	}

	applyUnlessUnchanged(t, c, app, workload.PrimaryDeployment(app, "registry.example.com/shop:v2"), memo)
	if c.writes != 7 {
		t.Errorf("a new image took %d writes, want 1", c.writes-6)
	}
	d := getDeployment(t, ns, "shop")
	if d.Generation != 2 || workload.Image(d) != "registry.example.com/shop:v2" {
		t.Errorf("generation %d, image %q after the new image, want 2 and v2", d.Generation, workload.Image(d))
	}
	if diff := cmp.Diff([]string{"canaryop/Apply"}, managers(d)); diff != "" {
		t.Errorf("field managers (-want +got):\n%s", diff)
	}
	applyUnlessUnchanged(t, c, app, workload.PrimaryDeployment(app, "registry.example.com/shop:v2"), memo)
	if c.writes != 7 {
		t.Errorf("the applied image again wrote %d times, want none", c.writes-7)
	}
}

// TestUnchangedSeesDrift: every edit of an owned field makes Unchanged
// false, and Apply repairs it, whether the object still has its create's
// entry or was applied since.
func TestUnchangedSeesDrift(t *testing.T) {
	ctx := t.Context()
	deploymentKey := func(ns string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: "shop"} }
	update := func(t *testing.T, obj client.Object, edit func()) {
		t.Helper()
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Fatal(err)
		}
		edit()
		if err := env.Client.Update(ctx, obj, client.FieldOwner("kubectl-edit")); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		// config builds what the app wants; drift changes the live object;
		// check says whether it was repaired.
		config func(*v1.CanaryApp) any
		drift  func(t *testing.T, ns string)
		check  func(t *testing.T, ns string)
	}{
		{
			name:   "replicas edited",
			config: func(a *v1.CanaryApp) any { return workload.PrimaryDeployment(a, a.Spec.Image) },
			drift: func(t *testing.T, ns string) {
				d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}}
				update(t, d, func() { d.Spec.Replicas = ptr.To[int32](7) })
			},
			check: func(t *testing.T, ns string) {
				if got := ptr.Deref(getDeployment(t, ns, "shop").Spec.Replicas, 0); got != 2 {
					t.Errorf("replicas %d, want 2", got)
				}
			},
		},
		{
			name:   "scaled through the scale subresource",
			config: func(a *v1.CanaryApp) any { return workload.PrimaryDeployment(a, a.Spec.Image) },
			drift: func(t *testing.T, ns string) {
				d := getDeployment(t, ns, "shop")
				scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 5}}
				if err := env.Client.SubResource("scale").Update(ctx, d, client.WithSubResourceBody(scale), client.FieldOwner("kubectl-scale")); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, ns string) {
				if got := ptr.Deref(getDeployment(t, ns, "shop").Spec.Replicas, 0); got != 2 {
					t.Errorf("replicas %d, want 2", got)
				}
			},
		},
		{
			name:   "image changed by a forced apply of another manager",
			config: func(a *v1.CanaryApp) any { return workload.PrimaryDeployment(a, a.Spec.Image) },
			drift: func(t *testing.T, ns string) {
				other := appsv1ac.Deployment("shop", ns).WithSpec(appsv1ac.DeploymentSpec().
					WithTemplate(corev1ac.PodTemplateSpec().WithSpec(corev1ac.PodSpec().
						WithContainers(corev1ac.Container().WithName(workload.ContainerName).WithImage("evil.example.com/shop:x")))))
				if err := env.Client.Apply(ctx, other, client.FieldOwner("someone"), client.ForceOwnership); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, ns string) {
				if got := workload.Image(getDeployment(t, ns, "shop")); got != "registry.example.com/shop:v1" {
					t.Errorf("image %q, want registry.example.com/shop:v1", got)
				}
			},
		},
		{
			name:   "Service selector edited",
			config: func(a *v1.CanaryApp) any { return workload.Service(a) },
			drift: func(t *testing.T, ns string) {
				s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}}
				update(t, s, func() { s.Spec.Selector = map[string]string{"app": "someone-else"} })
			},
			check: func(t *testing.T, ns string) {
				s := &corev1.Service{}
				if err := env.Client.Get(ctx, deploymentKey(ns), s); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(map[string]string{workload.LabelApp: "shop"}, s.Spec.Selector); diff != "" {
					t.Errorf("selector (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:   "a label removed",
			config: func(a *v1.CanaryApp) any { return workload.Service(a) },
			drift: func(t *testing.T, ns string) {
				s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}}
				update(t, s, func() { delete(s.Labels, workload.LabelManagedBy) })
			},
			check: func(t *testing.T, ns string) {
				s := &corev1.Service{}
				if err := env.Client.Get(ctx, deploymentKey(ns), s); err != nil {
					t.Fatal(err)
				}
				if s.Labels[workload.LabelManagedBy] != workload.ManagedBy {
					t.Errorf("labels %v", s.Labels)
				}
			},
		},
	} {
		for _, applied := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/applied since created %v", tc.name, applied), func(t *testing.T) {
				ns := env.NewNamespace(t)
				app := newApp(t, ns, "shop")
				c := trimmingClient{env.Client}
				memo := apply.WithMemo(apply.NewMemo())
				if err := apply.Apply(ctx, c, app, tc.config(app)); err != nil {
					t.Fatal(err)
				}
				if applied {
					// An apply with another configuration and back: the
					// create's entry is then gone.
					other := app.DeepCopy()
					other.Spec.Replicas = 3
					for _, a := range []*v1.CanaryApp{other, app} {
						if err := apply.Apply(ctx, c, app, tc.config(a)); err != nil {
							t.Fatal(err)
						}
					}
				}
				// Twice, so that the second answer comes from the memo.
				for range 2 {
					if !apply.Unchanged(ctx, c, app, tc.config(app), memo) {
						t.Fatal("Unchanged() = false before the drift")
					}
				}
				tc.drift(t, ns)
				if apply.Unchanged(ctx, c, app, tc.config(app), memo) {
					t.Fatal("Unchanged() = true after the drift")
				}
				if err := apply.Apply(ctx, c, app, tc.config(app)); err != nil {
					t.Fatal(err)
				}
				tc.check(t, ns)
				if !apply.Unchanged(ctx, c, app, tc.config(app), memo) {
					t.Error("Unchanged() = false after the repair")
				}
			})
		}
	}
}

// TestUnchangedSeesAFieldNoLongerSet: a configuration that stops setting a
// field differs, although every field it sets is still there.
func TestUnchangedSeesAFieldNoLongerSet(t *testing.T) {
	ctx := t.Context()
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	strict := workload.PrimaryDeployment(app, app.Spec.Image, workload.RunAsNonRoot())
	if err := apply.Apply(ctx, env.Client, app, strict); err != nil {
		t.Fatal(err)
	}
	loose := workload.PrimaryDeployment(app, app.Spec.Image)
	if apply.Unchanged(ctx, env.Client, app, loose) {
		t.Fatal("Unchanged() = true for a configuration without runAsNonRoot")
	}
	if err := apply.Apply(ctx, env.Client, app, loose); err != nil {
		t.Fatal(err)
	}
	if sc := getDeployment(t, ns, "shop").Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot != nil {
		t.Errorf("pod securityContext %+v: runAsNonRoot stayed", sc)
	}
	if !apply.Unchanged(ctx, env.Client, app, loose) {
		t.Error("Unchanged() = false after the apply")
	}
}

// TestUnchangedOnlyForOwnObjects: Unchanged says "apply" for everything
// Apply must look at itself.
func TestUnchangedOnlyForOwnObjects(t *testing.T) {
	ctx := t.Context()
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	other := newApp(t, ns, "other")

	if apply.Unchanged(ctx, env.Client, app, workload.Service(app)) {
		t.Error("Unchanged() = true for a missing object")
	}
	before := foreignService(t, ns)
	if apply.Unchanged(ctx, env.Client, app, workload.Service(app)) {
		t.Error("Unchanged() = true for a Service created by hand")
	}
	assertUntouched(t, before)

	if err := apply.Apply(ctx, env.Client, other, workload.PrimaryDeployment(app, app.Spec.Image)); err != nil {
		t.Fatal(err)
	}
	if apply.Unchanged(ctx, env.Client, app, workload.PrimaryDeployment(app, app.Spec.Image)) {
		t.Error("Unchanged() = true for a Deployment another app controls")
	}

	// Kinds it does not compare are always applied.
	dr := &istionetworkingv1.DestinationRule{}
	dr.SetGroupVersionKind(istionetworkingv1.SchemeGroupVersion.WithKind("DestinationRule"))
	dr.Name, dr.Namespace = "shop", ns
	dr.Spec.Host = "shop"
	if err := apply.Apply(ctx, env.Client, app, dr); err != nil {
		t.Fatal(err)
	}
	if apply.Unchanged(ctx, env.Client, app, dr) {
		t.Error("Unchanged() = true for a DestinationRule")
	}
}

func TestTrimManagedFields(t *testing.T) {
	entry := func(manager string, op metav1.ManagedFieldsOperationType, sub string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: sub, FieldsV1: &metav1.FieldsV1{Raw: []byte(`{}`)}}
	}
	apply_, update := metav1.ManagedFieldsOperationApply, metav1.ManagedFieldsOperationUpdate
	for _, tc := range []struct {
		name     string
		in, want []metav1.ManagedFieldsEntry
	}{
		{
			name: "only canaryop's entries stay",
			in:   []metav1.ManagedFieldsEntry{entry("canaryop", apply_, ""), entry("kube-controller-manager", update, "status"), entry("kubectl", update, "")},
			want: []metav1.ManagedFieldsEntry{entry("canaryop", apply_, "")},
		},
		{
			name: "nothing of canaryop's",
			in:   []metav1.ManagedFieldsEntry{entry("kubectl", update, "")},
		},
		{
			name: "a create's entry keeps everything",
			in:   []metav1.ManagedFieldsEntry{entry("canaryop", update, ""), entry("kube-controller-manager", update, "status")},
			want: []metav1.ManagedFieldsEntry{entry("canaryop", update, ""), entry("kube-controller-manager", update, "status")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{ManagedFields: tc.in}}
			out, err := apply.TrimManagedFields(d)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, out.(*appsv1.Deployment).ManagedFields); diff != "" {
				t.Errorf("managed fields (-want +got):\n%s", diff)
			}
		})
	}
	if out, err := apply.TrimManagedFields("not an object"); err != nil || out != "not an object" {
		t.Errorf("TrimManagedFields(a string) = %v, %v", out, err)
	}
}

// fixedClient answers every Get with obj, as a cache would, without a
// request.
type fixedClient struct {
	client.Client
	obj client.Object
}

func (c fixedClient) Get(_ context.Context, _ client.ObjectKey, out client.Object, _ ...client.GetOption) error {
	reflect.ValueOf(out).Elem().Set(reflect.ValueOf(c.obj.DeepCopyObject()).Elem())
	return nil
}

// BenchmarkUnchanged is the CPU a reconcile spends to learn that the
// primary Deployment needs no write (a copy out of the cache included), by
// comparing and when a Memo remembers the last comparison.
//
//	go test ./internal/apply -run '^$' -bench Unchanged
func BenchmarkUnchanged(b *testing.B) {
	ns := env.NewNamespace(b)
	app := env.NewApp(b, ns, "shop")
	ctx := context.Background()
	if err := apply.Apply(ctx, env.Client, app, workload.PrimaryDeployment(app, app.Spec.Image)); err != nil {
		b.Fatal(err)
	}
	d := &appsv1.Deployment{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, d); err != nil {
		b.Fatal(err)
	}
	c := fixedClient{Client: env.Client, obj: d}
	for _, bc := range []struct {
		name string
		opts []apply.Option
	}{
		{"compared", nil},
		{"remembered", []apply.Option{apply.WithMemo(apply.NewMemo())}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !apply.Unchanged(ctx, c, app, workload.PrimaryDeployment(app, app.Spec.Image), bc.opts...) {
					b.Fatal("Unchanged() = false")
				}
			}
		})
	}
}

// TestMemoForget: a forgotten object is compared again, and an object
// Unchanged finds missing is forgotten.
func TestMemoForget(t *testing.T) {
	ctx := t.Context()
	ns := env.NewNamespace(t)
	app := newApp(t, ns, "shop")
	memo := apply.NewMemo()
	if err := apply.Apply(ctx, env.Client, app, workload.Service(app)); err != nil {
		t.Fatal(err)
	}
	s := &corev1.Service{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, s); err != nil {
		t.Fatal(err)
	}
	// A reader that serves the Service with managedFields nobody could
	// have: only a remembered answer can say "unchanged".
	emptied := s.DeepCopy()
	emptied.ManagedFields = nil
	c := fixedClient{Client: env.Client, obj: s}
	if !apply.Unchanged(ctx, c, app, workload.Service(app), apply.WithMemo(memo)) {
		t.Fatal("Unchanged() = false")
	}
	if !apply.Unchanged(ctx, fixedClient{Client: env.Client, obj: emptied}, app, workload.Service(app), apply.WithMemo(memo)) {
		t.Fatal("the second Unchanged() did not use the memo")
	}
	memo.Forget(ns, "shop")
	if apply.Unchanged(ctx, fixedClient{Client: env.Client, obj: emptied}, app, workload.Service(app), apply.WithMemo(memo)) {
		t.Error("Unchanged() = true after Forget")
	}

	if !apply.Unchanged(ctx, c, app, workload.Service(app), apply.WithMemo(memo)) {
		t.Fatal("Unchanged() = false")
	}
	if err := env.Client.Delete(ctx, s); err != nil {
		t.Fatal(err)
	}
	if apply.Unchanged(ctx, env.Client, app, workload.Service(app), apply.WithMemo(memo)) {
		t.Fatal("Unchanged() = true for a deleted Service")
	}
	if apply.Unchanged(ctx, fixedClient{Client: env.Client, obj: emptied}, app, workload.Service(app), apply.WithMemo(memo)) {
		t.Error("the deleted Service is still remembered")
	}
}
