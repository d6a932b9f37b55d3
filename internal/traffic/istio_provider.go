package traffic

import (
	"context"
	"fmt"

	istioclient "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/apply"
	"github.com/atzedevries/canaryop/internal/workload"
)

// +kubebuilder:rbac:groups=networking.istio.io,resources=virtualservices;destinationrules,verbs=get;list;watch;create;update;patch;delete

// IstioProvider is the Istio router's registration (see package routers).
var IstioProvider = Provider{
	Name:        v1.TrafficIstio,
	AddToScheme: istioclient.AddToScheme,
	Owns: func() []client.Object {
		return []client.Object{&istioclient.VirtualService{}, &istioclient.DestinationRule{}}
	},
	New: func(d Deps) Router {
		return NewIstio(d.Client, WithRoutePolicy(d.Policy), WithAPIReader(d.APIReader))
	},
}

var _ Retirer = (*Istio)(nil)

// Services implements Router: the one Service N in front of both tracks,
// whose subsets the DestinationRule tells apart.
func (r *Istio) Services(app *v1.CanaryApp) ([]*corev1ac.ServiceApplyConfiguration, error) {
	return []*corev1ac.ServiceApplyConfiguration{workload.Service(app)}, nil
}

// Retire implements Retirer: it deletes the VirtualServices and the
// DestinationRule app controls. The Service N stays: every router uses it.
func (r *Istio) Retire(ctx context.Context, app *v1.CanaryApp) error {
	objs := []client.Object{
		&istioclient.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: GatewayVirtualServiceName(app)}},
		&istioclient.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: VirtualServiceName(app)}},
		&istioclient.DestinationRule{ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: DestinationRuleName(app)}},
	}
	for _, obj := range objs {
		if err := apply.Delete(ctx, r.c, app, obj); err != nil && !apply.IsForeignObject(err) {
			return fmt.Errorf("retiring the Istio routes of %s: %w", klog.KObj(app), err)
		}
	}
	return nil
}
