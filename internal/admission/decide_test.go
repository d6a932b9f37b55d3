package admission

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func key(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

func running(ns, name string) Entry { return Entry{Key: key(ns, name), Progressing: true} }

func queued(ns, name string, at time.Duration) Entry {
	return Entry{Key: key(ns, name), QueuedAt: t0.Add(at)}
}

func TestDecide(t *testing.T) {
	cases := []struct {
		name     string
		lim      Limits
		all      []Entry
		me       Entry
		admitted bool
		scope    string
		position int
	}{
		{name: "no cap", lim: Limits{}, all: []Entry{running("a", "x"), running("a", "y")}, me: queued("a", "me", 0), admitted: true},
		{name: "free slot", lim: Limits{Total: 2}, all: []Entry{running("a", "x")}, me: queued("a", "me", 0), admitted: true},
		{name: "operator full", lim: Limits{Total: 1}, all: []Entry{running("a", "x")}, me: queued("b", "me", 0), scope: "operator", position: 1},
		{name: "earlier waiter goes first", lim: Limits{Total: 2}, all: []Entry{running("a", "x"), queued("a", "early", -time.Second)}, me: queued("b", "me", 0), scope: "operator", position: 1},
		{name: "later waiter does not hold back", lim: Limits{Total: 2}, all: []Entry{running("a", "x"), queued("a", "late", time.Second)}, me: queued("b", "me", 0), admitted: true},
		{name: "same time: by namespace and name", lim: Limits{Total: 2}, all: []Entry{running("a", "x"), queued("a", "z", 0)}, me: queued("b", "me", 0), scope: "operator", position: 1},
		{name: "new app queues behind everyone waiting", lim: Limits{Total: 3}, all: []Entry{running("a", "x"), queued("a", "w1", -2*time.Second), queued("c", "w2", -time.Second), queued("d", "w3", -time.Millisecond)}, me: Entry{Key: key("b", "me")}, scope: "operator", position: 2},
		{name: "namespace full", lim: Limits{PerNamespace: 1}, all: []Entry{running("a", "x"), running("b", "y")}, me: queued("a", "me", 0), scope: "namespace", position: 1},
		{name: "other namespace has room", lim: Limits{PerNamespace: 1}, all: []Entry{running("a", "x")}, me: queued("b", "me", 0), admitted: true},
		{name: "waiter of a full namespace does not hold back the operator queue", lim: Limits{Total: 3, PerNamespace: 1},
			all: []Entry{running("a", "x"), queued("a", "early", -time.Second)}, me: queued("b", "me", 0), admitted: true},
		{name: "itself is not counted", lim: Limits{Total: 1}, all: []Entry{queued("a", "me", 0)}, me: queued("a", "me", 0), admitted: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.lim, tc.all, tc.me, t0)
			if d.Admitted != tc.admitted || d.Scope != tc.scope || d.Position != tc.position {
				t.Fatalf("got %+v", d)
			}
		})
	}
}

func app(ns, name, canary string, queuedAt *metav1.Time) *v1.CanaryApp {
	a := &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	a.Status.CanaryImage, a.Status.QueuedAt = canary, queuedAt
	return a
}

func TestGateReservesAndWakes(t *testing.T) {
	g := NewGate(Limits{Total: 1})
	var woken []types.NamespacedName
	synced := false
	g.Start(func() bool { return synced }, func(k types.NamespacedName) { woken = append(woken, k) })
	g.Observe(app("a", "x", "", nil))
	g.Observe(app("a", "y", "", nil))
	if g.Admit(app("a", "x", "", nil), t0).Admitted {
		t.Fatal("admitted before the informer synced")
	}
	synced = true
	if !g.Admit(app("a", "x", "", nil), t0).Admitted {
		t.Fatal("x not admitted")
	}
	// x's status does not show its canary yet; its reservation holds y.
	if d := g.Admit(app("a", "y", "", nil), t0); d.Admitted {
		t.Fatal("y admitted past the cap")
	}
	at := metav1.NewTime(t0)
	g.Observe(app("a", "y", "", &at))
	g.Observe(app("a", "x", "x:v2", nil))
	if len(woken) != 0 {
		t.Fatalf("woken %v", woken)
	}
	// x's canary ends: y is next.
	g.Observe(app("a", "x", "", nil))
	if len(woken) != 1 || woken[0] != key("a", "y") {
		t.Fatalf("woken %v", woken)
	}
	if !g.Admit(app("a", "y", "", &at), t0.Add(time.Second)).Admitted {
		t.Fatal("y not admitted after x ended")
	}
	// A reservation whose canary never showed expires (y's image went
	// back, say, and its reconcile failed to say so).
	g.Observe(app("a", "y", "", nil))
	if g.Admit(app("a", "z", "", nil), t0.Add(time.Second)).Admitted {
		t.Fatal("z admitted while y holds the slot")
	}
	if !g.Admit(app("a", "z", "", nil), t0.Add(time.Second+reservationTTL)).Admitted {
		t.Fatal("y's reservation did not expire")
	}
	g.Forget(key("a", "z"))
}
