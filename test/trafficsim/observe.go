package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Observer reads the live traffic splits of the apps from the API server.
type Observer struct {
	reader    client.Reader
	namespace string
	apps      []string

	mu     sync.Mutex
	splits []Split
}

// NewObserver returns an Observer of apps in namespace. Until the first
// Observe every app is unrouted.
func NewObserver(reader client.Reader, namespace string, apps []string) *Observer {
	o := &Observer{reader: reader, namespace: namespace, apps: apps}
	for _, app := range apps {
		o.splits = append(o.splits, Split{App: app, Namespace: namespace, Unrouted: UnroutedNoVirtualService})
	}
	return o
}

// Splits returns the splits seen by the last Observe, one per app.
func (o *Observer) Splits() []Split {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Split(nil), o.splits...)
}

// Observe reads every app once. An app that could not be read keeps its
// previous split, so that a passing API error does not move traffic.
func (o *Observer) Observe(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx)
	var errs []error
	next := o.Splits()
	for i, app := range o.apps {
		s, err := o.read(ctx, app)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading app %s/%s: %w", o.namespace, app, err))
			continue
		}
		if s.String() != next[i].String() {
			log.Info("Traffic split changed", "app", app, "namespace", o.namespace, "split", s.String())
		}
		next[i] = s
	}
	o.mu.Lock()
	o.splits = next
	o.mu.Unlock()
	return errors.Join(errs...)
}

func (o *Observer) read(ctx context.Context, app string) (Split, error) {
	vs := &istionetv1.VirtualService{}
	if err := o.reader.Get(ctx, types.NamespacedName{Namespace: o.namespace, Name: app}, vs); err != nil {
		if !apierrors.IsNotFound(err) {
			return Split{}, fmt.Errorf("getting VirtualService: %w", err)
		}
		vs = nil
	}
	if vs == nil {
		// Not on Istio: the gatewayapi router's HTTPRoute, if any.
		return o.readHTTPRoute(ctx, app)
	}
	deployments := map[string]*appsv1.Deployment{}
	if vs != nil {
		for _, t := range BuildSplit(app, o.namespace, vs, nil).Targets {
			dep := &appsv1.Deployment{}
			err := o.reader.Get(ctx, types.NamespacedName{Namespace: o.namespace, Name: t.Workload}, dep)
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				return Split{}, fmt.Errorf("getting Deployment %s: %w", t.Workload, err)
			default:
				deployments[t.Workload] = dep
			}
		}
	}
	return BuildSplit(app, o.namespace, vs, deployments), nil
}

// Run observes every interval until ctx ends, logging failed reads.
func (o *Observer) Run(ctx context.Context, interval time.Duration) {
	log := ctrl.LoggerFrom(ctx)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if err := o.Observe(ctx); err != nil && ctx.Err() == nil {
			log.Error(err, "Reading traffic splits failed; keeping the previous ones")
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
