package shard

import (
	"context"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// staleMembers is how many lease durations a dead member's Lease stays
// before a replica removes it.
const staleMembers = 5

// renewMember creates or renews this replica's member Lease.
func (m *Manager) renewMember(ctx context.Context, now time.Time) error {
	l := &coordinationv1.Lease{}
	err := m.opts.Client.Get(ctx, client.ObjectKey{Namespace: m.opts.Namespace, Name: m.memberLease()}, l)
	if isGone(err) {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: m.opts.Namespace, Name: m.memberLease(), Labels: map[string]string{LabelMember: "true"}},
			Spec: m.leaseSpec(now, nil, 0)}
		return m.opts.Client.Create(ctx, l)
	}
	if err != nil {
		return err
	}
	l.Spec = m.leaseSpec(now, l.Spec.AcquireTime, 0)
	return m.opts.Client.Update(ctx, l)
}

// leases lists the Leases of the namespace: the members' and the shards'.
// Every shard Lease is looked at each round, so a replica that dies is
// seen unrenewed by the others from its last renew on, and its shards are
// taken one lease duration after it, together with its membership.
func (m *Manager) leases(ctx context.Context, now time.Time) (members map[string]*coordinationv1.Lease, shards map[string]*coordinationv1.Lease, err error) {
	var list coordinationv1.LeaseList
	if err := m.opts.Client.List(ctx, &list, client.InNamespace(m.opts.Namespace)); err != nil {
		return nil, nil, err
	}
	members, shards = map[string]*coordinationv1.Lease{}, map[string]*coordinationv1.Lease{}
	for i := range list.Items {
		l := &list.Items[i]
		switch {
		case l.Labels[LabelMember] == "true":
			members[l.Name] = l
		case strings.HasPrefix(l.Name, m.opts.Prefix+"-shard-"):
			shards[l.Name] = l
			m.expired(l.Name, l, now) // observes it
		}
	}
	return members, shards, nil
}

// liveMembers are the members whose Leases are renewed (this one always
// counts); Leases of members long dead are removed.
func (m *Manager) liveMembers(ctx context.Context, leases map[string]*coordinationv1.Lease, now time.Time) []string {
	members := []string{m.opts.Identity}
	for name, l := range leases {
		holder := ptrString(l.Spec.HolderIdentity)
		if holder == "" || holder == m.opts.Identity {
			continue
		}
		if !m.expired(name, l, now) {
			members = append(members, holder)
			continue
		}
		if m.deadFor(name, now) > staleMembers*m.opts.LeaseDuration {
			_ = m.opts.Client.Delete(ctx, l, client.Preconditions{ResourceVersion: &l.ResourceVersion})
		}
	}
	members = sorted(members)
	m.mu.Lock()
	changed := !equal(m.members, members)
	m.members = members
	m.mu.Unlock()
	if changed {
		ctrl.LoggerFrom(ctx).Info("Members changed", "members", members, "shards", len(Assigned(m.opts.Identity, members, m.opts.Shards)))
	}
	return members
}

func (m *Manager) deadFor(name string, now time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return now.Sub(m.seen[name].at)
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// acquireOrRenew renews a shard this replica holds, or takes one it
// should hold once the Lease is free: released, expired, or its own from
// before a restart. A held shard whose Lease names another holder is lost.
func (m *Manager) acquireOrRenew(ctx context.Context, s int, listed *coordinationv1.Lease, now time.Time) {
	if m.renewHeld(ctx, s, now) {
		return
	}
	key := client.ObjectKey{Namespace: m.opts.Namespace, Name: m.shardLease(s)}
	l := listed.DeepCopy()
	if m.holds(s) || l == nil {
		// The fast renew failed, or the list predates the Lease: read it.
		l = &coordinationv1.Lease{}
		if err := m.opts.Client.Get(ctx, key, l); isGone(err) {
			l = nil
		} else if err != nil {
			ctrl.LoggerFrom(ctx).V(1).Info("Could not read a shard Lease", "shard", s, "error", err.Error())
			return
		}
	}
	if l == nil {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}, Spec: m.leaseSpec(now, nil, 0)}
		if err := m.opts.Client.Create(ctx, l); err == nil {
			m.take(ctx, s, l, now)
		}
		return
	}
	holder := ptrString(l.Spec.HolderIdentity)
	free := holder == "" || holder == m.opts.Identity || m.expired(key.Name, l, now)
	if !free {
		if m.holds(s) {
			m.lose(ctx, s, "held by "+holder)
		}
		return
	}
	transitions := int32(0)
	if l.Spec.LeaseTransitions != nil {
		transitions = *l.Spec.LeaseTransitions
	}
	acquired := l.Spec.AcquireTime
	if holder != m.opts.Identity {
		transitions, acquired = transitions+1, nil
	}
	l.Spec = m.leaseSpec(now, acquired, transitions)
	if err := m.opts.Client.Update(ctx, l); err == nil {
		m.take(ctx, s, l, now)
	}
}

// renewHeld renews a held shard's Lease from the copy this replica wrote
// last, without reading it; false when it must be read (not held, or the
// Lease changed).
func (m *Manager) renewHeld(ctx context.Context, s int, now time.Time) bool {
	m.mu.Lock()
	h := m.held[s]
	var l *coordinationv1.Lease
	if h != nil {
		l = h.lease.DeepCopy()
	}
	m.mu.Unlock()
	if l == nil {
		return false
	}
	l.Spec = m.leaseSpec(now, l.Spec.AcquireTime, derefInt(l.Spec.LeaseTransitions))
	if err := m.opts.Client.Update(ctx, l); err != nil {
		return false
	}
	m.mu.Lock()
	h.lease, h.renewed = l, now
	m.mu.Unlock()
	return true
}

func derefInt(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// take records a shard this replica now holds and tells the listeners.
func (m *Manager) take(ctx context.Context, s int, l *coordinationv1.Lease, now time.Time) {
	m.mu.Lock()
	h, ok := m.held[s]
	if !ok {
		hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		h = &held{ctx: hctx, cancel: cancel}
		m.held[s] = h
	}
	h.lease, h.renewed = l, now
	m.mu.Unlock()
	if ok {
		return
	}
	ctrl.LoggerFrom(ctx).Info("Acquired shard", "shard", s, "lease", l.Name)
	for _, f := range m.listeners {
		go f(ctx, s)
	}
}

// lose forgets a shard at once: its work is cancelled.
func (m *Manager) lose(ctx context.Context, s int, why string) {
	m.mu.Lock()
	h, ok := m.held[s]
	delete(m.held, s)
	m.mu.Unlock()
	if ok {
		h.cancel()
		ctrl.LoggerFrom(ctx).Info("Lost shard", "shard", s, "why", why)
	}
}

// dropExpired gives up the shards not renewed within the renew deadline,
// before any other replica may take them.
func (m *Manager) dropExpired(ctx context.Context, now time.Time) {
	m.mu.Lock()
	var late []int
	for s, h := range m.held {
		if now.Sub(h.renewed) > m.opts.RenewDeadline {
			late = append(late, s)
		}
	}
	m.mu.Unlock()
	for _, s := range late {
		m.lose(ctx, s, "not renewed within the renew deadline")
	}
}

// handOver drains the held shards that belong to another member now and
// releases each once no reconcile of it runs; reconciles that run past the
// renew deadline are cancelled.
func (m *Manager) handOver(ctx context.Context, want map[int]bool, now time.Time) {
	m.mu.Lock()
	var idle []int
	for s, h := range m.held {
		if want[s] {
			h.draining = false
			continue
		}
		if !h.draining {
			h.draining, h.drainingSince = true, now
		}
		if now.Sub(h.drainingSince) > m.opts.RenewDeadline/2 {
			h.cancel()
		}
		if h.inflight == 0 {
			idle = append(idle, s)
		}
	}
	m.mu.Unlock()
	for _, s := range idle {
		m.release(ctx, s)
	}
}

// release hands a drained shard's Lease back (no holder), so that its new
// owner takes it at once instead of after a lease duration.
func (m *Manager) release(ctx context.Context, s int) {
	m.mu.Lock()
	h := m.held[s]
	delete(m.held, s)
	m.mu.Unlock()
	if h == nil {
		return
	}
	h.cancel()
	l := h.lease.DeepCopy()
	l.Spec.HolderIdentity = nil
	l.Spec.RenewTime = nil
	if err := m.opts.Client.Update(ctx, l); err != nil {
		ctrl.LoggerFrom(ctx).Info("Could not release a shard Lease; it expires instead", "shard", s, "error", err.Error())
		return
	}
	ctrl.LoggerFrom(ctx).Info("Released shard", "shard", s)
}

// stop hands every shard back when the replica shuts down, after the work
// under way (up to the renew deadline), and removes the member Lease.
func (m *Manager) stop(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, m.opts.RenewDeadline)
	defer cancel()
	m.mu.Lock()
	for _, h := range m.held {
		h.draining = true
	}
	m.mu.Unlock()
	for ctx.Err() == nil {
		busy := false
		m.mu.Lock()
		for _, h := range m.held {
			busy = busy || h.inflight > 0
		}
		m.mu.Unlock()
		if !busy {
			break
		}
		// Shutting down: wait for the reconciles under way, polling, until
		// they end or ctx does.
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, s := range m.Held() {
		m.release(ctx, s)
	}
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: m.opts.Namespace, Name: m.memberLease()}}
	_ = m.opts.Client.Delete(ctx, l)
}
