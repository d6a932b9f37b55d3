package workload

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/atzedevries/canaryop/internal/testenv"
)

// TestPodsAdmittedUnderRestrictedPSA creates, as a dry run, a pod from each
// track's pod template in a namespace that enforces the "restricted" Pod
// Security Standard. kube-apiserver's own PodSecurity admission plugin
// decides, so this is the check a real cluster makes.
func TestPodsAdmittedUnderRestrictedPSA(t *testing.T) {
	env := testenv.StartT(t)
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "restricted-",
		Labels: map[string]string{
			"pod-security.kubernetes.io/enforce":         "restricted",
			"pod-security.kubernetes.io/enforce-version": "latest",
		},
	}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	app := testApp()
	app.Namespace = ns.Name

	podFrom := func(d *appsv1.Deployment) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-pod", Namespace: ns.Name, Labels: d.Spec.Template.Labels},
			Spec:       d.Spec.Template.Spec,
		}
	}

	// The admission plugin is on: the same pod without the security
	// settings is refused, so the admissions below mean something.
	bare := podFrom(decode[appsv1.Deployment](t, PrimaryDeployment(app, "registry.example.com/shop:v1", RunAsNonRoot())))
	bare.Spec.SecurityContext = nil
	bare.Spec.Containers[0].SecurityContext = nil
	err := env.Client.Create(ctx, bare, client.DryRunAll)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "restricted") {
		t.Fatalf("pod without security settings: error = %v, want Forbidden by PodSecurity \"restricted\"", err)
	}

	for _, d := range []*appsv1.Deployment{
		decode[appsv1.Deployment](t, PrimaryDeployment(app, "registry.example.com/shop:v1", RunAsNonRoot())),
		decode[appsv1.Deployment](t, CanaryDeployment(app, "registry.example.com/shop:v2", RunAsNonRoot())),
	} {
		if err := env.Client.Create(ctx, podFrom(d), client.DryRunAll); err != nil {
			t.Errorf("pod of %s not admitted under restricted PodSecurity: %v", d.Name, err)
		}
	}

	// Without the admin's RunAsNonRoot option (the default, so images that
	// run as root, like the original sample's, keep working), runAsNonRoot
	// is the only thing the restricted standard still asks for.
	err = env.Client.Create(ctx, podFrom(decode[appsv1.Deployment](t, PrimaryDeployment(app, "registry.example.com/shop:v1"))), client.DryRunAll)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "runAsNonRoot") {
		t.Fatalf("default pod: error = %v, want Forbidden for runAsNonRoot only", err)
	}
	for _, other := range []string{"allowPrivilegeEscalation", "capabilities", "seccompProfile", "automount"} {
		if strings.Contains(err.Error(), other) {
			t.Errorf("default pod violates restricted on %s too: %v", other, err)
		}
	}
	baseline := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "baseline-", Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": "latest"}}}
	if err := env.Client.Create(ctx, baseline); err != nil {
		t.Fatal(err)
	}
	pod := podFrom(decode[appsv1.Deployment](t, PrimaryDeployment(app, "registry.example.com/shop:v1")))
	pod.Namespace = baseline.Name
	if err := env.Client.Create(ctx, pod, client.DryRunAll); err != nil {
		t.Errorf("default pod not admitted under baseline PodSecurity: %v", err)
	}
}
