package opmetrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

func TestObserveAndForget(t *testing.T) {
	app := &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
	app.Status.Phase = v1.PhaseProgressing
	app.Status.CanaryWeight = 30
	Observe(app)
	CheckDone(app, v1.CheckFail)
	CheckDone(app, v1.CheckFail)
	Outcome(app, v1.ReasonRolledBack)

	if got := testutil.ToFloat64(canaryWeight.WithLabelValues("shop", "web")); got != 30 {
		t.Errorf("weight %v, want 30", got)
	}
	if got := testutil.ToFloat64(phase.WithLabelValues("shop", "web", string(v1.PhaseProgressing))); got != 1 {
		t.Errorf("phase Progressing %v, want 1", got)
	}
	if got := testutil.ToFloat64(phase.WithLabelValues("shop", "web", string(v1.PhaseStable))); got != 0 {
		t.Errorf("phase Stable %v, want 0", got)
	}
	if got := testutil.ToFloat64(checks.WithLabelValues("shop", "web", string(v1.CheckFail))); got != 2 {
		t.Errorf("failed checks %v, want 2", got)
	}
	want := `
# HELP canaryop_outcomes_total Canary outcomes, by outcome (Promoted, RolledBack).
# TYPE canaryop_outcomes_total counter
canaryop_outcomes_total{name="web",namespace="shop",outcome="RolledBack"} 1
`
	if err := testutil.CollectAndCompare(outcomes, strings.NewReader(want)); err != nil {
		t.Error(err)
	}

	Forget("shop", "web")
	for name, n := range map[string]int{"weight": testutil.CollectAndCount(canaryWeight), "phase": testutil.CollectAndCount(phase),
		"checks": testutil.CollectAndCount(checks), "outcomes": testutil.CollectAndCount(outcomes)} {
		if n != 0 {
			t.Errorf("%s: %d series left after Forget", name, n)
		}
	}
}
