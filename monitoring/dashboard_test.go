package monitoring

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/atzedevries/canaryop/internal/opmetrics"
)

var update = flag.Bool("update", false, "rewrite charts/canaryop/files/dashboard.json")

const (
	dashboardFile = "../charts/canaryop/files/dashboard.json"
	rulesFile     = "../charts/canaryop/files/prometheus-rules.yaml"
)

// TestDashboardFileIsGenerated: the chart ships what Dashboard builds.
// make monitoring (go test ./monitoring -run TestDashboardFileIsGenerated -update)
// rewrites it.
func TestDashboardFileIsGenerated(t *testing.T) {
	want, err := Dashboard()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(dashboardFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run `make monitoring`", dashboardFile)
	}
}

// exported are the series names a query may use.
func exported() map[string]bool {
	m := map[string]bool{}
	for _, f := range opmetrics.Families {
		for _, s := range f.Series() {
			m[s] = true
		}
	}
	return m
}

type panelQuery struct{ panel, expr string }

// dashboardQueries reads every PromQL expression of the generated JSON:
// panel targets and label_values() of the variables.
func dashboardQueries(t *testing.T) []panelQuery {
	t.Helper()
	data, err := Dashboard()
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	var out []panelQuery
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			out = append(out, panelQuery{p.Title, q.Expr})
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+), [a-z]+\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(SELECTOR, LABEL)", v.Name, q)
			continue
		}
		out = append(out, panelQuery{"variable " + v.Name, m[1]})
	}
	return out
}

func ruleQueries(t *testing.T) []panelQuery {
	t.Helper()
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var out []panelQuery
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out = append(out, panelQuery{"alert " + r.Alert, r.Expr})
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no rules", rulesFile)
	}
	return out
}

// TestQueriesNameExportedMetrics: every metric a dashboard query or an alert
// rule names is one the operator exports; every exported metric is shown
// or alerted on.
func TestQueriesNameExportedMetrics(t *testing.T) {
	known := exported()
	used := map[string]bool{}
	for _, q := range append(dashboardQueries(t), ruleQueries(t)...) {
		names := metricNames(q.expr)
		if len(names) == 0 {
			t.Errorf("%s: %q names no metric", q.panel, q.expr)
		}
		for _, n := range names {
			if !known[n] {
				t.Errorf("%s: %q names %s, which canaryop does not export (internal/opmetrics.Families)", q.panel, q.expr, n)
			}
			used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")] = true
		}
	}
	for _, f := range opmetrics.Families {
		if !used[f.Name] {
			t.Errorf("%s is neither on the dashboard nor in an alert rule", f.Name)
		}
	}
}

// PromQL words that are not metric names.
var keywords = map[string]bool{"and": true, "or": true, "unless": true, "by": true, "without": true, "on": true,
	"ignoring": true, "group_left": true, "group_right": true, "offset": true, "bool": true, "inf": true, "nan": true}

var (
	stringLit  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	braces     = regexp.MustCompile(`\{[^{}]*\}`)
	brackets   = regexp.MustCompile(`\[[^\[\]]*\]`)
	grouping   = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	numbers    = regexp.MustCompile(`\b[0-9][0-9a-zA-Z._]*`) // numbers and durations (offset 1h)
	identifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges, grouping label
// lists, numbers, function calls and keywords are taken out.
func metricNames(expr string) []string {
	s := stringLit.ReplaceAllString(expr, `""`)
	s = braces.ReplaceAllString(s, " ")
	s = brackets.ReplaceAllString(s, " ")
	s = grouping.ReplaceAllString(s, " ")
	s = numbers.ReplaceAllString(s, " ")
	var names []string
	for _, m := range identifier.FindAllStringSubmatch(s, -1) {
		word := strings.TrimRight(m[0], " \t\n(")
		if m[1] != "" || keywords[strings.ToLower(word)] {
			continue // a function or aggregation, or a keyword
		}
		if !slices.Contains(names, word) {
			names = append(names, word)
		}
	}
	return names
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`canaryop_phase{namespace=~"$namespace", name=~"$app"} == 1`:                                       {"canaryop_phase"},
		`sum by (namespace, name) (increase(canaryop_outcomes_total{outcome="RolledBack"}[10m])) > 0`:      {"canaryop_outcomes_total"},
		`time() - max by (namespace, name) (canaryop_writeback_pending_since_timestamp_seconds) > 15 * 60`: {"canaryop_writeback_pending_since_timestamp_seconds"},
		`histogram_quantile(0.95, sum by (le) (rate(foo_bucket{a="b{c}"}[$__range])))`:                     {"foo_bucket"},
		`a_total / on (namespace) group_left (team) b_info unless ignoring (x) c`:                          {"a_total", "b_info", "c"},
		`absent(canaryop_build_info)`:                    {"canaryop_build_info"},
		`sum(rate(x[5m] offset 1h)) by (job) and bool y`: {"x", "y"},
		`1e3 * z`:                    {"z"},
		`{__name__="only_matchers"}`: nil,
		`increase(canaryop_analysis_checks_total{verdict=~"Pass|Fail"}[10m]) > 0 unless on (namespace) nope`: {"canaryop_analysis_checks_total", "nope"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%q) = %v, want %v", expr, got, want)
		}
	}
}

// promtool finds promtool: $PROMTOOL, else on the PATH. Debian's prometheus
// package ships it (hack/stack/install-deps.sh installs it; make
// monitoring-check runs this test with it, in CI too).
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		return p
	}
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found: hack/stack/install-deps.sh installs Debian's prometheus package")
		}
		t.Skip("promtool not found: make monitoring-check installs it and runs this")
	}
	return p
}

// TestDashboardQueriesParse hands every dashboard query, with Grafana's
// variables replaced, to promtool as a recording rule: a query Prometheus
// cannot parse fails here, not on a person's screen.
func TestDashboardQueriesParse(t *testing.T) {
	bin := promtool(t)
	vars := strings.NewReplacer("$__rate_interval", "1m", "$__range", "6h", "$namespace", ".*", "$app", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range dashboardQueries(t) {
		expr, _ := json.Marshal(vars.Replace(q.expr))
		fmt.Fprintf(&b, "      - record: canaryop:dashboard_query_%d\n        expr: %s\n", i, expr)
	}
	file := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's queries: %v\n%s\n%s", err, out, b.String())
	}
}
