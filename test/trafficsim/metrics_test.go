package main

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads the metric families served by h, as Prometheus would.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the exposition: %v", err)
	}
	return families
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestMetricsExposeIstioRequestsTotal(t *testing.T) {
	metrics := NewMetrics()
	deps := deployments(
		deployment(app, "atzedevries/go-status-code-server:v1", 2),
		deployment(app+"-canary", "atzedevries/go-status-code-server:v3", 1),
	)
	split := BuildSplit(app, ns, weighted(50, 50), deps)
	tr := NewTraffic(20, 0.2, NewResponder([]string{"v3"}), metrics, 3)
	const n = 2000
	for range n {
		tr.Request(split)
	}
	tr.Request(BuildSplit("not-yet", ns, nil, nil))

	families := scrape(t, metrics.Handler())
	fam := families["istio_requests_total"]
	if fam == nil || fam.GetType() != dto.MetricType_COUNTER {
		t.Fatalf("istio_requests_total missing or not a counter: %v", fam)
	}
	fixed := map[string]string{
		"reporter":                       "destination",
		"source_workload":                "trafficsim",
		"request_protocol":               "http",
		"destination_service_name":       app,
		"destination_service_namespace":  ns,
		"destination_workload_namespace": ns,
		"destination_service":            app + ".default.svc.cluster.local",
		"destination_app":                app,
	}
	// The original operator query's selector.
	matchesQuery := func(l map[string]string) bool {
		return l["destination_service_name"] == "canaryapp-sample" && regexp.MustCompile(`^(?:5.*)$`).MatchString(l["response_code"])
	}
	var total, selected float64
	seen := map[string]bool{}
	for _, m := range fam.GetMetric() {
		l := labels(m)
		for k, v := range fixed {
			if l[k] != v {
				t.Errorf("series %v: label %s = %q, want %q", l, k, l[k], v)
			}
		}
		want := map[string]string{app: "v1", app + "-canary": "v3"}[l["destination_workload"]]
		if want == "" || l["destination_version"] != want {
			t.Errorf("series %v: destination_workload and destination_version do not name a subset's Deployment and image tag", l)
		}
		v := m.GetCounter().GetValue()
		total += v
		if matchesQuery(l) {
			selected += v
			if l["destination_version"] != "v3" {
				t.Errorf("the query selects a series of %s: %v", l["destination_version"], l)
			}
		}
		seen[l["destination_version"]+"/"+l["response_code"]] = true
	}
	if total != n {
		t.Errorf("istio_requests_total sums to %v, want %d", total, n)
	}
	// Half of the traffic to v3, a fifth of that to /nothello: about 200.
	if selected < 150 || selected > 250 {
		t.Errorf("the query selects %v errors, want about 200", selected)
	}
	for _, s := range []string{"v1/200", "v3/200", "v3/500"} {
		if !seen[s] {
			t.Errorf("no series for version/code %s; have %v", s, seen)
		}
	}
	if seen["v1/500"] {
		t.Error("v1 answered 500")
	}

	unrouted := families["trafficsim_requests_unrouted_total"]
	if unrouted == nil || len(unrouted.GetMetric()) != 1 {
		t.Fatalf("trafficsim_requests_unrouted_total: %v", unrouted)
	}
	if l := labels(unrouted.GetMetric()[0]); l["app"] != "not-yet" || l["reason"] != UnroutedNoVirtualService {
		t.Errorf("unrouted labels = %v", l)
	}
}

func TestMetricsServeNothingElse(t *testing.T) {
	families := scrape(t, NewMetrics().Handler())
	for name := range families {
		t.Errorf("a fresh simulator exposes %s; a data plane stand-in must serve only request counters", name)
	}
}
