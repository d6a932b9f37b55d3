package controllers

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/admission"
)

// The cap on canaries progressing at once: an app whose new image the
// gate holds back stays on its stable image (phase Queued, Progressing
// False with reason Queued) until a slot is free. The gate counts every
// CanaryApp of the informer; a canary that ends wakes the next app in line
// through a channel source, and a queued app also looks again every
// minute. Running canaries, and so rollbacks, never ask the gate.

func newGate(lim admission.Limits) *admission.Gate {
	if !lim.Enabled() {
		return nil
	}
	return admission.NewGate(lim)
}

// wakeBuffer bounds the pending wake-ups; past it a queued app waits for
// its own recheck.
const wakeBuffer = 1024

// setupQueue feeds the gate from the CanaryApp informer and lets it wake
// queued apps, when a cap is set.
func (r *CanaryAppReconciler) setupQueue(mgr ctrl.Manager, b *builder.TypedBuilder[ctrl.Request]) (*builder.TypedBuilder[ctrl.Request], error) {
	if r.gate == nil {
		return b, nil
	}
	wake := make(chan event.GenericEvent, wakeBuffer)
	err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		inf, err := mgr.GetCache().GetInformer(ctx, &v1.CanaryApp{})
		if err != nil {
			return err
		}
		reg, err := inf.AddEventHandler(gateHandler(r.gate))
		if err != nil {
			return err
		}
		r.gate.Start(reg.HasSynced, func(k types.NamespacedName) {
			select {
			case wake <- event.GenericEvent{Object: &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Name}}}:
			default:
			}
		})
		<-ctx.Done()
		return inf.RemoveEventHandler(reg)
	}))
	if err != nil {
		return nil, err
	}
	return b.WatchesRawSource(source.Channel(wake, &handler.EnqueueRequestForObject{})), nil
}

func gateHandler(g *admission.Gate) toolscache.ResourceEventHandler {
	observe := func(obj any) {
		if app, ok := obj.(*v1.CanaryApp); ok {
			g.Observe(app)
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if app, ok := obj.(*v1.CanaryApp); ok {
				g.Forget(types.NamespacedName{Namespace: app.Namespace, Name: app.Name})
			}
		},
	}
}

// admit asks the gate whether app may start the canary its spec asks for;
// only an app that would start one now is asked.
func (r *CanaryAppReconciler) admit(app *v1.CanaryApp, now time.Time) (bool, *admission.Decision) {
	st := &app.Status
	if r.gate == nil || st.StableImage == "" || st.CanaryImage != "" || app.Spec.Image == st.StableImage || app.IsFailedImage(app.Spec.Image) {
		return false, nil
	}
	d := r.gate.Admit(app, now)
	if d.Admitted {
		return false, nil
	}
	return true, &d
}
