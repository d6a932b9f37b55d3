package workload

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// AnnotationContainer on a Deployment names the container of its pod
// template that runs the app's image, so that Image finds it without the
// CanaryApp (a template may name it anything).
const AnnotationContainer = "canary.atze.io/container"

// AppContainerName is the name of the app's container: spec.containerName,
// else the template's first container, else ContainerName.
func AppContainerName(app *v1.CanaryApp) string {
	if app.Spec.ContainerName != "" {
		return app.Spec.ContainerName
	}
	if tpl := app.Spec.Template; tpl != nil && len(tpl.Spec.Containers) > 0 {
		return tpl.Spec.Containers[0].Name
	}
	return ContainerName
}

// CheckTemplate reports what is wrong with spec.template before anything is
// applied: a field the PodSpec does not have, or a containerName that names
// no container. Everything else about the pod is the API server's to judge
// when the Deployment is applied. Its errors wrap v1.ErrTemplate.
func CheckTemplate(app *v1.CanaryApp) error {
	tpl := app.Spec.Template
	if tpl == nil {
		return nil
	}
	spec, err := tpl.Spec.PodSpec()
	if err != nil {
		return err
	}
	name := AppContainerName(app)
	for _, c := range spec.Containers {
		if c.Name == name {
			return nil
		}
	}
	return fmt.Errorf("%w: no container named %q in spec.template.spec.containers", v1.ErrTemplate, name)
}

// IsTemplateError reports whether err is about spec.template.
func IsTemplateError(err error) bool { return errors.Is(err, v1.ErrTemplate) }

// templatePod is the pod template of track t built from spec.template:
// everything as written, plus what the operator owns. The template's
// labels and annotations are kept, the track labels added (CEL keeps the
// template from setting them); the app container runs image and gets a port
// named "http" on imageListenPort unless it declares that port already. The
// admin's RunAsNonRoot is imposed on the pod and every container: a
// template must not get around the admin's policy.
//
// It decodes leniently and never fails: CheckTemplate reports unknown
// fields first, and the API server the rest.
func templatePod(app *v1.CanaryApp, t Track, image string, o options) *corev1ac.PodTemplateSpecApplyConfiguration {
	tpl := app.Spec.Template
	spec := &corev1ac.PodSpecApplyConfiguration{}
	if raw, err := tpl.Spec.Raw(); err == nil {
		_ = json.Unmarshal(raw, spec)
	}
	labels := maps.Clone(tpl.Metadata.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, TrackLabels(app, t))
	name := AppContainerName(app)
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if c.Name != nil && *c.Name == name {
			c.WithImage(image)
			ensurePort(c, app.Spec.ImageListenPort)
		}
		if o.runAsNonRoot {
			if c.SecurityContext == nil {
				c.WithSecurityContext(corev1ac.SecurityContext())
			}
			c.SecurityContext.WithRunAsNonRoot(true)
		}
	}
	if o.runAsNonRoot {
		if spec.SecurityContext == nil {
			spec.WithSecurityContext(corev1ac.PodSecurityContext())
		}
		spec.SecurityContext.WithRunAsNonRoot(true)
	}
	pod := corev1ac.PodTemplateSpec().WithLabels(labels).WithSpec(spec)
	if len(tpl.Metadata.Annotations) > 0 {
		pod.WithAnnotations(tpl.Metadata.Annotations)
	}
	return pod
}

// ensurePort adds the "http" port on port unless the container declares
// that port number already (under any name: its probes may refer to it).
func ensurePort(c *corev1ac.ContainerApplyConfiguration, port int32) {
	for _, p := range c.Ports {
		if p.ContainerPort != nil && *p.ContainerPort == port {
			return
		}
	}
	c.WithPorts(corev1ac.ContainerPort().WithName(PortName).WithContainerPort(port).WithProtocol(corev1.ProtocolTCP))
}

// containerOf is the container of d that runs the app: the one
// AnnotationContainer names, else ContainerName.
func containerOf(d *appsv1.Deployment) *corev1.Container {
	name := ContainerName
	if n := d.Annotations[AnnotationContainer]; n != "" {
		name = n
	}
	for i, c := range d.Spec.Template.Spec.Containers {
		if c.Name == name {
			return &d.Spec.Template.Spec.Containers[i]
		}
	}
	return nil
}
