package controllers_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/workload"
)

// realPodSpec is what a platform team's service needs: env from literals
// and a ConfigMap, resources, readiness/liveness/startup probes on a named
// port, a sidecar, a volume, a service account, pull secrets.
func realPodSpec() corev1.PodSpec {
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("web")}}, PeriodSeconds: 5}
	}
	return corev1.PodSpec{
		ServiceAccountName: "shop",
		ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "registry"}},
		Containers: []corev1.Container{
			{
				Name:  "server",
				Image: "placeholder-the-operator-sets-it",
				Env: []corev1.EnvVar{
					{Name: "LOG_LEVEL", Value: "info"},
					{Name: "DB_URL", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "shop"}, Key: "db"}}},
				},
				Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8088}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
				},
				ReadinessProbe: probe("/ready"),
				LivenessProbe:  probe("/live"),
				StartupProbe:   probe("/started"),
				VolumeMounts:   []corev1.VolumeMount{{Name: "cache", MountPath: "/cache"}},
			},
			{Name: "log-shipper", Image: "fluent/fluent-bit:3.0", Args: []string{"-c", "/etc/fluent.conf"}},
		},
		Volumes: []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
	}
}

func withTemplate(t *testing.T, spec corev1.PodSpec) func(*v1.CanaryApp) {
	return func(a *v1.CanaryApp) {
		ps, err := v1.NewPodTemplateSpec(spec)
		if err != nil {
			t.Fatal(err)
		}
		a.Spec.Template = &v1.PodTemplate{
			Metadata: v1.PodTemplateMetadata{Labels: map[string]string{"team": "shop", "version": "any"}, Annotations: map[string]string{"sidecar.istio.io/inject": "true"}},
			Spec:     ps,
		}
	}
}

// expectedPod is what the pod template of a Deployment must be: the
// template as written with only the owned fields set (image, track labels),
// defaulted by the API server itself (a dry-run create), so that any field
// the operator adds, drops or changes beyond those shows as a difference.
func expectedPod(g Gomega, app *v1.CanaryApp, d *appsv1.Deployment, img string) corev1.PodTemplateSpec {
	spec := realPodSpec()
	spec.Containers[0].Image = img
	labels := map[string]string{"team": "shop", "version": "any"}
	for k, v := range d.Spec.Selector.MatchLabels {
		labels[k] = v
	}
	labels[workload.LabelName], labels[workload.LabelManagedBy] = app.Name, workload.ManagedBy
	probe := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-expected", Namespace: d.Namespace},
		Spec: appsv1.DeploymentSpec{
			Selector: d.Spec.Selector,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"sidecar.istio.io/inject": "true"}},
				Spec:       spec,
			},
		},
	}
	g.Expect(env.Client.Create(context.Background(), probe, client.DryRunAll)).To(Succeed())
	return probe.Spec.Template
}

// TestTemplateLandsInBothDeployments: a real service's pod template (env,
// resources, probes, a sidecar, a service account, a volume, pull secrets)
// runs in the primary and in the canary exactly as written, but for the
// image of the app container and the operator's labels.
func TestTemplateLandsInBothDeployments(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	ns, app := stableApp(t, g, prom.URL, func(d *appsv1.Deployment) bool { return d.Name != canaryName }, withTemplate(t, realPodSpec()))
	g.Expect(env.Client.Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns}})).To(Succeed())

	primary := deployment(g, ns, appName)
	g.Expect(toJSON(primary.Spec.Template)).To(MatchJSON(toJSON(expectedPod(g, app, primary, image("v1")))))
	g.Expect(*primary.Spec.Replicas).To(Equal(int32(2)))
	g.Expect(workload.Image(primary)).To(Equal(image("v1")))

	setImage(g, app, image("v2"))
	g.Eventually(func() *appsv1.Deployment { return deployment(g, ns, canaryName) }, timeout, poll).ShouldNot(BeNil())
	canary := deployment(g, ns, canaryName)
	g.Expect(toJSON(canary.Spec.Template)).To(MatchJSON(toJSON(expectedPod(g, app, canary, image("v2")))))
	g.Expect(*canary.Spec.Replicas).To(Equal(int32(1)))
	g.Expect(canary.Spec.Template.Spec.Containers[1].Image).To(Equal("fluent/fluent-bit:3.0"), "the sidecar keeps its own image")

	// Primary and canary differ only in image, track and replicas.
	p, c := deployment(g, ns, appName).Spec.Template.DeepCopy(), canary.Spec.Template.DeepCopy()
	c.Spec.Containers[0].Image = p.Spec.Containers[0].Image
	c.Labels[workload.LabelTrack] = p.Labels[workload.LabelTrack]
	g.Expect(toJSON(c)).To(MatchJSON(toJSON(p)))
}

// TestTemplateGetsThePortWhenNotDeclared: a template whose container does
// not declare imageListenPort gets it as the "http" port; otherwise the
// template's own port (and name) stays.
func TestTemplateGetsThePortWhenNotDeclared(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	spec := realPodSpec()
	spec.Containers[0].Ports = nil
	spec.Containers[0].ReadinessProbe.HTTPGet.Port = intstr.FromInt32(8088)
	spec.Containers[0].LivenessProbe, spec.Containers[0].StartupProbe = nil, nil
	ns, _ := stableApp(t, g, prom.URL, nil, withTemplate(t, spec))
	ports := deployment(g, ns, appName).Spec.Template.Spec.Containers[0].Ports
	g.Expect(ports).To(HaveLen(1))
	g.Expect(ports[0].Name).To(Equal(workload.PortName))
	g.Expect(ports[0].ContainerPort).To(Equal(int32(8088)))
}

// TestBadTemplateStalls: a template the CRD cannot judge (an unknown field,
// an invalid pod) stops the app with Stalled/InvalidTemplate and a message
// naming the problem; fixing it goes on.
func TestBadTemplateStalls(t *testing.T) {
	startManager(t, nil)
	prom := newFakeProm(t)
	cases := []struct {
		name string
		raw  string
		want string
	}{
		{"unknown field", `{"containers":[{"name":"server","image":"x","imagePullPolicy":"Always"}],"serviceAcountName":"shop"}`, "serviceAcountName"},
		{"invalid pod", `{"containers":[{"name":"server","image":"x","ports":[{"containerPort":70000}]}]}`, "containerPort"},
		{"invalid resources", `{"containers":[{"name":"server","image":"x","resources":{"requests":{"cpu":"2"},"limits":{"cpu":"1"}}}]}`, "must be less than or equal to cpu limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ns := env.NewNamespace(t)
			kubelet(t, ns, nil)
			app := sample(ns, prom.URL)
			var ps v1.PodTemplateSpec
			g.Expect(json.Unmarshal([]byte(tc.raw), &ps)).To(Succeed())
			app.Spec.Template = &v1.PodTemplate{Spec: ps}
			g.Expect(env.Client.Create(context.Background(), app)).To(Succeed())
			g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(And(
				haveCondition(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonInvalidTemplate),
				haveCondition(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonInvalidTemplate),
			))
			g.Expect(condition(get(g, app), v1.ConditionStalled).Message).To(ContainSubstring(tc.want))
			g.Expect(deployment(g, ns, appName)).To(BeNil())

			cur := get(g, app)
			withTemplate(t, realPodSpec())(cur)
			g.Expect(env.Client.Update(context.Background(), cur)).To(Succeed())
			g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
				haveCondition(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonStable))
		})
	}
}

// TestTemplateValidation: the API server refuses templates that cannot
// work, with messages a person understands.
func TestTemplateValidation(t *testing.T) {
	ns := env.NewNamespace(t)
	cases := []struct {
		name   string
		mutate func(*v1.CanaryApp)
		want   string
	}{
		{"reserved track label", func(a *v1.CanaryApp) {
			a.Spec.Template.Metadata.Labels = map[string]string{"canary.atze.io/track": "primary"}
		}, "template.metadata.labels must not set canary.atze.io/ labels"},
		{"reserved name label", func(a *v1.CanaryApp) {
			a.Spec.Template.Metadata.Labels = map[string]string{"app.kubernetes.io/name": "other"}
		}, "must not set app.kubernetes.io/name or app.kubernetes.io/managed-by"},
		{"pod-template-hash", func(a *v1.CanaryApp) {
			a.Spec.Template.Metadata.Labels = map[string]string{"pod-template-hash": "x"}
		}, "must not set pod-template-hash"},
		{"empty template", func(a *v1.CanaryApp) { a.Spec.Template = &v1.PodTemplate{} }, "template.spec.containers must list at least one container"},
		{"no containers", func(a *v1.CanaryApp) {
			a.Spec.Template.Spec = v1.PodTemplateSpec{}
		}, "template.spec.containers must list at least one container"},
		{"container name unknown", func(a *v1.CanaryApp) { a.Spec.ContainerName = "srv" }, "spec.containerName must name a container of spec.template.spec.containers"},
		{"container name without template", func(a *v1.CanaryApp) {
			a.Spec.Template = nil
			a.Spec.ContainerName = "app"
		}, "spec.containerName must name a container"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			app := sample(ns, "http://prometheus.istio-system.svc:9090")
			withTemplate(t, realPodSpec())(app)
			tc.mutate(app)
			err := env.Client.Create(context.Background(), app)
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(ContainSubstring(tc.want))
		})
	}
	t.Run("a good template with containerName", func(t *testing.T) {
		g := NewWithT(t)
		app := sample(ns, "http://prometheus.istio-system.svc:9090")
		withTemplate(t, realPodSpec())(app)
		app.Spec.ContainerName = "server"
		g.Expect(env.Client.Create(context.Background(), app, client.FieldValidation("Strict"))).To(Succeed())
		got := get(g, app)
		raw, err := got.Spec.Template.Spec.Raw()
		g.Expect(err).NotTo(HaveOccurred())
		want, _ := json.Marshal(realPodSpec())
		g.Expect(raw).To(MatchJSON(want), "the API server keeps the template as written")
	})
}

// TestTemplateReadinessProbeIsHonoured: the canary's readiness comes from
// its Deployment's status, so a template whose readiness probe never passes
// (the stand-in kubelet keeps pods with the probe path /never unready, as a
// kubelet would) leaves the canary unavailable, and it is rolled back at
// canaryReadyTimeout; the primary, on the stable image's template, is
// unaffected.
func TestTemplateReadinessProbeIsHonoured(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	probePasses := func(d *appsv1.Deployment) bool {
		for _, c := range d.Spec.Template.Spec.Containers {
			if p := c.ReadinessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path == "/never" && c.Image == image("v2") {
				return false
			}
		}
		return true
	}
	spec := realPodSpec()
	spec.Containers[0].ReadinessProbe.HTTPGet.Path = "/never"
	ns, app := stableApp(t, g, prom.URL, probePasses, func(a *v1.CanaryApp) {
		withTemplate(t, spec)(a)
		a.Spec.Analysis.CanaryReadyTimeout = &metav1.Duration{Duration: 2 * time.Second}
	})
	setImage(g, app, image("v2"))
	g.Eventually(func() *appsv1.Deployment { return deployment(g, ns, canaryName) }, timeout, poll).ShouldNot(BeNil())
	g.Eventually(func(g Gomega) v1.Phase { return get(g, app).Status.Phase }, timeout, poll).Should(Equal(v1.PhaseFailed))
	final := get(g, app)
	g.Expect(final.Status.FailedImages[0].Reason).To(ContainSubstring(v1.ReasonCanaryNotReady))
	g.Expect(final.Status.StableImage).To(Equal(image("v1")))
}
