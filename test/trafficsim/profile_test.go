package main

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// TestProfilesPerVersion: each version answers at its own exact error rate
// and latency, and the latency histogram carries Istio's labels per
// workload, so that the operator's built-in metrics can tell the canary's
// pods from the primary's.
func TestProfilesPerVersion(t *testing.T) {
	metrics := NewMetrics()
	deps := deployments(
		deployment(app, "atzedevries/go-status-code-server:err20", 2),
		deployment(app+"-canary", "atzedevries/go-status-code-server:slow", 1),
	)
	split := BuildSplit(app, ns, weighted(50, 50), deps)
	profiles, err := NewProfiles(20*time.Millisecond, []string{"slow=800ms"}, []string{"err20=0.2", "slow=0"})
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTraffic(20, 0, NewResponder(nil), metrics, 3)
	tr.Profiles = profiles
	for range 2000 {
		tr.Request(split)
	}
	families := scrape(t, metrics.Handler())
	codes := map[string]map[string]float64{}
	for _, m := range families["istio_requests_total"].GetMetric() {
		l := labels(m)
		if codes[l["destination_workload"]] == nil {
			codes[l["destination_workload"]] = map[string]float64{}
		}
		codes[l["destination_workload"]][l["response_code"]] += m.GetCounter().GetValue()
	}
	primary, canary := codes[app], codes[app+"-canary"]
	total := primary["200"] + primary["500"]
	if rate := primary["500"] / total; rate < 0.199 || rate > 0.201 || total < 900 {
		t.Errorf("primary error rate %v over %v requests, want exactly 0.2", rate, total)
	}
	if canary["500"] != 0 || canary["200"] < 900 {
		t.Errorf("canary codes %v, want only 200s", canary)
	}

	fam := families["istio_request_duration_milliseconds"]
	if fam == nil || fam.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("istio_request_duration_milliseconds missing or not a histogram: %v", fam)
	}
	sums := map[string]float64{}
	counts := map[string]uint64{}
	for _, m := range fam.GetMetric() {
		l := labels(m)
		if l["reporter"] != "destination" || l["destination_workload_namespace"] != ns {
			t.Errorf("labels %v", l)
		}
		sums[l["destination_workload"]] += m.GetHistogram().GetSampleSum()
		counts[l["destination_workload"]] += m.GetHistogram().GetSampleCount()
	}
	if avg := sums[app+"-canary"] / float64(counts[app+"-canary"]); avg != 800 {
		t.Errorf("canary latency %v ms, want 800", avg)
	}
	if avg := sums[app] / float64(counts[app]); avg != 20 {
		t.Errorf("primary latency %v ms, want 20", avg)
	}
}

func TestProfilesRefuseBadFlags(t *testing.T) {
	for _, tc := range []struct{ lat, errs []string }{
		{[]string{"slow"}, nil}, {[]string{"=1s"}, nil}, {[]string{"v=-1s"}, nil},
		{nil, []string{"v=2"}}, {nil, []string{"v=x"}}, {nil, []string{"v"}},
	} {
		if _, err := NewProfiles(0, tc.lat, tc.errs); err == nil {
			t.Errorf("NewProfiles(%v, %v) accepted", tc.lat, tc.errs)
		}
	}
}
