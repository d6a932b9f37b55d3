// Package admission caps how many canaries progress at once, in the whole
// operator and per namespace, and queues the new images it holds back in a
// stable order: by when they were first held back (status.queuedAt), then
// by namespace and name. Decide is the pure rule; Gate keeps what it needs
// from the CanaryApp informer and wakes the next app in line when a canary
// ends. Only the start of a canary is gated: a canary that runs (and its
// rollback) never waits for the cap.
package admission

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Limits are the admin's caps; zero means no cap.
type Limits struct {
	// Total bounds the canaries progressing at once in the cluster.
	Total int
	// PerNamespace bounds them in each namespace.
	PerNamespace int
}

// Enabled reports whether any cap is set.
func (l Limits) Enabled() bool { return l.Total > 0 || l.PerNamespace > 0 }

// Entry is one CanaryApp as the cap sees it.
type Entry struct {
	Key types.NamespacedName
	// Progressing: a canary runs (status.canaryImage is set), or the gate
	// admitted one that status does not show yet.
	Progressing bool
	// QueuedAt is when the app was first held back; zero when it does not
	// wait.
	QueuedAt time.Time
}

func (e Entry) waiting() bool { return !e.Progressing && !e.QueuedAt.IsZero() }

// before orders the queue: earliest queuedAt, then namespace and name.
func before(a, b Entry) int {
	if c := a.QueuedAt.Compare(b.QueuedAt); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Key.Namespace, b.Key.Namespace); c != 0 {
		return c
	}
	return cmp.Compare(a.Key.Name, b.Key.Name)
}

// Decision says whether an app may start its canary now, and if not, why.
type Decision struct {
	Admitted bool
	// Scope is the cap that holds the app back: "operator" or "namespace".
	Scope string
	// Progressing and Limit describe that cap; Position is the app's place
	// in its queue (1 is next).
	Progressing, Limit, Position int
}

// Message says why an app waits, for its Progressing condition.
func (d Decision) Message(namespace string) string {
	where := "in the operator"
	if d.Scope == "namespace" {
		where = "in namespace " + namespace
	}
	return fmt.Sprintf("waiting for a free slot: %d of %d canaries progressing %s; number %d in line", d.Progressing, d.Limit, where, d.Position)
}

// Decide is whether me (waiting since me.QueuedAt, or from now on when zero)
// may start its canary, given every app the cap counts. An app is admitted
// when a cap's free slots reach down to its place in that cap's queue;
// apps ahead of it in the operator's queue count only where their own
// namespace has room, so a full namespace does not hold back the others.
func Decide(lim Limits, all []Entry, me Entry, now time.Time) Decision {
	if me.QueuedAt.IsZero() {
		me.QueuedAt = now
	}
	total, perNS := 0, map[string]int{}
	var waiting []Entry
	for _, e := range all {
		if e.Key == me.Key {
			continue
		}
		if e.Progressing {
			total++
			perNS[e.Key.Namespace]++
		} else if e.waiting() && before(e, me) < 0 {
			waiting = append(waiting, e)
		}
	}
	slices.SortFunc(waiting, before)
	if lim.PerNamespace > 0 {
		ahead := 0
		for _, e := range waiting {
			if e.Key.Namespace == me.Key.Namespace {
				ahead++
			}
		}
		if n := perNS[me.Key.Namespace]; n+ahead >= lim.PerNamespace {
			return Decision{Scope: "namespace", Progressing: n, Limit: lim.PerNamespace, Position: ahead + 1 - max(lim.PerNamespace-n, 0)}
		}
	}
	if lim.Total > 0 {
		ahead := 0
		for _, e := range waiting {
			if lim.PerNamespace == 0 || perNS[e.Key.Namespace] < lim.PerNamespace {
				ahead++
			}
		}
		if total+ahead >= lim.Total {
			return Decision{Scope: "operator", Progressing: total, Limit: lim.Total, Position: ahead + 1 - max(lim.Total-total, 0)}
		}
	}
	return Decision{Admitted: true}
}
