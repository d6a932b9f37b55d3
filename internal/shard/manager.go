package shard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// LabelMember marks the member Leases of the replicas.
const LabelMember = "canary.atze.io/shard-member"

// Defaults of Options, those of client-go's leader election.
const (
	DefaultShards        = 32
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// Options configure a Manager.
type Options struct {
	// Client reads and writes the Leases, uncached. Required.
	Client client.Client
	// Namespace of the Leases. Required.
	Namespace string
	// Identity of this replica (its Pod name); unique among the replicas.
	// Required.
	Identity string
	// Prefix of the Lease names: <prefix>-shard-<n>, <prefix>-member-<identity>.
	Prefix string
	// Shards is how many shards the apps are split into; every replica
	// must use the same number. Default DefaultShards.
	Shards int
	// LeaseDuration is how long a Lease nobody renews keeps others away;
	// RenewDeadline is how long this replica goes on working on a shard
	// without a successful renew (less than LeaseDuration, so it stops
	// before anyone else may start); RetryPeriod is how often Leases are
	// renewed and members looked at.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if o.Client == nil || o.Namespace == "" || o.Identity == "" {
		return o, errors.New("shard: Client, Namespace and Identity are required")
	}
	if o.Prefix == "" {
		o.Prefix = "canaryop"
	}
	if o.Shards <= 0 {
		o.Shards = DefaultShards
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.RenewDeadline <= 0 {
		o.RenewDeadline = DefaultRenewDeadline
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = DefaultRetryPeriod
	}
	if o.RenewDeadline >= o.LeaseDuration || o.RetryPeriod >= o.RenewDeadline {
		return o, fmt.Errorf("shard: need retry period (%s) < renew deadline (%s) < lease duration (%s)", o.RetryPeriod, o.RenewDeadline, o.LeaseDuration)
	}
	return o, nil
}

// Manager holds this replica's shard Leases. It is a manager.Runnable that
// runs on every replica (no leader election).
type Manager struct {
	opts Options

	mu   sync.Mutex
	held map[int]*held
	// seen is, per Lease name, its last record and when this replica saw
	// it change: a Lease is expired when its record has not changed for a
	// lease duration of this replica's own clock (as in client-go's leader
	// election), so clocks need not agree.
	seen      map[string]seenRecord
	listeners []func(ctx context.Context, shard int)
	members   []string
}

// held is a shard this replica holds.
type held struct {
	lease   *coordinationv1.Lease
	renewed time.Time
	// ctx ends when the shard is given up; reconciles of its apps run
	// under it.
	ctx    context.Context
	cancel context.CancelFunc
	// draining: the shard goes to another member once no reconcile of it
	// runs; no new one starts.
	draining      bool
	drainingSince time.Time
	inflight      int
}

type seenRecord struct {
	holder, renew string
	at            time.Time
}

// New returns a Manager.
func New(opts Options) (*Manager, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Manager{opts: opts, held: map[int]*held{}, seen: map[string]seenRecord{}}, nil
}

// Shards is the number of shards.
func (m *Manager) Shards() int { return m.opts.Shards }

// OnAcquire registers f, called (in a goroutine of its own, with the
// Manager's context) with each shard
// this replica comes to hold, so that the reconcilers look at its apps:
// their events went to another replica until now. Call before Start.
func (m *Manager) OnAcquire(f func(ctx context.Context, shard int)) {
	m.listeners = append(m.listeners, f)
}

// NeedLeaderElection is false: every replica holds shards.
func (m *Manager) NeedLeaderElection() bool { return false }

// Enter reports whether this replica may work on the app now; if so it
// returns a context that ends when the shard is lost, and done, which the
// caller must call when the work ends. A shard that is handed over waits
// for the work under way before its Lease is released.
func (m *Manager) Enter(ctx context.Context, namespace, name string) (context.Context, func(), bool) {
	s := Of(namespace, name, m.opts.Shards)
	m.mu.Lock()
	h := m.held[s]
	if h == nil || h.draining || time.Since(h.renewed) > m.opts.RenewDeadline {
		m.mu.Unlock()
		return nil, nil, false
	}
	h.inflight++
	m.mu.Unlock()
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(h.ctx, cancel)
	return wctx, func() {
		stop()
		cancel()
		m.mu.Lock()
		h.inflight--
		m.mu.Unlock()
	}, true
}

// Held lists the shards this replica holds, for logs and tests.
func (m *Manager) Held() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int
	for s := range m.opts.Shards {
		if _, ok := m.held[s]; ok {
			out = append(out, s)
		}
	}
	return out
}

// Start keeps the Leases until ctx ends, then hands every shard back.
func (m *Manager) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("shard").WithValues("identity", m.opts.Identity)
	ctx = ctrl.LoggerInto(ctx, log)
	log.Info("Sharding CanaryApps on Leases", "shards", m.opts.Shards, "namespace", m.opts.Namespace, "leaseDuration", m.opts.LeaseDuration)
	t := time.NewTicker(m.opts.RetryPeriod)
	defer t.Stop()
	for {
		m.tick(ctx)
		select {
		case <-ctx.Done():
			m.stop(ctrl.LoggerInto(context.WithoutCancel(ctx), log))
			return nil
		case <-t.C:
		}
	}
}

// tick is one round: announce this member, see who is alive, give up the
// shards that belong to others, take or renew this member's own.
func (m *Manager) tick(ctx context.Context) {
	now := time.Now()
	if err := m.renewMember(ctx, now); err != nil {
		ctrl.LoggerFrom(ctx).Info("Could not renew the member Lease", "error", err.Error())
	}
	memberLeases, shardLeases, err := m.leases(ctx, now)
	members := m.lastMembers()
	if err != nil {
		ctrl.LoggerFrom(ctx).Info("Could not list the Leases", "error", err.Error())
	} else {
		members = m.liveMembers(ctx, memberLeases, now)
	}
	want := map[int]bool{}
	for _, s := range Assigned(m.opts.Identity, members, m.opts.Shards) {
		want[s] = true
	}
	if err != nil {
		// Without a fresh view, keep what is held and take nothing.
		want = map[int]bool{}
		for _, s := range m.Held() {
			want[s] = true
		}
	}
	m.handOver(ctx, want, now)
	for s := range m.opts.Shards {
		if (want[s] && err == nil) || m.holds(s) {
			m.acquireOrRenew(ctx, s, shardLeases[m.shardLease(s)], now)
		}
	}
	m.dropExpired(ctx, time.Now())
}

func (m *Manager) holds(s int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.held[s]
	return ok
}

func (m *Manager) lastMembers() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.members
}

func (m *Manager) shardLease(s int) string { return fmt.Sprintf("%s-shard-%d", m.opts.Prefix, s) }

func (m *Manager) memberLease() string {
	return m.opts.Prefix + "-member-" + strings.ToLower(m.opts.Identity)
}

// expired reports whether a Lease with this record has gone unrenewed for
// a lease duration, as this replica saw it.
func (m *Manager) expired(name string, l *coordinationv1.Lease, now time.Time) bool {
	rec := seenRecord{holder: ptrString(l.Spec.HolderIdentity)}
	if l.Spec.RenewTime != nil {
		rec.renew = l.Spec.RenewTime.UTC().Format(time.RFC3339Nano)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	last, ok := m.seen[name]
	if !ok || last.holder != rec.holder || last.renew != rec.renew {
		rec.at = now
		m.seen[name] = rec
		return false
	}
	d := m.opts.LeaseDuration
	if l.Spec.LeaseDurationSeconds != nil && time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second > d {
		d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	return !now.Before(last.at.Add(d))
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (m *Manager) leaseSpec(now time.Time, acquired *metav1.MicroTime, transitions int32) coordinationv1.LeaseSpec {
	id := m.opts.Identity
	secs := int32(m.opts.LeaseDuration / time.Second)
	renew := metav1.NewMicroTime(now)
	if acquired == nil {
		acquired = &renew
	}
	return coordinationv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: &secs, AcquireTime: acquired, RenewTime: &renew, LeaseTransitions: &transitions}
}

func isGone(err error) bool { return apierrors.IsNotFound(err) }
