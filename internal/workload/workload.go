// Package workload builds the Deployments and the Service that run a
// CanaryApp, and reads a Deployment's rollout state. Everything here is pure:
// no client, no cluster.
//
// For a CanaryApp named N in namespace NS the operator owns, all in NS:
//
//   - Deployment N: the primary (stable) track, spec.replicas pods.
//   - Deployment N-canary: the canary track, spec.testReplicas pods.
//   - Service N: selects the pods of both tracks, so that Istio sees one
//     service (destination_service_name="N" in istio_requests_total) and the
//     VirtualService splits its traffic between the tracks.
//
// Every object carries these labels:
//
//	app.kubernetes.io/name: N
//	app.kubernetes.io/managed-by: canaryop
//	canary.atze.io/app: N
//
// Deployments and their pods also carry canary.atze.io/track: primary or
// canary; the Istio DestinationRule subsets select on that label. The
// Deployment selectors use canary.atze.io/app and canary.atze.io/track only,
// because a selector is immutable and must never depend on anything that may
// change.
//
// With spec.template (template.go) the pods are the template as written:
// the operator sets only the app container's image (spec.containerName,
// default the first container), the labels above, a port named "http" on
// spec.imageListenPort unless the container declares that port, and the
// admin's RunAsNonRoot; none of the defaults below is added, so the
// namespace's Pod Security Admission level alone governs what a template
// may ask for (a service account, host paths, privileges). The Deployment
// carries the annotation canary.atze.io/container naming the app
// container. With spec.autoscaling the Deployments have no spec.replicas:
// their HorizontalPodAutoscalers own it.
//
// Without a template the pod runs one container named "app" with the image, a container port
// named "http" on spec.imageListenPort and a TCP readiness probe on that
// port. The Service exposes the same port, also named "http" so that Istio
// treats the traffic as HTTP.
//
// Every pod gets the defaults of the Kubernetes "baseline" Pod Security
// Standard and most of "restricted", so a CanaryApp author (who picks the
// image) gets no more than an unprivileged container:
//
//   - automountServiceAccountToken: false. The app gets no token of the
//     namespace's default ServiceAccount, which the author may not be
//     allowed to use, and which the app has no need for.
//   - Pod securityContext seccompProfile RuntimeDefault; container
//     securityContext allowPrivilegeEscalation: false and capabilities
//     drop ["ALL"].
//
// runAsNonRoot, the one remaining setting of "restricted", is the admin's
// choice (the RunAsNonRoot option, flag --pods-run-as-non-root): with it the
// pods are admitted in a namespace labelled pod-security.kubernetes.io/
// enforce: restricted, and the image must run as a numeric non-root user (a
// Dockerfile "USER 65532"); an image that runs as root is refused by the
// kubelet ("container has runAsNonRoot and image will run as root"), so its
// canary never becomes ready and is rolled back. It is not the default
// because images like the original sample's run as root, and the sample
// must keep running unchanged. runAsUser is never set: forcing a UID would
// make images start as a user their files do not belong to and fail later
// and less clearly. Istio's sidecar injection keeps working: its containers
// set their own users; in a restricted namespace the istio-init container
// (NET_ADMIN) is refused, so use the Istio CNI plugin there.
package workload

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// Label keys and values set on the objects the operator owns.
const (
	// LabelName is the well-known app name label; Istio derives the
	// canonical service name from it.
	LabelName = "app.kubernetes.io/name"
	// LabelManagedBy is the well-known label naming the managing tool.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelApp names the CanaryApp an object belongs to. The Service selects
	// on it.
	LabelApp = "canary.atze.io/app"
	// LabelTrack is TrackPrimary or TrackCanary on Deployments and pods. The
	// DestinationRule subsets select on it.
	LabelTrack = "canary.atze.io/track"

	// ManagedBy is the value of LabelManagedBy.
	ManagedBy = "canaryop"
)

// Track is one of the two Deployments of a CanaryApp.
type Track string

const (
	// TrackPrimary runs the stable image.
	TrackPrimary Track = "primary"
	// TrackCanary runs the image under analysis.
	TrackCanary Track = "canary"
)

// ContainerName is the name of the app's container in both Deployments.
const ContainerName = "app"

// PortName names the container port and the Service port. The "http" prefix
// is what makes Istio treat the traffic as HTTP.
const PortName = "http"

// PrimaryName is the name of the primary Deployment.
func PrimaryName(app *v1.CanaryApp) string { return app.Name }

// CanaryName is the name of the canary Deployment.
func CanaryName(app *v1.CanaryApp) string { return app.Name + "-canary" }

// ServiceName is the name of the Service (and the Istio host) of the app.
func ServiceName(app *v1.CanaryApp) string { return app.Name }

// DeploymentName is the name of the Deployment of the given track.
func DeploymentName(app *v1.CanaryApp, t Track) string {
	if t == TrackCanary {
		return CanaryName(app)
	}
	return PrimaryName(app)
}

// Labels are the labels on every object of the app.
func Labels(app *v1.CanaryApp) map[string]string {
	return map[string]string{
		LabelName:      app.Name,
		LabelManagedBy: ManagedBy,
		LabelApp:       app.Name,
	}
}

// TrackLabels are the labels on a Deployment and its pods.
func TrackLabels(app *v1.CanaryApp, t Track) map[string]string {
	l := Labels(app)
	l[LabelTrack] = string(t)
	return l
}

// SelectorLabels select the pods of one track.
func SelectorLabels(app *v1.CanaryApp, t Track) map[string]string {
	return map[string]string{LabelApp: app.Name, LabelTrack: string(t)}
}

// ServiceSelector selects the pods of both tracks.
func ServiceSelector(app *v1.CanaryApp) map[string]string {
	return map[string]string{LabelApp: app.Name}
}

// Option is the admin's choice of pod defaults.
type Option func(*options)

type options struct {
	runAsNonRoot bool
}

// RunAsNonRoot makes pod and container refuse to run as root, which the
// "restricted" Pod Security Standard requires (see the package doc).
func RunAsNonRoot() Option { return func(o *options) { o.runAsNonRoot = true } }

// PrimaryDeployment is the primary Deployment running image with
// spec.replicas pods.
func PrimaryDeployment(app *v1.CanaryApp, image string, opts ...Option) *appsv1ac.DeploymentApplyConfiguration {
	return deployment(app, TrackPrimary, image, app.Spec.Replicas, opts)
}

// CanaryDeployment is the canary Deployment running image with
// spec.testReplicas pods.
func CanaryDeployment(app *v1.CanaryApp, image string, opts ...Option) *appsv1ac.DeploymentApplyConfiguration {
	return deployment(app, TrackCanary, image, app.Spec.TestReplicas, opts)
}

func deployment(app *v1.CanaryApp, t Track, image string, replicas int32, opts []Option) *appsv1ac.DeploymentApplyConfiguration {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	pod := defaultPod(app, t, image, o)
	if app.Spec.Template != nil {
		pod = templatePod(app, t, image, o)
	}
	spec := appsv1ac.DeploymentSpec().
		WithSelector(metav1ac.LabelSelector().WithMatchLabels(SelectorLabels(app, t))).
		WithTemplate(pod)
	if app.Spec.Autoscaling == nil {
		// With autoscaling the HPA owns spec.replicas: an apply without
		// the field leaves the HPA's value alone.
		spec.WithReplicas(replicas)
	}
	d := appsv1ac.Deployment(DeploymentName(app, t), app.Namespace).
		WithLabels(TrackLabels(app, t)).
		WithSpec(spec)
	if app.Spec.Template != nil {
		d.WithAnnotations(map[string]string{AnnotationContainer: AppContainerName(app)})
	}
	return d
}

// defaultPod is the pod of an app without spec.template (see the package
// doc).
func defaultPod(app *v1.CanaryApp, t Track, image string, o options) *corev1ac.PodTemplateSpecApplyConfiguration {
	port := app.Spec.ImageListenPort
	container := corev1ac.Container().
		WithName(ContainerName).
		WithImage(image).
		WithPorts(corev1ac.ContainerPort().
			WithName(PortName).
			WithContainerPort(port).
			WithProtocol(corev1.ProtocolTCP)).
		WithReadinessProbe(corev1ac.Probe().
			WithTCPSocket(corev1ac.TCPSocketAction().WithPort(intstr.FromInt32(port)))).
		WithSecurityContext(corev1ac.SecurityContext().
			WithAllowPrivilegeEscalation(false).
			WithCapabilities(corev1ac.Capabilities().WithDrop("ALL")))
	podSecurity := corev1ac.PodSecurityContext().
		WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))
	if o.runAsNonRoot {
		// On the container too, not only the pod: a webhook that rewrites
		// the pod's securityContext must not make this container root.
		container.SecurityContext.WithRunAsNonRoot(true)
		podSecurity.WithRunAsNonRoot(true)
	}
	return corev1ac.PodTemplateSpec().
		WithLabels(TrackLabels(app, t)).
		WithSpec(corev1ac.PodSpec().
			WithAutomountServiceAccountToken(false).
			WithSecurityContext(podSecurity).
			WithContainers(container))
}

// Service is the Service in front of both tracks.
func Service(app *v1.CanaryApp) *corev1ac.ServiceApplyConfiguration {
	port := app.Spec.ImageListenPort
	return corev1ac.Service(ServiceName(app), app.Namespace).
		WithLabels(Labels(app)).
		WithSpec(corev1ac.ServiceSpec().
			WithSelector(ServiceSelector(app)).
			WithPorts(corev1ac.ServicePort().
				WithName(PortName).
				WithProtocol(corev1.ProtocolTCP).
				WithPort(port).
				WithTargetPort(intstr.FromInt32(port))))
}

// Image is the image of the app container in d's pod template (the one
// AnnotationContainer names, else "app"), or "" when d has no such
// container.
func Image(d *appsv1.Deployment) string {
	if c := containerOf(d); c != nil {
		return c.Image
	}
	return ""
}

// Available reports whether d has rolled out image and every one of its
// pods is updated and available. It mirrors `kubectl rollout status`: the
// Deployment controller must have seen the latest spec, and no pod of an
// older ReplicaSet may still run, so that traffic to this track is served by
// image only.
func Available(d *appsv1.Deployment, image string) bool {
	if d == nil || Image(d) != image {
		return false
	}
	if d.Status.ObservedGeneration < d.Generation {
		return false
	}
	want := int32(1) // the API server's default for spec.replicas
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return s.Replicas == want &&
		s.UpdatedReplicas == want &&
		s.AvailableReplicas == want &&
		s.UnavailableReplicas == 0
}

// Failed reports whether the Deployment controller gave up on d's current
// rollout: the Progressing condition says ProgressDeadlineExceeded. A
// condition about an older generation is ignored, because it describes a
// rollout that a newer spec has replaced.
func Failed(d *appsv1.Deployment) bool {
	if d == nil || d.Status.ObservedGeneration < d.Generation {
		return false
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing {
			return c.Reason == ReasonProgressDeadlineExceeded
		}
	}
	return false
}

// ReasonProgressDeadlineExceeded is the reason the Deployment controller
// sets on the Progressing condition when a rollout made no progress within
// spec.progressDeadlineSeconds. k8s.io/api does not export it.
const ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"

// TrackServiceName is the name of the Service that selects the pods of one
// track only, "<name>-primary" or "<name>-canary". The Istio router needs
// none (its DestinationRule subsets tell the tracks apart); routers whose
// weights name Services, such as Gateway API's, route to these.
func TrackServiceName(app *v1.CanaryApp, t Track) string { return app.Name + "-" + string(t) }

// TrackService is the Service in front of the pods of track t alone, with
// the port of Service.
func TrackService(app *v1.CanaryApp, t Track) *corev1ac.ServiceApplyConfiguration {
	port := app.Spec.ImageListenPort
	return corev1ac.Service(TrackServiceName(app, t), app.Namespace).
		WithLabels(Labels(app)).
		WithSpec(corev1ac.ServiceSpec().
			WithSelector(SelectorLabels(app, t)).
			WithPorts(corev1ac.ServicePort().
				WithName(PortName).
				WithProtocol(corev1.ProtocolTCP).
				WithPort(port).
				WithTargetPort(intstr.FromInt32(port))))
}
