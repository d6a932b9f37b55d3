package shard

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/atzedevries/canaryop/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

const shards = 12

type replica struct {
	*Manager
	cancel context.CancelFunc
	done   chan struct{}
}

func startReplica(t *testing.T, ns, id string) *replica {
	t.Helper()
	m, err := New(Options{Client: env.Client, Namespace: ns, Identity: id, Shards: shards,
		LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), testLogger(t)))
	r := &replica{Manager: m, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); _ = m.Start(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *replica) stop() { r.cancel(); <-r.done }

func testLogger(t *testing.T) logr.Logger {
	return funcr.New(func(prefix, args string) { t.Log(prefix, args) }, funcr.Options{})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 300 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

// partition reports whether the replicas hold every shard exactly once.
func partition(rs ...*replica) bool {
	var all []int
	for _, r := range rs {
		all = append(all, r.Held()...)
	}
	slices.Sort(all)
	return len(all) == shards && len(slices.Compact(all)) == shards
}

// appIn finds an app name that falls into shard s.
func appIn(s int) string {
	for i := 0; ; i++ {
		if name := fmt.Sprintf("app-%d", i); Of("team", name, shards) == s {
			return name
		}
	}
}

func TestReplicasShareTheShards(t *testing.T) {
	ns := env.NewNamespace(t)
	a := startReplica(t, ns, "op-a")
	eventually(t, "op-a holding every shard", func() bool { return partition(a) })
	b := startReplica(t, ns, "op-b")
	c := startReplica(t, ns, "op-c")
	eventually(t, "three replicas sharing the shards", func() bool {
		return partition(a, b, c) && len(a.Held()) > 0 && len(b.Held()) > 0 && len(c.Held()) > 0
	})
	for _, r := range []*replica{a, b, c} {
		want := Assigned(r.opts.Identity, []string{"op-a", "op-b", "op-c"}, shards)
		if got := r.Held(); !slices.Equal(got, want) {
			t.Fatalf("%s holds %v, owns %v", r.opts.Identity, got, want)
		}
	}
	// Each replica works only on the apps of its shards.
	for s := range shards {
		n := 0
		for _, r := range []*replica{a, b, c} {
			if _, done, ok := r.Enter(context.Background(), "team", appIn(s)); ok {
				n++
				done()
			}
		}
		if n != 1 {
			t.Fatalf("shard %d entered by %d replicas", s, n)
		}
	}
	// A replica that stops hands its shards back; the others take them.
	b.stop()
	eventually(t, "two replicas sharing the shards", func() bool { return partition(a, c) })
}

// TestHandOverWaitsForWorkUnderWay: a shard that moves to a joining
// replica is released only after the reconcile of its app that runs ends,
// so no app is worked on by two replicas at once.
func TestHandOverWaitsForWorkUnderWay(t *testing.T) {
	ns := env.NewNamespace(t)
	a := startReplica(t, ns, "op-a")
	eventually(t, "op-a holding every shard", func() bool { return partition(a) })
	moving := Assigned("op-b", []string{"op-a", "op-b"}, shards)
	if len(moving) == 0 {
		t.Fatal("op-b would own nothing")
	}
	ctx, done, ok := a.Enter(context.Background(), "team", appIn(moving[0]))
	if !ok {
		t.Fatal("op-a cannot enter its own shard")
	}
	b := startReplica(t, ns, "op-b")
	eventually(t, "op-b taking the idle shards", func() bool { return len(b.Held()) == len(moving)-1 })
	time.Sleep(time.Second) // well past a round of both, within the renew deadline
	if slices.Contains(b.Held(), moving[0]) {
		t.Fatal("op-b took a shard whose app op-a is still reconciling")
	}
	if _, _, ok := a.Enter(context.Background(), "team", appIn(moving[0])); ok {
		t.Fatal("op-a started new work on a shard it hands over")
	}
	// Work past half the renew deadline is cancelled, so a hand-over
	// never waits long.
	<-ctx.Done()
	done()
	eventually(t, "op-b taking the last shard", func() bool { return slices.Contains(b.Held(), moving[0]) })
	eventually(t, "a partition", func() bool { return partition(a, b) })
}
