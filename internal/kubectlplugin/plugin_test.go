package kubectlplugin_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/kubectlplugin"
	"github.com/atzedevries/canaryop/internal/testenv"
)

var (
	env    *testenv.Env
	update = flag.Bool("update", false, "rewrite the golden files")
)

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// fixture creates the demo app with a status the operator could have
// written: a canary at 30% with three checks, at the approval gate, a
// pull request open for the last outcome. now is two minutes after the
// creation the API server stamped; the status's times are relative to it.
func fixture(t *testing.T, mutate func(*v1.CanaryApp)) (a *v1.CanaryApp, now time.Time) {
	t.Helper()
	ns := env.NewNamespace(t)
	a = &v1.CanaryApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "canaryapp-sample"},
		Spec: v1.CanaryAppSpec{Image: "atzedevries/go-status-code-server:v2", ImageListenPort: 8088, Replicas: 2, TestReplicas: 1,
			PrometheusQuery: "up > 2", PrometheusURL: "http://prometheus.istio-system.svc:9090",
			Analysis: &v1.AnalysisSpec{Approval: v1.ApprovalManual}},
	}
	g := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	g(env.Client.Create(t.Context(), a))
	now = a.CreationTimestamp.Add(2 * time.Minute)
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }
	a.Status = v1.CanaryAppStatus{
		ObservedGeneration: a.Generation, Phase: v1.PhaseSuspended,
		StableImage: "atzedevries/go-status-code-server:v1", CanaryImage: "atzedevries/go-status-code-server:v2", CanaryWeight: 30,
		Conditions: []metav1.Condition{
			{Type: v1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1.ReasonWaitingForApproval, Message: "waits", LastTransitionTime: at(time.Minute)},
			{Type: v1.ConditionProgressing, Status: metav1.ConditionTrue, Reason: v1.ReasonWaitingForApproval,
				Message: "canary atzedevries/go-status-code-server:v2 passed analysis at weight 30 and waits for approval", LastTransitionTime: at(time.Minute)},
		},
		Checks: []v1.AnalysisCheck{
			{Time: at(90 * time.Second), Weight: 10, Verdict: v1.CheckPass, Value: "empty"},
			{Time: at(60 * time.Second), Weight: 20, Verdict: v1.CheckPass, Value: "empty"},
			{Time: at(5 * time.Second), Weight: 30, Verdict: v1.CheckPass, Value: "0.4"},
		},
		Approval: &v1.ApprovalStatus{Image: "atzedevries/go-status-code-server:v2", RequestedAt: at(time.Minute)},
		WriteBack: &v1.WriteBackStatus{Outcome: v1.OutcomeRolledBack, Image: "atzedevries/go-status-code-server:v1",
			FailedImage: "atzedevries/go-status-code-server:v0", DecidedAt: at(time.Hour), Attempts: 1, LastAttemptAt: ptrTime(at(time.Hour)),
			PullRequestURL: "https://github.com/acme/apps/pull/7", PullRequestState: "open"},
		FailedImages: []v1.FailedImage{{Image: "atzedevries/go-status-code-server:v0", Reason: "AnalysisFailed: 1 failed check(s) at weight 10"}},
		CommitStatus: &v1.CommitStatusReport{Image: "atzedevries/go-status-code-server:v2", Revision: "2b1f0e4c9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c",
			Repository: "acme/apps", Context: "canaryop/canary/default/canaryapp-sample", State: "pending",
			Description: ":v2 waits for approval at 30% of traffic", ReportedAt: ptrTime(at(time.Minute))},
	}
	if mutate != nil {
		mutate(a)
	}
	g(env.Client.Status().Update(t.Context(), a))
	return a, now
}

func ptrTime(t metav1.Time) *metav1.Time { return &t }

// run runs the plugin with args against the envtest API server as user.
func run(t *testing.T, c client.WithWatch, ns string, now time.Time, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := kubectlplugin.NewCommand(&kubectlplugin.Options{
		Streams: genericiooptions.IOStreams{Out: &out, ErrOut: &errOut},
		Client:  c, Namespace: ns, User: "alice", Now: func() time.Time { return now },
	})
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

func adminClient(t *testing.T) client.WithWatch {
	t.Helper()
	c, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./internal/kubectlplugin -args -update):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestGetAndListGolden(t *testing.T) {
	c := adminClient(t)
	a, now := fixture(t, nil)

	got, err := run(t, c, a.Namespace, now, "get", a.Name)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "get.txt", strings.ReplaceAll(got, a.Namespace, "NAMESPACE"))
	got, err = run(t, c, a.Namespace, now, "list")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "list.txt", got)
}

func TestActionsPatchTheApp(t *testing.T) {
	c := adminClient(t)
	a, now := fixture(t, nil)
	key := client.ObjectKeyFromObject(a)
	cur := func() *v1.CanaryApp {
		out := &v1.CanaryApp{}
		if err := env.Client.Get(context.Background(), key, out); err != nil {
			t.Fatal(err)
		}
		return out
	}

	if out, err := run(t, c, a.Namespace, now, "promote", a.Name); err != nil || !strings.Contains(out, "approved atzedevries/go-status-code-server:v2") {
		t.Fatalf("promote: %q, %v", out, err)
	}
	if got := cur().Spec.ApprovedImage; got != "atzedevries/go-status-code-server:v2" {
		t.Errorf("spec.approvedImage = %q", got)
	}

	if _, err := run(t, c, a.Namespace, now, "abort", a.Name); err != nil {
		t.Fatal(err)
	}
	ann := cur().Annotations
	if !strings.HasPrefix(ann[v1.AbortAnnotation], "kubectl-") || ann[v1.RequestedByAnnotation] != "alice" {
		t.Errorf("abort annotations %v", ann)
	}

	if _, err := run(t, c, a.Namespace, now, "retry", a.Name, "atzedevries/go-status-code-server:v7"); err == nil || !strings.Contains(err.Error(), "not recorded as failed") {
		t.Errorf("retry of an image never failed: %v", err)
	}
	if _, err := run(t, c, a.Namespace, now, "retry", a.Name); err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(cur().Annotations[v1.RetryAnnotation]); len(f) != 2 || f[1] != "atzedevries/go-status-code-server:v0" {
		t.Errorf("retry annotation %q", cur().Annotations[v1.RetryAnnotation])
	}

	for _, step := range []struct {
		verb string
		want bool
	}{{"suspend", true}, {"resume", false}} {
		if _, err := run(t, c, a.Namespace, now, step.verb, a.Name); err != nil {
			t.Fatal(err)
		}
		if cur().Spec.Suspend != step.want {
			t.Errorf("after %s spec.suspend = %t", step.verb, !step.want)
		}
	}
}

func TestPromoteRefusesWithoutAGate(t *testing.T) {
	c := adminClient(t)
	a, now := fixture(t, func(a *v1.CanaryApp) { a.Status.Approval = nil })
	if _, err := run(t, c, a.Namespace, now, "promote", a.Name); err == nil || !strings.Contains(err.Error(), "not at the approval gate") {
		t.Errorf("promote without a gate: %v", err)
	}
}

// A user without RBAC on canaryapps gets an answer that says what to ask
// for, not a bare 403.
func TestRBACDenialIsExplained(t *testing.T) {
	a, now := fixture(t, nil)
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "mallory"}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	_, err = run(t, c, a.Namespace, now, "abort", a.Name)
	if err == nil || !strings.Contains(err.Error(), "not allowed to get canaryapps in namespace "+a.Namespace) || !strings.Contains(err.Error(), "canaryapp-editor-role") {
		t.Errorf("denied abort: %v", err)
	}
}

func TestGetWatchPrintsEveryChange(t *testing.T) {
	c := adminClient(t)
	a, now := fixture(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	var out bytes.Buffer
	done := make(chan error, 1)
	cmd := kubectlplugin.NewCommand(&kubectlplugin.Options{Streams: genericiooptions.IOStreams{Out: &syncWriter{w: &out}, ErrOut: &bytes.Buffer{}},
		Client: c, Namespace: a.Namespace, Now: func() time.Time { return now }})
	cmd.SetArgs([]string{"get", a.Name, "--watch"})
	go func() { done <- cmd.ExecuteContext(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(syncString(&out), "]  30%") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for {
		cur := &v1.CanaryApp{}
		if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(a), cur); err != nil {
			t.Fatal(err)
		}
		cur.Status.CanaryWeight = 40
		if err := env.Client.Status().Update(t.Context(), cur); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(syncString(&out), "]  40%") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := syncString(&out); !strings.Contains(s, "]  30%") || !strings.Contains(s, "---") || !strings.Contains(s, "]  40%") {
		t.Errorf("watch output lacks the change:\n%s", s)
	}
}
