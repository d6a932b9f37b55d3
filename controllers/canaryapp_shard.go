package controllers

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/shard"
)

// Sharding (Options.Shards): every replica runs both controllers, and
// each reconcile of an app, rollout and write-back alike, runs only on the
// replica that holds the Lease of the app's shard, under a context that
// ends when the shard is lost. Events of other replicas' apps are dropped;
// when a replica comes to hold a shard, every app of it is enqueued, so
// nothing waits for a resync. The caches still hold every CanaryApp (the
// cap on progressing canaries counts them all).

// shardedBuilder adds the source through which a newly held shard
// enqueues its apps, when sharding is on.
func (r *CanaryAppReconciler) shardedBuilder(mgr ctrl.Manager, b *builder.TypedBuilder[ctrl.Request]) *builder.TypedBuilder[ctrl.Request] {
	if r.shards == nil {
		return b
	}
	ch := make(chan event.GenericEvent, wakeBuffer)
	reader := mgr.GetCache()
	r.shards.OnAcquire(func(ctx context.Context, s int) {
		enqueueShard(ctx, reader, r.shards, s, ch)
	})
	return b.WatchesRawSource(source.Channel(ch, &handler.EnqueueRequestForObject{}))
}

// enqueueShard sends every cached app of shard s to ch.
func enqueueShard(ctx context.Context, reader client.Reader, m *shard.Manager, s int, ch chan<- event.GenericEvent) {
	apps := &v1.CanaryAppList{}
	if err := reader.List(ctx, apps, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Info("Could not list the apps of an acquired shard; they wait for their next event", "shard", s, "error", err.Error())
		return
	}
	for i := range apps.Items {
		a := &apps.Items[i]
		if shard.Of(a.Namespace, a.Name, m.Shards()) != s {
			continue
		}
		ev := event.GenericEvent{Object: &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: a.Namespace, Name: a.Name}}}
		select {
		case ch <- ev:
		case <-ctx.Done():
			return
		}
	}
}

// guard runs inner only for apps of a shard this replica holds.
func (r *CanaryAppReconciler) guard(inner reconcile.Reconciler) reconcile.Reconciler {
	if r.shards == nil {
		return inner
	}
	return reconcile.Func(func(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
		sctx, done, ok := r.shards.Enter(ctx, req.Namespace, req.Name)
		if !ok {
			// Another replica holds the shard; it is enqueued here
			// again when this replica comes to hold it.
			ctrl.LoggerFrom(ctx).V(4).Info("Skipping an app of a shard held elsewhere")
			return ctrl.Result{}, nil
		}
		defer done()
		ctrl.LoggerFrom(ctx).V(2).Info("Shard work started")
		defer ctrl.LoggerFrom(ctx).V(2).Info("Shard work done")
		return inner.Reconcile(sctx, req)
	})
}
