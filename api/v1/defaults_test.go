package v1

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestEffectiveAnalysisDefaultsReproduceTheOriginal(t *testing.T) {
	a := (&CanaryAppSpec{}).EffectiveAnalysis()
	want := []int32{10, 20, 30, 40, 50}
	if len(a.Weights) != len(want) {
		t.Fatalf("weights %v, want %v", a.Weights, want)
	}
	for i := range want {
		if a.Weights[i] != want[i] {
			t.Fatalf("weights %v, want %v", a.Weights, want)
		}
	}
	if a.Interval != 30*time.Second || a.FailureThreshold != 1 || a.OnQueryError != QueryErrorHold || a.CheckInterval != 2*time.Second {
		t.Fatalf("unexpected defaults %+v", a)
	}
}

func TestEffectiveAnalysisExplicitWeights(t *testing.T) {
	a := (&CanaryAppSpec{Analysis: &AnalysisSpec{StepWeights: []int32{5, 25, 60, 80}, PromotionWeight: ptr(int32(60))}}).EffectiveAnalysis()
	if got := a.Weights; len(got) != 3 || got[0] != 5 || got[1] != 25 || got[2] != 60 {
		t.Fatalf("weights %v, want [5 25 60]", got)
	}
	b := (&CanaryAppSpec{Analysis: &AnalysisSpec{StepWeight: ptr(int32(30))}}).EffectiveAnalysis()
	if got := b.Weights; len(got) != 2 || got[0] != 30 || got[1] != 50 {
		t.Fatalf("weights %v, want [30 50]", got)
	}
}

func ptr[T any](v T) *T { return &v }

// FuzzEffectiveAnalysis feeds arbitrary (also schema-invalid) settings to the
// defaulting and checks the invariants the planner relies on.
func FuzzEffectiveAnalysis(f *testing.F) {
	f.Add(int64(30e9), int64(2e9), int32(10), int32(50), int32(1), int64(300e9), []byte{10, 20, 50}, false)
	f.Add(int64(0), int64(0), int32(0), int32(0), int32(0), int64(0), []byte{}, true)
	f.Add(int64(-1), int64(1e18), int32(-5), int32(500), int32(-1), int64(-1), []byte{200, 3, 3, 1}, true)
	f.Fuzz(func(t *testing.T, interval, check int64, step, promote, threshold int32, timeout int64, weights []byte, fail bool) {
		in := &AnalysisSpec{
			Interval:           &metav1.Duration{Duration: time.Duration(interval)},
			CheckInterval:      &metav1.Duration{Duration: time.Duration(check)},
			StepWeight:         &step,
			PromotionWeight:    &promote,
			FailureThreshold:   &threshold,
			CanaryReadyTimeout: &metav1.Duration{Duration: time.Duration(timeout)},
		}
		for _, w := range weights {
			in.StepWeights = append(in.StepWeights, int32(w)-20)
		}
		if fail {
			in.OnQueryError = QueryErrorFail
		}
		a := (&CanaryAppSpec{Analysis: in}).EffectiveAnalysis()
		if len(a.Weights) == 0 {
			t.Fatal("no weights")
		}
		for i, w := range a.Weights {
			if w < 1 || w > 100 {
				t.Fatalf("weight %d out of range in %v", w, a.Weights)
			}
			if i > 0 && w <= a.Weights[i-1] {
				t.Fatalf("weights not increasing: %v", a.Weights)
			}
		}
		if a.Interval <= 0 || a.CheckInterval <= 0 || a.CheckInterval > a.Interval || a.CanaryReadyTimeout <= 0 || a.FailureThreshold < 1 {
			t.Fatalf("invalid settings %+v", a)
		}
		if a.OnQueryError != QueryErrorHold && a.OnQueryError != QueryErrorFail {
			t.Fatalf("policy %q", a.OnQueryError)
		}
	})
}
