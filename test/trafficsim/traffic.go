package main

import (
	"context"
	"math/rand/v2"
	"net/http"
	"time"
)

// Traffic makes the simulated requests and counts their answers.
type Traffic struct {
	// RPS is the number of requests per second made to each app.
	RPS float64
	// ErrorPathRatio is the share of requests that ask for /nothello.
	ErrorPathRatio float64
	// Responder answers each request.
	Responder Responder
	// Metrics counts the answers.
	Metrics *Metrics
	// TesterRatio is the share of requests that carry TesterHeader, as a
	// tester reaching the canary through spec.traffic.canaryMatch would.
	TesterRatio  float64
	TesterHeader http.Header
	// Profiles add per-version latency and error rates; nil adds none.
	Profiles *Profiles

	rng *rand.Rand
	// owed carries the fraction of a request not yet made, per app, so that
	// the rate is exact over time whatever the tick length.
	owed map[string]float64
}

// NewTraffic returns a Traffic whose random choices follow seed.
func NewTraffic(rps, errorPathRatio float64, responder Responder, metrics *Metrics, seed uint64) *Traffic {
	return &Traffic{
		RPS:            rps,
		ErrorPathRatio: errorPathRatio,
		Responder:      responder,
		Metrics:        metrics,
		rng:            rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		owed:           map[string]float64{},
	}
}

// Result is what happened to one request.
type Result struct {
	Path   string
	Target Target
	// Code is the status code answered; 0 when the request reached no pod.
	Code int
	// Unrouted is why the request reached no pod, or "".
	Unrouted string
}

// Request makes one request to the app of s and counts it.
func (t *Traffic) Request(s Split) Result {
	res := Result{Path: PathHello}
	if t.rng.Float64() < t.ErrorPathRatio {
		res.Path = PathNotHello
	}
	var h http.Header
	if t.TesterRatio > 0 && t.rng.Float64() < t.TesterRatio {
		h = t.TesterHeader
	}
	target, ok := s.PickFor(h, t.rng.Float64())
	switch {
	case !ok && s.Unrouted != "":
		res.Unrouted = s.Unrouted
	case !ok:
		res.Unrouted = UnroutedNoRoute
	case !target.Found:
		res.Unrouted = UnroutedNoDeployment
	case !target.Available:
		res.Unrouted = UnroutedNoAvailablePods
	}
	res.Target = target
	if res.Unrouted != "" {
		t.Metrics.Unrouted(s.App, res.Unrouted)
		return res
	}
	res.Code = t.Responder.Respond(target.Version(), res.Path)
	code, took := t.Profiles.Answer(target.Version(), res.Code)
	res.Code = code
	t.Metrics.Answered(s, target, res.Code)
	t.Metrics.Took(s, target, res.Code, took)
	return res
}

// Step makes the requests due for each app over elapsed time and returns how
// many it made.
func (t *Traffic) Step(splits []Split, elapsed time.Duration) int {
	made := 0
	for _, s := range splits {
		due := t.owed[s.App] + t.RPS*elapsed.Seconds()
		n := int(due)
		t.owed[s.App] = due - float64(n)
		for range n {
			t.Request(s)
		}
		made += n
	}
	return made
}

// Run makes requests every tick, with the splits current at that moment,
// until ctx ends.
func (t *Traffic) Run(ctx context.Context, tick time.Duration, splits func() []Split) {
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C:
			t.Step(splits(), now.Sub(last))
			last = now
		}
	}
}
