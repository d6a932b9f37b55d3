package notify_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/notify"
	"github.com/atzedevries/canaryop/internal/notify/providers"
)

// BenchmarkNotify is what one transition costs the reconcile that makes
// it (notify.NewEvent and Dispatcher.Notify for an app with three
// providers) while every receiver hangs: the queues are full, so this is
// also the cost of a dropped notification.
func BenchmarkNotify(b *testing.B) {
	release := make(chan struct{})
	rx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer rx.Close()
	defer close(release)
	reader := fakeReaderB(b,
		providerSecret("slack", map[string]string{"type": "slack", "address": rx.URL, "namespaces": "*"}),
		providerSecret("teams", map[string]string{"type": "teams", "address": rx.URL, "namespaces": "*"}),
		providerSecret("hook", map[string]string{"type": "webhook", "address": rx.URL, "namespaces": "*"}),
	)
	d := notify.NewDispatcher(notify.NewProviders(reader, operatorNS, providers.Types()...), providers.Formats(), notify.Options{QueueSize: 10, Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Start(ctx) }()
	defer func() { cancel(); <-done }()
	a := app("bench", v1.Notification{Provider: "slack"}, v1.Notification{Provider: "teams"}, v1.Notification{Provider: "hook"})
	e := rolloutEvent(v1.ReasonRolledBack, "Rolled back ghcr.io/acme/web:v3 to ghcr.io/acme/web:v2: 1 failed check(s) at weight 25, last value 5")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if ne, ok := notify.NewEvent(a, e, now); ok {
			d.Notify(ctx, a, ne)
		}
	}
}
