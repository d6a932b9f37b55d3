package workload

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

func templateApp(t *testing.T, containerName string, spec corev1.PodSpec) *v1.CanaryApp {
	t.Helper()
	app := testApp()
	ps, err := v1.NewPodTemplateSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	app.Spec.Template = &v1.PodTemplate{Metadata: v1.PodTemplateMetadata{Labels: map[string]string{"team": "a"}}, Spec: ps}
	app.Spec.ContainerName = containerName
	return app
}

func TestTemplateOwnedFieldsOnly(t *testing.T) {
	spec := corev1.PodSpec{Containers: []corev1.Container{
		{Name: "sidecar", Image: "proxy:1"},
		{Name: "server", Image: "ignored", Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8080}}},
	}, ServiceAccountName: "shop"}
	app := templateApp(t, "server", spec)
	d := decode[appsv1.Deployment](t, CanaryDeployment(app, "registry.example.com/shop:v2", RunAsNonRoot()))
	pod := d.Spec.Template
	if got := Image(d); got != "registry.example.com/shop:v2" {
		t.Errorf("Image = %q", got)
	}
	if pod.Spec.Containers[0].Image != "proxy:1" {
		t.Errorf("sidecar image changed: %q", pod.Spec.Containers[0].Image)
	}
	if ports := pod.Spec.Containers[1].Ports; len(ports) != 1 || ports[0].Name != "web" {
		t.Errorf("declared port changed: %+v", ports)
	}
	if pod.Labels["team"] != "a" || pod.Labels[LabelTrack] != "canary" || pod.Labels[LabelApp] != "shop" {
		t.Errorf("labels = %v", pod.Labels)
	}
	if pod.Spec.ServiceAccountName != "shop" || pod.Spec.AutomountServiceAccountToken != nil {
		t.Errorf("service account not as written: %q %v", pod.Spec.ServiceAccountName, pod.Spec.AutomountServiceAccountToken)
	}
	for _, c := range pod.Spec.Containers {
		if c.SecurityContext == nil || c.SecurityContext.RunAsNonRoot == nil || !*c.SecurityContext.RunAsNonRoot {
			t.Errorf("container %s escapes the admin's runAsNonRoot", c.Name)
		}
	}
	if *d.Spec.Replicas != 1 {
		t.Errorf("replicas = %d", *d.Spec.Replicas)
	}
}

func TestTemplateDefaultContainerIsFirst(t *testing.T) {
	app := templateApp(t, "", corev1.PodSpec{Containers: []corev1.Container{{Name: "web"}, {Name: "other", Image: "o:1"}}})
	d := decode[appsv1.Deployment](t, PrimaryDeployment(app, "registry.example.com/shop:v1"))
	if got := d.Spec.Template.Spec.Containers[0]; got.Image != "registry.example.com/shop:v1" || len(got.Ports) != 1 || got.Ports[0].ContainerPort != 8080 {
		t.Errorf("app container = %+v", got)
	}
	if d.Annotations[AnnotationContainer] != "web" || Image(d) != "registry.example.com/shop:v1" {
		t.Errorf("annotation %v, Image %q", d.Annotations, Image(d))
	}
}

func TestCheckTemplate(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string
		ok   bool
	}{
		{"good", `{"containers":[{"name":"app","image":"x"}]}`, true},
		{"unknown field", `{"containers":[{"name":"app"}],"hostNetwrk":true}`, false},
		{"unknown container field", `{"containers":[{"name":"app","imagePullPolcy":"Always"}]}`, false},
		{"wrong type", `{"containers":[{"name":"app","ports":"8080"}]}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := testApp()
			var ps v1.PodTemplateSpec
			if err := ps.UnmarshalJSON([]byte(tc.raw)); err != nil {
				t.Fatal(err)
			}
			app.Spec.Template = &v1.PodTemplate{Spec: ps}
			err := CheckTemplate(app)
			if (err == nil) != tc.ok || (err != nil && !IsTemplateError(err)) {
				t.Errorf("CheckTemplate = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if err := CheckTemplate(testApp()); err != nil {
		t.Errorf("no template: %v", err)
	}
}

func TestAutoscaledDeploymentHasNoReplicas(t *testing.T) {
	app := testApp()
	app.Spec.Autoscaling = &v1.AutoscalingSpec{MaxReplicas: 10}
	for _, ac := range []any{PrimaryDeployment(app, "registry.example.com/shop:v1"), CanaryDeployment(app, "registry.example.com/shop:v2")} {
		if d := decode[appsv1.Deployment](t, ac); d.Spec.Replicas != nil {
			t.Errorf("%s: replicas %d set on an autoscaled Deployment", d.Name, *d.Spec.Replicas)
		}
	}
}
