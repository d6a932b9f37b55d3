package opmetrics

import (
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

func TestObserveAndForget(t *testing.T) {
	app := &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
	app.Status.Phase = v1.PhaseProgressing
	app.Status.CanaryWeight = 30
	Observe(app)
	CheckDone(app, v1.CheckFail, "2.5")
	CheckDone(app, v1.CheckFail, "3 (2 series, max)")

	if got := testutil.ToFloat64(canaryWt.WithLabelValues("shop", "web")); got != 30 {
		t.Errorf("weight %v, want 30", got)
	}
	if got := testutil.ToFloat64(phase.WithLabelValues("shop", "web", string(v1.PhaseProgressing))); got != 1 {
		t.Errorf("phase Progressing %v, want 1", got)
	}
	if n := testutil.CollectAndCount(phase, Phase); n != 1 {
		t.Errorf("%d phase series, want 1 (only the phase the app is in)", n)
	}
	app.Status.Phase = v1.PhaseSuspended
	Observe(app)
	if got := testutil.ToFloat64(phase.WithLabelValues("shop", "web", string(v1.PhaseSuspended))); got != 1 || testutil.CollectAndCount(phase, Phase) != 1 {
		t.Errorf("phase Suspended %v with %d series, want 1 with 1", got, testutil.CollectAndCount(phase, Phase))
	}
	if got := testutil.ToFloat64(checks.WithLabelValues("shop", "web", string(v1.CheckFail))); got != 2 {
		t.Errorf("failed checks %v, want 2", got)
	}
	if got := testutil.ToFloat64(lastValue.WithLabelValues("shop", "web")); got != 3 {
		t.Errorf("last check value %v, want 3 (the highest sample)", got)
	}
	// Observe created the outcome series at zero, so that an alert's
	// increase() sees the first rollback.
	want := `
# HELP canaryop_outcomes_total Canary outcomes, by outcome (Promoted, RolledBack).
# TYPE canaryop_outcomes_total counter
canaryop_outcomes_total{name="web",namespace="shop",outcome="Promoted"} 0
`
	if err := testutil.CollectAndCompare(outcomes, strings.NewReader(want+`canaryop_outcomes_total{name="web",namespace="shop",outcome="RolledBack"} 0
`)); err != nil {
		t.Error(err)
	}
	Outcome(app, v1.ReasonRolledBack)
	if err := testutil.CollectAndCompare(outcomes, strings.NewReader(want+`canaryop_outcomes_total{name="web",namespace="shop",outcome="RolledBack"} 1
`)); err != nil {
		t.Error(err)
	}

	Forget("shop", "web")
	for _, c := range Collectors {
		if c == buildInfo {
			continue
		}
		if n := testutil.CollectAndCount(c); n != 0 {
			t.Errorf("%d series left after Forget: %v", n, describe(c))
		}
	}
}

func describe(c prometheus.Collector) []string {
	ch := make(chan *prometheus.Desc, 4)
	go func() { c.Describe(ch); close(ch) }()
	var out []string
	for d := range ch {
		out = append(out, d.String())
	}
	return out
}

func TestLastCheckValueOnlyForNumbers(t *testing.T) {
	app := &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "values"}}
	defer Forget(app.Namespace, app.Name)
	for _, tc := range []struct {
		value string
		want  float64 // NaN: no series
	}{
		{"2.444", 2.444},
		{"empty", math.NaN()},
		{"0", 0},
		{"NaN", math.NaN()},
		{"7 (3 series, max)", 7},
		{"", math.NaN()},
		{"-1.5e3", -1500},
	} {
		CheckDone(app, v1.CheckPass, tc.value)
		n := testutil.CollectAndCount(lastValue, AnalysisLastValue)
		if math.IsNaN(tc.want) {
			if n != 0 {
				t.Errorf("value %q: a series is left", tc.value)
			}
			continue
		}
		if got := testutil.ToFloat64(lastValue.WithLabelValues(app.Namespace, app.Name)); n != 1 || got != tc.want {
			t.Errorf("value %q: %d series, %v, want %v", tc.value, n, got, tc.want)
		}
	}
}

func TestCanaryDurationAndWriteBackLatency(t *testing.T) {
	app := &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "timed"}}
	defer Forget(app.Namespace, app.Name)
	started := metav1.NewTime(time.Now().Add(-90 * time.Second))
	app.Status.CanaryStartedAt = &started
	Observe(app)
	// The deciding reconcile clears the start before it reports the outcome.
	app.Status.CanaryStartedAt = nil
	decided := metav1.NewTime(time.Now().Add(-40 * time.Second))
	app.Status.WriteBack = &v1.WriteBackStatus{Outcome: v1.OutcomeRolledBack, DecidedAt: decided, Pending: true}
	Outcome(app, v1.ReasonRolledBack)
	Observe(app)

	h := histogram(t, CanaryDuration, app)
	if h.GetSampleCount() != 1 || h.GetSampleSum() < 89 || h.GetSampleSum() > 100 {
		t.Errorf("canary duration: %d samples, sum %v, want one of about 90s", h.GetSampleCount(), h.GetSampleSum())
	}
	// A second outcome without a canary start (the operator restarted into
	// the deciding reconcile) is counted, its duration not made up.
	Outcome(app, v1.ReasonRolledBack)
	if h := histogram(t, CanaryDuration, app); h.GetSampleCount() != 1 {
		t.Errorf("canary duration: %d samples after an outcome without a known start, want 1", h.GetSampleCount())
	}

	if got := testutil.ToFloat64(wbPending.WithLabelValues(app.Namespace, app.Name)); got != float64(decided.Unix()) {
		t.Errorf("pending since %v, want %d", got, decided.Unix())
	}
	WriteBack(app, "error")
	at := metav1.NewTime(decided.Add(30 * time.Second))
	app.Status.WriteBack.LastAttemptAt = &at
	app.Status.WriteBack.Pending = false
	app.Status.WriteBack.PullRequestURL = "https://github.example/acme/apps/pull/7"
	app.Status.WriteBack.PullRequestState = "open"
	WriteBack(app, "ok")
	h = histogram(t, WriteBackLatency, app)
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 30 {
		t.Errorf("write-back latency: %d samples, sum %v, want one of 30s (decidedAt to lastAttemptAt)", h.GetSampleCount(), h.GetSampleSum())
	}
	if n := testutil.CollectAndCount(wbPending, WriteBackPendingSince); n != 0 {
		t.Errorf("pending gauge left after the write-back landed")
	}
	if got := testutil.ToFloat64(pullRequest.WithLabelValues(app.Namespace, app.Name, "open")); got != 1 {
		t.Errorf("pull request open = %v, want 1", got)
	}
	app.Status.WriteBack.PullRequestState = "merged"
	Observe(app)
	if got := testutil.ToFloat64(pullRequest.WithLabelValues(app.Namespace, app.Name, "open")); got != 0 {
		t.Errorf("pull request open = %v after the merge, want 0", got)
	}
	if got := testutil.ToFloat64(writeBacks.WithLabelValues(app.Namespace, app.Name, "error")); got != 1 {
		t.Errorf("write-back errors = %v, want 1", got)
	}
}

func histogram(t *testing.T, name string, app *v1.CanaryApp) *dto.Histogram {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Collectors...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelValue(m, "namespace") == app.Namespace && labelValue(m, "name") == app.Name {
				return m.GetHistogram()
			}
		}
	}
	return &dto.Histogram{}
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestFamiliesAreWhatIsExported drives every metric and compares what a
// scrape returns with Families, which the dashboard and the alert rules are
// checked against.
func TestFamiliesAreWhatIsExported(t *testing.T) {
	app := &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "all"}}
	defer Forget(app.Namespace, app.Name)
	started := metav1.NewTime(time.Now().Add(-time.Minute))
	app.Status.CanaryStartedAt = &started
	app.Status.Phase = v1.PhaseProgressing
	app.Status.WriteBack = &v1.WriteBackStatus{Pending: true, DecidedAt: started, PullRequestURL: "u", PullRequestState: "open"}
	Observe(app)
	CheckDone(app, v1.CheckFail, "1")
	Outcome(app, v1.ReasonPromoted)
	Observe(app)
	at := metav1.Now()
	app.Status.WriteBack.LastAttemptAt = &at
	WriteBack(app, "ok")
	app.Status.WriteBack.Pending = true
	Observe(app)
	Notification(app.Namespace, app.Name, "team-slack", "RolledBack", "sent")

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Collectors...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Family{}
	for _, mf := range mfs {
		f := Family{Name: mf.GetName(), Type: strings.ToLower(mf.GetType().String()), Help: mf.GetHelp()}
		for _, l := range mf.GetMetric()[0].GetLabel() {
			f.Labels = append(f.Labels, l.GetName())
		}
		got[f.Name] = f
	}
	if len(got) != len(Families) || len(Collectors) != len(Families) {
		t.Errorf("%d families scraped, %d collectors, %d in Families", len(got), len(Collectors), len(Families))
	}
	for _, want := range Families {
		g, ok := got[want.Name]
		if !ok {
			t.Errorf("%s is in Families but not exported", want.Name)
			continue
		}
		wantLabels := slices.Sorted(slices.Values(want.Labels))
		if g.Type != want.Type || g.Help != want.Help || !slices.Equal(g.Labels, wantLabels) {
			t.Errorf("exported %+v, Families says %+v", g, want)
		}
		if !strings.HasPrefix(want.Name, "canaryop_") {
			t.Errorf("%s: every metric of the operator starts with canaryop_", want.Name)
		}
	}
}

func TestBuildInfo(t *testing.T) {
	want := `
# HELP canaryop_build_info Always 1; the labels say which build of canaryop runs.
# TYPE canaryop_build_info gauge
canaryop_build_info{goversion="` + runtime.Version() + `",revision="` + revision() + `",version="dev"} 1
`
	if err := testutil.CollectAndCompare(buildInfo, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// A subscribed provider's failure series exist at zero before the first
// failure, so the alert sees the first one as an increase.
func TestObserveCreatesNotificationSeries(t *testing.T) {
	app := &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "notified"}}
	defer Forget(app.Namespace, app.Name)
	app.Spec.Notifications = []v1.Notification{{Provider: "team-slack", Events: []v1.NotificationEvent{v1.EventRolledBack}}}
	Observe(app)
	want := `
# HELP canaryop_notifications_total ` + family(Notifications).Help + `
# TYPE canaryop_notifications_total counter
canaryop_notifications_total{event="RolledBack",name="notified",namespace="shop",provider="team-slack",result="dropped"} 0
canaryop_notifications_total{event="RolledBack",name="notified",namespace="shop",provider="team-slack",result="failed"} 0
canaryop_notifications_total{event="RolledBack",name="notified",namespace="shop",provider="team-slack",result="refused"} 0
canaryop_notifications_total{event="RolledBack",name="notified",namespace="shop",provider="team-slack",result="sent"} 0
`
	if err := testutil.CollectAndCompare(notified, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// An app without spec.gitops has no write-back series: at 10,000 apps the
// zeros of apps that never write back were 20,000 series.
func TestNoWriteBackSeriesWithoutGitOps(t *testing.T) {
	app := &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "plain"}}
	defer Forget(app.Namespace, app.Name)
	Observe(app)
	if n := testutil.CollectAndCount(writeBacks, WriteBackAttempts); n != 0 {
		t.Errorf("%d write-back series for an app without spec.gitops", n)
	}
	app.Spec.GitOps = &v1.GitOpsSpec{}
	Observe(app)
	if n := testutil.CollectAndCount(writeBacks, WriteBackAttempts); n != 2 {
		t.Errorf("%d write-back series with spec.gitops, want 2 (ok, error) at zero", n)
	}
}
