package workload

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

func testApp() *v1.CanaryApp {
	return &v1.CanaryApp{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "team-a"},
		Spec: v1.CanaryAppSpec{
			Image:           "registry.example.com/shop:v1",
			ImageListenPort: 8080,
			Replicas:        3,
			TestReplicas:    1,
		},
	}
}

// decode turns an apply configuration into its typed object the way the API
// server reads it: through JSON.
func decode[T any](t *testing.T, ac any) *T {
	t.Helper()
	data, err := json.Marshal(ac)
	if err != nil {
		t.Fatal(err)
	}
	out := new(T)
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNames(t *testing.T) {
	app := testApp()
	for _, tc := range []struct{ got, want string }{
		{PrimaryName(app), "shop"},
		{CanaryName(app), "shop-canary"},
		{ServiceName(app), "shop"},
		{DeploymentName(app, TrackPrimary), "shop"},
		{DeploymentName(app, TrackCanary), "shop-canary"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestDeployments(t *testing.T) {
	app := testApp()
	for _, tc := range []struct {
		name         string
		build        func() *appsv1.Deployment
		wantName     string
		wantTrack    string
		wantImage    string
		wantReplicas int32
	}{
		{
			name: "primary",
			build: func() *appsv1.Deployment {
				return decode[appsv1.Deployment](t, PrimaryDeployment(app, "registry.example.com/shop:v1"))
			},
			wantName: "shop", wantTrack: "primary", wantImage: "registry.example.com/shop:v1", wantReplicas: 3,
		},
		{
			name: "canary",
			build: func() *appsv1.Deployment {
				return decode[appsv1.Deployment](t, CanaryDeployment(app, "registry.example.com/shop:v2"))
			},
			wantName: "shop-canary", wantTrack: "canary", wantImage: "registry.example.com/shop:v2", wantReplicas: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.build()
			if d.Kind != "Deployment" || d.APIVersion != "apps/v1" {
				t.Errorf("kind %s/%s", d.APIVersion, d.Kind)
			}
			if d.Name != tc.wantName || d.Namespace != "team-a" {
				t.Errorf("name %s/%s, want team-a/%s", d.Namespace, d.Name, tc.wantName)
			}
			wantLabels := map[string]string{
				"app.kubernetes.io/name":       "shop",
				"app.kubernetes.io/managed-by": "canaryop",
				"canary.atze.io/app":           "shop",
				"canary.atze.io/track":         tc.wantTrack,
			}
			if diff := cmp.Diff(wantLabels, d.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantLabels, d.Spec.Template.Labels); diff != "" {
				t.Errorf("pod labels (-want +got):\n%s", diff)
			}
			wantSelector := &metav1.LabelSelector{MatchLabels: map[string]string{
				"canary.atze.io/app": "shop", "canary.atze.io/track": tc.wantTrack,
			}}
			if diff := cmp.Diff(wantSelector, d.Spec.Selector); diff != "" {
				t.Errorf("selector (-want +got):\n%s", diff)
			}
			if got := ptr.Deref(d.Spec.Replicas, -1); got != tc.wantReplicas {
				t.Errorf("replicas %d, want %d", got, tc.wantReplicas)
			}
			wantContainers := []corev1.Container{{
				Name:  "app",
				Image: tc.wantImage,
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)},
				}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}}
			if diff := cmp.Diff(wantContainers, d.Spec.Template.Spec.Containers); diff != "" {
				t.Errorf("containers (-want +got):\n%s", diff)
			}
			if got := Image(d); got != tc.wantImage {
				t.Errorf("Image() = %q, want %q", got, tc.wantImage)
			}
		})
	}
}

// TestPodSecurityDefaults: both tracks' pods get no ServiceAccount token
// and the baseline-plus settings by default, runAsNonRoot (the restricted
// Pod Security Standard's last setting) only with the admin's option, and
// nothing that would pin a user or loosen the standard.
func TestPodSecurityDefaults(t *testing.T) {
	app := testApp()
	for _, nonRoot := range []bool{false, true} {
		var opts []Option
		var want *bool
		if nonRoot {
			opts, want = []Option{RunAsNonRoot()}, ptr.To(true)
		}
		for _, d := range []*appsv1.Deployment{
			decode[appsv1.Deployment](t, PrimaryDeployment(app, "registry.example.com/shop:v1", opts...)),
			decode[appsv1.Deployment](t, CanaryDeployment(app, "registry.example.com/shop:v2", opts...)),
		} {
			t.Run(fmt.Sprintf("%s/runAsNonRoot=%t", d.Name, nonRoot), func(t *testing.T) {
				spec := d.Spec.Template.Spec
				if got := spec.AutomountServiceAccountToken; got == nil || *got {
					t.Errorf("automountServiceAccountToken = %v, want false", got)
				}
				if spec.ServiceAccountName != "" || spec.HostNetwork || spec.HostPID || spec.HostIPC || len(spec.Volumes) != 0 {
					t.Errorf("pod spec asks for more than the defaults: %+v", spec)
				}
				wantPod := &corev1.PodSecurityContext{
					RunAsNonRoot:   want,
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				}
				if diff := cmp.Diff(wantPod, spec.SecurityContext); diff != "" {
					t.Errorf("pod securityContext (-want +got):\n%s", diff)
				}
				if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
					t.Fatalf("containers %d, init containers %d; want 1, 0", len(spec.Containers), len(spec.InitContainers))
				}
				wantContainer := &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					RunAsNonRoot:             want,
				}
				if diff := cmp.Diff(wantContainer, spec.Containers[0].SecurityContext); diff != "" {
					t.Errorf("container securityContext (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestService(t *testing.T) {
	s := decode[corev1.Service](t, Service(testApp()))
	if s.Kind != "Service" || s.APIVersion != "v1" || s.Name != "shop" || s.Namespace != "team-a" {
		t.Errorf("object %s %s %s/%s", s.APIVersion, s.Kind, s.Namespace, s.Name)
	}
	wantLabels := map[string]string{
		"app.kubernetes.io/name":       "shop",
		"app.kubernetes.io/managed-by": "canaryop",
		"canary.atze.io/app":           "shop",
	}
	if diff := cmp.Diff(wantLabels, s.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"canary.atze.io/app": "shop"}, s.Spec.Selector); diff != "" {
		t.Errorf("selector (-want +got):\n%s", diff)
	}
	wantPorts := []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 8080, TargetPort: intstr.FromInt32(8080)}}
	if diff := cmp.Diff(wantPorts, s.Spec.Ports); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
}

// TestBuildersDoNotShareMaps guards against a builder handing out a map
// that another object also holds: server-side apply configurations are
// often edited after building.
func TestBuildersDoNotShareMaps(t *testing.T) {
	app := testApp()
	d := PrimaryDeployment(app, "img")
	d.Labels["extra"] = "x"
	if _, ok := d.Spec.Template.Labels["extra"]; ok {
		t.Error("Deployment and pod template share their labels map")
	}
	if _, ok := Labels(app)["extra"]; ok {
		t.Error("Labels returned a shared map")
	}
}

func deploymentWith(generation int64, replicas *int32, image string, status appsv1.DeploymentStatus) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Generation: generation},
		Spec: appsv1.DeploymentSpec{
			Replicas: replicas,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "sidecar", Image: "proxy:1"},
				{Name: "app", Image: image},
			}}},
		},
		Status: status,
	}
}

func TestAvailable(t *testing.T) {
	done := appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}
	with := func(f func(*appsv1.DeploymentStatus)) appsv1.DeploymentStatus {
		s := done
		f(&s)
		return s
	}
	for _, tc := range []struct {
		name  string
		d     *appsv1.Deployment
		image string
		want  bool
	}{
		{"rolled out", deploymentWith(2, ptr.To[int32](3), "v2", done), "v2", true},
		{"observed a newer generation", deploymentWith(1, ptr.To[int32](3), "v2", done), "v2", true},
		{"other image", deploymentWith(2, ptr.To[int32](3), "v1", done), "v2", false},
		{"sidecar has the image", deploymentWith(2, ptr.To[int32](3), "v1", done), "proxy:1", false},
		{"spec not observed yet", deploymentWith(3, ptr.To[int32](3), "v2", done), "v2", false},
		{"not all updated", deploymentWith(2, ptr.To[int32](3), "v2", with(func(s *appsv1.DeploymentStatus) { s.UpdatedReplicas = 2 })), "v2", false},
		{"not all available", deploymentWith(2, ptr.To[int32](3), "v2", with(func(s *appsv1.DeploymentStatus) {
			s.AvailableReplicas = 2
			s.UnavailableReplicas = 1
		})), "v2", false},
		{"unavailable reported", deploymentWith(2, ptr.To[int32](3), "v2", with(func(s *appsv1.DeploymentStatus) { s.UnavailableReplicas = 1 })), "v2", false},
		{"old pods still terminating", deploymentWith(2, ptr.To[int32](3), "v2", with(func(s *appsv1.DeploymentStatus) { s.Replicas = 4 })), "v2", false},
		{"scaled up, new pods missing", deploymentWith(2, ptr.To[int32](5), "v2", done), "v2", false},
		{"replicas unset means one", deploymentWith(2, nil, "v2", appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}), "v2", true},
		{"replicas unset, three pods", deploymentWith(2, nil, "v2", done), "v2", false},
		{"scaled to zero", deploymentWith(2, ptr.To[int32](0), "v2", appsv1.DeploymentStatus{ObservedGeneration: 2}), "v2", true},
		{"no status yet", deploymentWith(1, ptr.To[int32](3), "v2", appsv1.DeploymentStatus{}), "v2", false},
		{"nil", nil, "v2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Available(tc.d, tc.image); got != tc.want {
				t.Errorf("Available() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFailed(t *testing.T) {
	progressing := func(status corev1.ConditionStatus, reason string) appsv1.DeploymentStatus {
		return appsv1.DeploymentStatus{
			ObservedGeneration: 2,
			Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable"},
				{Type: appsv1.DeploymentProgressing, Status: status, Reason: reason},
			},
		}
	}
	for _, tc := range []struct {
		name string
		d    *appsv1.Deployment
		want bool
	}{
		{"deadline exceeded", deploymentWith(2, nil, "v2", progressing(corev1.ConditionFalse, "ProgressDeadlineExceeded")), true},
		{"still progressing", deploymentWith(2, nil, "v2", progressing(corev1.ConditionTrue, "ReplicaSetUpdated")), false},
		{"complete", deploymentWith(2, nil, "v2", progressing(corev1.ConditionTrue, "NewReplicaSetAvailable")), false},
		{"deadline of an older generation", deploymentWith(3, nil, "v2", progressing(corev1.ConditionFalse, "ProgressDeadlineExceeded")), false},
		{"no conditions", deploymentWith(2, nil, "v2", appsv1.DeploymentStatus{ObservedGeneration: 2}), false},
		{"nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Failed(tc.d); got != tc.want {
				t.Errorf("Failed() = %v, want %v", got, tc.want)
			}
		})
	}
}
