package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/traffic"
)

// initialise creates the apps and waits until all are Ready.
func (b *bench) initialise(ctx context.Context) error {
	before, err := scrape(ctx, b.c.metricsURL)
	if err != nil {
		return err
	}
	if err := b.createNamespaces(ctx); err != nil {
		return err
	}
	start := time.Now()
	if err := b.parallel(b.c.n, func(i int) error { return b.cl.Create(ctx, b.app(i)) }); err != nil {
		return err
	}
	created := time.Since(start)
	if err := b.waitSeen(ctx, start); err != nil {
		return err
	}
	if b.c.memoryOnly {
		return errMemoryOnly
	}
	if err := b.waitReady(ctx, imageV1, b.c.n, time.Hour); err != nil {
		return err
	}
	ready := time.Since(start)
	after, err := scrape(ctx, b.c.metricsURL)
	if err != nil {
		return err
	}
	d := delta(before, after)
	b.note("%d apps Ready %.1f s after the first create (creates took %.1f s): %.3f s per app", b.c.n, ready.Seconds(), created.Seconds(), ready.Seconds()/float64(b.c.n))
	b.note("operator API requests per app until Ready: %s (writes %.2f)", byVerb(d, float64(b.c.n)), writes(d)/float64(b.c.n))
	b.note("operator RSS when all are Ready: %.1f MiB", after.rssBytes/(1<<20))
	return nil
}

// errMemoryOnly ends a run at the milestone -memory-only asks for.
var errMemoryOnly = errors.New("stopped once every app was reconciled (-memory-only)")

// waitSeen waits until the operator has reconciled every app once (its
// phase is set) and notes the time and the operator's memory then: all
// the apps and their objects are in its caches, whether or not the
// cluster has made their Deployments Available yet.
func (b *bench) waitSeen(ctx context.Context, start time.Time) error {
	err := until(ctx, time.Hour, func() bool {
		var list v1.CanaryAppList
		if err := b.apps.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
			return false
		}
		n := 0
		for _, a := range list.Items {
			if a.Status.Phase != "" {
				n++
			}
		}
		return n >= b.c.n
	})
	if err != nil {
		return fmt.Errorf("not every app reconciled: %w", err)
	}
	time.Sleep(5 * time.Second) // the last status patches settle
	m, err := scrape(ctx, b.c.metricsURL)
	if err != nil {
		return err
	}
	b.note("every app reconciled once %.1f s after the first create: operator RSS %.1f MiB, Go heap in use %.1f MiB", time.Since(start).Seconds(), m.rssBytes/(1<<20), m.heapBytes/(1<<20))
	return nil
}

// idleCPU measures CPU and requests while nothing changes.
func (b *bench) idleCPU(ctx context.Context) error {
	time.Sleep(5 * time.Second) // the last status patches settle
	before, err := scrape(ctx, b.c.metricsURL)
	if err != nil {
		return err
	}
	time.Sleep(b.c.idle)
	after, err := scrape(ctx, b.c.metricsURL)
	if err != nil {
		return err
	}
	d := delta(before, after)
	b.note("idle %s: CPU %.2f s, API writes %.0f, RSS %.1f MiB", b.c.idle, after.cpuSecs-before.cpuSecs, writes(d), after.rssBytes/(1<<20))
	return nil
}

// round gives apps 0..canaries-1 a new image at once; the probe app's
// errors start once its canary takes traffic.
func (b *bench) round(ctx context.Context) error {
	before, err := scrape(ctx, b.c.metricsURL)
	if err != nil {
		return err
	}
	start := time.Now()
	err = b.parallel(b.c.canaries, func(i int) error {
		a := b.app(i)
		return b.cl.Patch(ctx, a, client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"spec":{"image":%q}}`, imageV2)))
	})
	if err != nil {
		return err
	}
	if err := b.rollbackProbe(ctx); err != nil {
		return err
	}
	if err := b.waitReady(ctx, imageV2, b.c.canaries-1, 30*time.Minute); err != nil {
		return err
	}
	took := time.Since(start)
	after, err := scrape(ctx, b.c.metricsURL)
	if err != nil {
		return err
	}
	d := delta(before, after)
	b.note("round: %d canaries at once, all but the probe promoted in %.1f s; operator writes per canary %.1f (%s per canary); CPU %.1f s", b.c.canaries, took.Seconds(), writes(d)/float64(b.c.canaries), byVerb(d, float64(b.c.canaries)), after.cpuSecs-before.cpuSecs)
	return nil
}

// rollbackProbe waits for the probe's canary to take traffic, starts its
// errors, and times visible-in-Prometheus to all traffic on the primary.
func (b *bench) rollbackProbe(ctx context.Context) error {
	ns := b.ns(0)
	if err := until(ctx, 10*time.Minute, func() bool { w, _ := b.weight(ctx, ns, probe); return w > 0 }); err != nil {
		return fmt.Errorf("probe canary never took traffic: %w", err)
	}
	b.errors.Store(5)
	set := time.Now()
	if err := until(ctx, time.Minute, func() bool { return b.promSees(ctx) }); err != nil {
		return fmt.Errorf("prometheus never showed the errors: %w", err)
	}
	visible := time.Now()
	if err := until(ctx, 5*time.Minute, func() bool { w, ok := b.weight(ctx, ns, probe); return ok && w == 0 }); err != nil {
		return fmt.Errorf("probe never rolled back: %w", err)
	}
	back := time.Now()
	b.note("probe app: errors visible in Prometheus %.2f s after they started; all traffic on the primary %.2f s after they were visible", visible.Sub(set).Seconds(), back.Sub(visible).Seconds())
	return nil
}

func (b *bench) weight(ctx context.Context, ns, name string) (int32, bool) {
	vs := &istionetworking.VirtualService{}
	if err := b.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, vs); err != nil {
		return 0, false
	}
	return traffic.CanaryWeight(&vs.Spec)
}

func (b *bench) promSees(ctx context.Context) bool {
	q := url.Values{"query": {fmt.Sprintf(`bench_errors{app=%q} > 0`, probe)}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.c.promURL+"/api/v1/query?"+q.Encode(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var r struct {
		Data struct{ Result []json.RawMessage }
	}
	return json.NewDecoder(resp.Body).Decode(&r) == nil && len(r.Data.Result) > 0
}

func until(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
