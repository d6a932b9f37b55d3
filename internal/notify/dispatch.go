package notify

import (
	"context"
	"net/http"
	"sync"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/opmetrics"
)

// Options bound the Dispatcher; zero values take the defaults.
type Options struct {
	// QueueSize bounds the events waiting for one provider (100); an event
	// beyond it is dropped and counted, never waited for.
	QueueSize int
	// Workers per provider (2).
	Workers int
	// Attempts per event (5), with a backoff doubling from MinBackoff (1s)
	// up to MaxBackoff (1m).
	Attempts               int
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one request, answer included (10s).
	Timeout time.Duration
	// MaxResponseBytes is read of an answer (and thrown away) before the
	// connection is closed (64KiB).
	MaxResponseBytes int64
	// Transport sends the requests; a clone of http.DefaultTransport when
	// nil.
	Transport http.RoundTripper
}

func (o *Options) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.QueueSize, 100)
	def(&o.Workers, 2)
	def(&o.Attempts, 5)
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur(&o.MinBackoff, time.Second)
	defDur(&o.MaxBackoff, time.Minute)
	defDur(&o.Timeout, 10*time.Second)
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 64 << 10
	}
}

// Dispatcher is the Notifier that delivers to the admin's providers. It is
// a manager Runnable: its goroutines run between Start and the end of the
// manager's context (on the leader only).
type Dispatcher struct {
	store   *Store
	formats map[string]Format
	opts    Options
	client  *http.Client
	// intake holds events Notify accepted until the router resolves their
	// providers; Notify never waits for it.
	intake chan job

	mu     sync.Mutex
	queues map[string]chan delivery
	wg     sync.WaitGroup
}

type job struct {
	targets []Target
	event   Event
}

// Target is one provider (or webhook target) to deliver an event to. Body,
// when set, is sent as it is instead of the provider type's Format of the
// event.
type Target struct {
	Provider string
	Body     []byte
}

type delivery struct {
	endpoint Endpoint
	format   Format
	event    Event
	body     []byte
}

var _ Notifier = (*Dispatcher)(nil)

// NewDispatcher delivers to the providers store finds, in the formats
// given by provider type.
func NewDispatcher(store *Store, formats map[string]Format, o Options) *Dispatcher {
	o.defaults()
	tr := o.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = o.Timeout
		tr = t
	}
	return &Dispatcher{
		store: store, formats: formats, opts: o,
		client: NewHTTPClient(tr),
		intake: make(chan job, 10*o.QueueSize),
		queues: map[string]chan delivery{},
	}
}

// NewHTTPClient is the client of every call to an admin's endpoint: it
// follows no redirect, which would send the request to an address the
// admin did not name.
func NewHTTPClient(tr http.RoundTripper) *http.Client {
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// Notify queues e for app's subscribed providers without waiting.
func (d *Dispatcher) Notify(ctx context.Context, app *v1.CanaryApp, e Event) {
	var targets []Target
	for _, n := range app.Spec.Notifications {
		if Subscribed(n, e.Kind) {
			targets = append(targets, Target{Provider: n.Provider})
		}
	}
	d.Send(ctx, e, targets)
}

// Send queues e for targets without waiting; each provider is resolved for
// e's namespace when the event is routed.
func (d *Dispatcher) Send(ctx context.Context, e Event, targets []Target) {
	if len(targets) == 0 {
		return
	}
	select {
	case d.intake <- job{targets: targets, event: e}:
	default:
		for _, t := range targets {
			opmetrics.Notification(e.Namespace, e.Name, t.Provider, string(e.Kind), "dropped")
		}
		ctrl.LoggerFrom(ctx).Info("Notification dropped: the queue is full", "event", e.Kind)
	}
}

// Check reports whether app may use every provider it names.
func (d *Dispatcher) Check(ctx context.Context, app *v1.CanaryApp) error {
	return d.store.Check(ctx, app)
}

// NeedLeaderElection: only the leader notifies, so each transition is
// sent once.
func (d *Dispatcher) NeedLeaderElection() bool { return true }

// Start routes queued events to the providers' workers until ctx ends, then
// waits for the workers.
func (d *Dispatcher) Start(ctx context.Context) error {
	defer d.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case j := <-d.intake:
			d.route(ctx, j)
		}
	}
}

// route resolves each subscribed provider for the app's namespace now, so
// a provider the admin narrowed stops receiving at once.
func (d *Dispatcher) route(ctx context.Context, j job) {
	log := ctrl.LoggerFrom(ctx).WithValues("namespace", j.event.Namespace, "name", j.event.Name, "event", j.event.Kind)
	for _, n := range j.targets {
		ep, err := d.store.Get(ctx, n.Provider, j.event.Namespace)
		if err != nil {
			opmetrics.Notification(j.event.Namespace, j.event.Name, n.Provider, string(j.event.Kind), "refused")
			log.V(1).Info("Notification not sent", "provider", n.Provider, "why", err.Error())
			continue
		}
		dl := delivery{endpoint: ep, format: d.formats[ep.Type], event: j.event, body: n.Body}
		select {
		case d.queue(ctx, ep.Name) <- dl:
		default:
			opmetrics.Notification(j.event.Namespace, j.event.Name, n.Provider, string(j.event.Kind), "dropped")
			log.Info("Notification dropped: the provider's queue is full", "provider", n.Provider)
		}
	}
}

// queue returns provider's queue, starting its workers on first use.
func (d *Dispatcher) queue(ctx context.Context, provider string) chan delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	q, ok := d.queues[provider]
	if ok {
		return q
	}
	q = make(chan delivery, d.opts.QueueSize)
	d.queues[provider] = q
	for range d.opts.Workers {
		d.wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case dl := <-q:
					d.deliver(ctx, dl)
				}
			}
		})
	}
	return q
}
