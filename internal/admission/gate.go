package admission

import (
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// reservationTTL is how long an admitted app counts as progressing before
// its status shows it: the reconcile that admitted it may fail to write.
const reservationTTL = time.Minute

// Gate applies Limits to the CanaryApps it is told about (Observe and
// Forget, from the CanaryApp informer). It is safe for concurrent use.
type Gate struct {
	limits Limits
	// wake is called with an app that may start now because a canary
	// ended; nil wakes nobody (queued apps then look again on their own).
	wake func(types.NamespacedName)
	// synced reports whether the informer has shown every app; until
	// then nothing is admitted, so a restart cannot exceed the cap.
	synced func() bool

	mu       sync.Mutex
	apps     map[types.NamespacedName]Entry
	reserved map[types.NamespacedName]time.Time
}

// NewGate returns a Gate for lim.
func NewGate(lim Limits) *Gate {
	return &Gate{limits: lim, apps: map[types.NamespacedName]Entry{}, reserved: map[types.NamespacedName]time.Time{}}
}

// Limits returns the gate's caps.
func (g *Gate) Limits() Limits { return g.limits }

// Start makes the gate admit apps once synced says so, and wake apps that
// may start when a canary ends.
func (g *Gate) Start(synced func() bool, wake func(types.NamespacedName)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.synced, g.wake = synced, wake
}

// EntryOf is how the cap sees app.
func EntryOf(app *v1.CanaryApp) Entry {
	e := Entry{Key: types.NamespacedName{Namespace: app.Namespace, Name: app.Name}, Progressing: app.Status.CanaryImage != ""}
	if q := app.Status.QueuedAt; q != nil && !e.Progressing {
		e.QueuedAt = q.Time
	}
	return e
}

// Observe records the app as the informer shows it; when it no longer
// progresses, the next apps in line are woken.
func (g *Gate) Observe(app *v1.CanaryApp) {
	e := EntryOf(app)
	g.mu.Lock()
	old := g.apps[e.Key]
	g.apps[e.Key] = e
	if e.Progressing {
		delete(g.reserved, e.Key) // status shows what the reservation held
	}
	next := g.endedLocked(old.Progressing && !e.Progressing, e.Key.Namespace)
	g.mu.Unlock()
	g.wakeAll(next)
}

// Forget drops a deleted app.
func (g *Gate) Forget(key types.NamespacedName) {
	g.mu.Lock()
	old, ok := g.apps[key]
	delete(g.apps, key)
	delete(g.reserved, key)
	next := g.endedLocked(ok && old.Progressing, key.Namespace)
	g.mu.Unlock()
	g.wakeAll(next)
}

// endedLocked returns the apps to wake after a canary in namespace ended:
// the first waiting app of that namespace and the first of the operator.
func (g *Gate) endedLocked(ended bool, namespace string) []types.NamespacedName {
	if !ended || g.wake == nil {
		return nil
	}
	var firstNS, first *Entry
	for _, e := range g.apps {
		if !e.waiting() {
			continue
		}
		if first == nil || before(e, *first) < 0 {
			first = &e
		}
		if e.Key.Namespace == namespace && (firstNS == nil || before(e, *firstNS) < 0) {
			firstNS = &e
		}
	}
	var out []types.NamespacedName
	for _, e := range []*Entry{firstNS, first} {
		if e != nil && !slices.Contains(out, e.Key) {
			out = append(out, e.Key)
		}
	}
	return out
}

func (g *Gate) wakeAll(keys []types.NamespacedName) {
	for _, k := range keys {
		g.wake(k)
	}
}

// Admit decides whether app may start its canary now; an admitted app
// counts as progressing at once, so concurrent reconciles cannot both take
// the last slot.
func (g *Gate) Admit(app *v1.CanaryApp, now time.Time) Decision {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.synced == nil || !g.synced() {
		return Decision{Scope: "operator", Limit: g.limits.Total, Position: 1}
	}
	all := make([]Entry, 0, len(g.apps))
	for k, e := range g.apps {
		if at, ok := g.reserved[k]; ok {
			if now.Sub(at) < reservationTTL {
				e.Progressing = true
			} else {
				delete(g.reserved, k)
			}
		}
		all = append(all, e)
	}
	d := Decide(g.limits, all, EntryOf(app), now)
	if d.Admitted {
		g.reserved[EntryOf(app).Key] = now
	}
	return d
}
