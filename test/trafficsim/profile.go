package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Profiles are how each image version behaves beyond the original demo's
// /nothello failures: its latency and a share of requests it answers with
// 500 whatever the path. Errors come at an exact rate (every request that
// brings a version's count of errors below rate×requests fails), not by
// chance, so that two versions with the same rate show the same rate in
// Prometheus and a comparison of them is not a coin toss.
type Profiles struct {
	// Latency is the default answer time.
	Latency time.Duration
	// Latencies and ErrorRates are per version (image tag).
	Latencies  map[string]time.Duration
	ErrorRates map[string]float64

	answered map[string]int
	failed   map[string]int
}

// NewProfiles parses "version=duration" and "version=rate" lists.
func NewProfiles(latency time.Duration, latencies, errorRates []string) (*Profiles, error) {
	p := &Profiles{Latency: latency, Latencies: map[string]time.Duration{}, ErrorRates: map[string]float64{},
		answered: map[string]int{}, failed: map[string]int{}}
	for _, kv := range latencies {
		v, d, ok := strings.Cut(kv, "=")
		dur, err := time.ParseDuration(d)
		if !ok || v == "" || err != nil || dur < 0 {
			return nil, fmt.Errorf("--version-latency %q: want version=duration, such as v5=800ms", kv)
		}
		p.Latencies[v] = dur
	}
	for _, kv := range errorRates {
		v, r, ok := strings.Cut(kv, "=")
		rate, err := strconv.ParseFloat(r, 64)
		if !ok || v == "" || err != nil || rate < 0 || rate > 1 {
			return nil, fmt.Errorf("--version-error-rate %q: want version=rate with rate in [0, 1], such as v6=0.1", kv)
		}
		p.ErrorRates[v] = rate
	}
	return p, nil
}

// Answer turns the demo's code for version into the profile's: a 200 is a
// 500 when the version's error count is behind its rate. It returns the
// code and the latency.
func (p *Profiles) Answer(version string, code int) (int, time.Duration) {
	if p == nil {
		return code, 0
	}
	latency := p.Latency
	if d, ok := p.Latencies[version]; ok {
		latency = d
	}
	p.answered[version]++
	if code == 200 {
		if rate := p.ErrorRates[version]; rate > 0 && float64(p.failed[version]+1) <= rate*float64(p.answered[version]) {
			p.failed[version]++
			code = 500
		}
	}
	return code, latency
}
