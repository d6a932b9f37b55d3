package controllers

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/gitops"
	"github.com/atzedevries/canaryop/gitops/github"
)

// countingWriter answers pull request polls with a state (or an error) and
// counts them: each would be one GitHub request.
type countingWriter struct {
	polls atomic.Int64
	err   error
}

func (w *countingWriter) Write(context.Context, *v1.CanaryApp) (gitops.Result, error) {
	return gitops.Result{}, errors.New("not used")
}

func (w *countingWriter) PullRequestState(context.Context, *v1.CanaryApp) (string, error) {
	w.polls.Add(1)
	return "open", w.err
}

// pollHour reconciles an app with an open write-back pull request every
// 2 s (the default check interval, as a canary of the same app would) for a
// simulated hour and returns the GitHub requests it made.
func pollHour(t *testing.T, w *countingWriter) int64 {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	app := &v1.CanaryApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Generation: 1},
		Spec:       v1.CanaryAppSpec{Image: "app:v2", GitOps: &v1.GitOpsSpec{Rollback: v1.WritePullRequest}},
		Status: v1.CanaryAppStatus{StableImage: "app:v1", WriteBack: &v1.WriteBackStatus{
			Outcome: v1.OutcomeRolledBack, Image: "app:v1", FailedImage: "app:v2", DecidedAt: metav1.NewTime(start),
			Attempts: 1, LastAttemptAt: &metav1.Time{Time: start}, Commit: "abc",
			PullRequestURL: "https://github.com/acme/apps/pull/7", PullRequestState: "open",
		}},
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(app).WithStatusSubresource(&v1.CanaryApp{}).Build()
	now := start
	r := &CanaryAppReconciler{Client: c, Writer: w, Now: func() time.Time { return now }}
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(app)}
	for ; now.Before(start.Add(time.Hour)); now = now.Add(2 * time.Second) {
		if _, err := r.ReconcileWriteBack(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	return w.polls.Load()
}

// TestPullRequestPollsPerHour: an open pull request costs about one GitHub
// request a minute however often its app reconciles (it was 1,800 an hour
// at a 2 s check interval), fewer while GitHub fails (backoff), and none
// while a rate limit says to wait.
func TestPullRequestPollsPerHour(t *testing.T) {
	healthy := pollHour(t, &countingWriter{})
	t.Logf("healthy: %d GitHub requests per hour per open pull request", healthy)
	if healthy < 55 || healthy > 61 {
		t.Errorf("healthy: %d requests in an hour, want about 60", healthy)
	}
	failing := pollHour(t, &countingWriter{err: errors.New("GitHub: 502")})
	t.Logf("failing: %d", failing)
	if failing > 10 {
		t.Errorf("failing: %d requests in an hour, want backoff (1, 2, 4 ... 30 minutes)", failing)
	}
	limited := pollHour(t, &countingWriter{err: &github.RateLimitedError{RetryAfter: 40 * time.Minute}})
	t.Logf("rate limited for 40m: %d", limited)
	if limited > 2 {
		t.Errorf("rate limited: %d requests in an hour, want at most 2", limited)
	}
}
