//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/test/e2e/stack"
)

var (
	v1Image = stack.Image("v1")
	v2Image = stack.Image("v2")
	v3Image = stack.Image("v3") // answers 500 on /nothello in trafficsim
	v4Image = stack.Image("v4")
)

// promote releases image through Git and waits until canaryop promoted it,
// wrote the outcome back, and Argo CD reports the app Synced and Healthy.
// It returns the CanaryApp as promoted (with the checks of the canary).
func promote(ctx context.Context, t *testing.T, f *stack.Flow, app stack.App, image string) *v1.CanaryApp {
	t.Helper()
	a, err := f.WaitCanaryApp(ctx, app, canaryTimeout, "promoted "+image+" and written back", stack.HasWrittenBack(v1.OutcomePromoted, image))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "stable at "+image, stack.IsStable(image)); err != nil {
		t.Fatal(err)
	}
	g, err := f.GitApp(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if g.Spec.Image != image {
		t.Fatalf("after promoting %s Git names %s", image, g.Spec.Image)
	}
	if _, err := f.WaitSynced(ctx, app, syncTimeout); err != nil {
		t.Fatal(err)
	}
	return a
}

// checkWeights asserts that image's checks stepped up through 10, 20, ... 50
// (the default stepWeight and promotionWeight), never down. Status keeps the
// last MaxStatusChecks checks: when it is full, the first steps may be gone.
func checkWeights(t *testing.T, a *v1.CanaryApp, image string) {
	t.Helper()
	want := []int32{10, 20, 30, 40, 50}
	if len(a.Status.Checks) >= v1.MaxStatusChecks {
		first := int32(-1)
		for _, c := range a.Status.Checks {
			if c.Image == image {
				first = c.Weight
				break
			}
		}
		for len(want) > 1 && want[0] < first {
			want = want[1:]
		}
	}
	var seen []int32
	for _, c := range a.Status.Checks {
		if c.Image != image {
			continue
		}
		if c.Verdict != v1.CheckPass {
			t.Errorf("check of %s at weight %d: %s (%s), want only passing checks", image, c.Weight, c.Verdict, c.Message)
		}
		if len(seen) == 0 || seen[len(seen)-1] != c.Weight {
			seen = append(seen, c.Weight)
		}
	}
	if got, want := fmt.Sprint(seen), fmt.Sprint(want); got != want {
		t.Errorf("weights of %s's checks: %s, want %s", image, got, want)
	}
}

// TestGitOpsRelease is the README's story, the one `make demo` plays: v1
// runs; v2 committed to Git is synced, canaried and promoted; v3 fails its
// analysis, is rolled back, and canaryop commits v2 with v3's failure record,
// which Argo CD syncs, so that Git and the cluster agree.
func TestGitOpsRelease(t *testing.T) {
	releaseStory(t, stack.SampleName, v1.TrafficIstio)
}

// TestGitOpsReleaseGatewayAPI is the same story, with the same assertions,
// on the gatewayapi router: the weights live on an HTTPRoute, the
// simulated mesh reports the answers under the backend Services.
func TestGitOpsReleaseGatewayAPI(t *testing.T) {
	releaseStory(t, "e2e-gatewayapi", v1.TrafficGatewayAPI)
}

// releaseStory plays the README's story on the traffic router provider.
func releaseStory(t *testing.T, name string, provider v1.TrafficProvider) {
	ctx, f, app := start(t, name)
	m, err := stack.ManifestOn(env.Root, app.Name, app.Namespace, env.Get("PROM_URL"), f.Short, provider)
	if err != nil {
		t.Fatal(err)
	}
	seedStableManifest(ctx, t, f, app, m, v1Image)
	if w, err := f.Cluster.RouteWeights(ctx, app.Namespace, app.Name); err != nil || w.Kind != stack.RouterKind(provider) {
		t.Fatalf("the weights of %s are on %q (%v), want a %s", name, w.Kind, err, stack.RouterKind(provider))
	}

	// v2: promoted, Git holds v2.
	if _, err := f.Release(ctx, app, v2Image); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "a canary of v2 taking traffic", stack.IsCanary(v2Image, 10)); err != nil {
		t.Fatal(err)
	}
	a := promote(ctx, t, f, app, v2Image)
	checkWeights(t, a, v2Image)
	if r := stack.ConditionReason(a, v1.ConditionReady); r != v1.ReasonPromoted {
		t.Errorf("Ready reason after the promotion: %q, want %q", r, v1.ReasonPromoted)
	}

	// v3: rolled back, Git holds v2 and the record of v3's failure.
	v3Commit, err := f.Release(ctx, app, v3Image)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "a canary of v3 taking traffic", stack.IsCanary(v3Image, 10)); err != nil {
		t.Fatal(err)
	}
	a, err = f.WaitCanaryApp(ctx, app, canaryTimeout, "v3 rolled back and written back", stack.HasWrittenBack(v1.OutcomeRolledBack, v2Image))
	if err != nil {
		t.Fatal(err)
	}
	if wb := a.Status.WriteBack; wb.FailedImage != v3Image {
		t.Errorf("status.writeBack.failedImage = %q, want %q", wb.FailedImage, v3Image)
	}
	var failed *v1.AnalysisCheck
	for i := range a.Status.Checks {
		if c := a.Status.Checks[i]; c.Image == v3Image && c.Verdict == v1.CheckFail {
			failed = &a.Status.Checks[i]
		}
	}
	if failed == nil {
		t.Errorf("no failing check of %s in status.checks: %+v", v3Image, a.Status.Checks)
	}
	if err := f.RefreshAfterWriteBack(ctx, app); err != nil {
		t.Fatal(err)
	}
	commits, err := f.Repo.Log(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	rollback := commits[0]
	if rollback.SHA != a.Status.WriteBack.Commit || rollback.Author != "canaryop" || commits[1].SHA != v3Commit.SHA {
		t.Errorf("Git log after the rollback: %+v; want canaryop's commit %s on top of the v3 release %s", commits[:2], a.Status.WriteBack.Commit, v3Commit.Short())
	}
	if !strings.Contains(rollback.Subject, ":v3") || !strings.Contains(rollback.Subject, ":v2") {
		t.Errorf("rollback commit subject %q names neither :v2 nor :v3", rollback.Subject)
	}
	g, err := f.GitApp(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if g.Spec.Image != v2Image {
		t.Errorf("after the rollback Git names %s, want %s", g.Spec.Image, v2Image)
	}
	if fi := stack.FailedImage(g, v3Image); fi == nil || fi.Reason == "" {
		t.Errorf("after the rollback Git's spec.failedImages = %+v, want %s with a reason", g.Spec.FailedImages, v3Image)
	}

	// Argo CD syncs canaryop's commit: the cluster agrees with Git.
	a, err = f.WaitCanaryApp(ctx, app, syncTimeout, "spec v2 with v3 failed (from Git), stable v2, in-cluster record dropped",
		func(a *v1.CanaryApp, w stack.Weights) bool {
			inStatus := false
			for _, fi := range a.Status.FailedImages {
				inStatus = inStatus || fi.Image == v3Image
			}
			return a.Spec.Image == v2Image && stack.FailedImage(a, v3Image) != nil && !inStatus && stack.IsStable(v2Image)(a, w)
		})
	if err != nil {
		t.Fatal(err)
	}
	if s := stack.ConditionStatus(a, v1.ConditionStalled); s == metav1.ConditionTrue {
		t.Errorf("Stalled is True after Git reverted to v2: %+v", a.Status.Conditions)
	}
	st, err := f.WaitSynced(ctx, app, syncTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if st.Revision != rollback.SHA {
		t.Errorf("Argo CD synced %s, want canaryop's rollback commit %s", st.ShortRevision(), rollback.Short())
	}
}

// TestNewImageDuringCanary: a newer image committed while a canary runs
// restarts the analysis with the newest image; the older one is never
// promoted.
func TestNewImageDuringCanary(t *testing.T) {
	ctx, f, app := start(t, "e2e-midcanary")
	seedStable(ctx, t, f, app, v1Image)
	if _, err := f.Release(ctx, app, v2Image); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitCanaryApp(ctx, app, canaryTimeout, "a canary of v2 at weight 20 or more", stack.IsCanary(v2Image, 20)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Release(ctx, app, v4Image); err != nil {
		t.Fatal(err)
	}
	promotedV2 := false
	var firstV4Weight int32
	_, err := f.WaitCanaryApp(ctx, app, canaryTimeout, "v4 promoted and written back", func(a *v1.CanaryApp, w stack.Weights) bool {
		promotedV2 = promotedV2 || a.Status.StableImage == v2Image
		if a.Status.CanaryImage == v4Image && a.Status.CanaryWeight > 0 && firstV4Weight == 0 {
			firstV4Weight = a.Status.CanaryWeight
		}
		return stack.HasWrittenBack(v1.OutcomePromoted, v4Image)(a, w)
	})
	if err != nil {
		t.Fatal(err)
	}
	if promotedV2 {
		t.Error("v2 became the stable image although v4 was committed during its canary")
	}
	// The analysis started over: v4 began at the first weight (a step
	// takes 5s, the status is polled every 200ms).
	if firstV4Weight != 10 {
		t.Errorf("the canary of v4 was first seen at weight %d, want 10 (the analysis starts over)", firstV4Weight)
	}
	a := promote(ctx, t, f, app, v4Image)
	checkWeights(t, a, v4Image)
}

// TestOperatorKilledMidCanary: the operator SIGKILLed during a canary and
// started again resumes it where it stopped (no restart from the first
// weight) and reaches the same end state.
func TestOperatorKilledMidCanary(t *testing.T) {
	ctx, f, app := start(t, "e2e-restart")
	seedStable(ctx, t, f, app, v1Image)
	if _, err := f.Release(ctx, app, v2Image); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitCanaryApp(ctx, app, canaryTimeout, "a canary of v2 at weight 20 or more", stack.IsCanary(v2Image, 20)); err != nil {
		t.Fatal(err)
	}
	o := operator()
	o.Kill()
	f.Timeline.Note("test", "operator SIGKILLed (pid %d)", o.PID())
	before, err := f.Cluster.CanaryApp(ctx, app.Namespace, app.Name)
	if err != nil {
		t.Fatal(err)
	}
	started := before.Status.CanaryStartedAt
	if started == nil {
		t.Fatalf("canary running without status.canaryStartedAt: %+v", before.Status)
	}
	// Nothing moves while no operator runs: longer than a step.
	time.Sleep(6 * time.Second)
	held, err := f.Cluster.CanaryApp(ctx, app.Namespace, app.Name)
	if err != nil {
		t.Fatal(err)
	}
	if held.Status.CanaryWeight != before.Status.CanaryWeight || held.Status.CanaryImage != v2Image {
		t.Fatalf("without an operator the canary changed: weight %d -> %d, image %s", before.Status.CanaryWeight, held.Status.CanaryWeight, held.Status.CanaryImage)
	}

	o, err = stack.StartOperator(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	setOperator(o)
	f.Timeline.Note("test", "operator started again (pid %d)", o.PID())
	var restarted []string
	_, err = f.WaitCanaryApp(ctx, app, canaryTimeout, "v2 promoted and written back after the restart", func(a *v1.CanaryApp, w stack.Weights) bool {
		st := a.Status
		if st.CanaryImage == v2Image {
			if st.CanaryWeight < before.Status.CanaryWeight {
				restarted = append(restarted, fmt.Sprintf("weight %d", st.CanaryWeight))
			}
			if st.CanaryStartedAt != nil && !st.CanaryStartedAt.Equal(started) {
				restarted = append(restarted, "canaryStartedAt "+st.CanaryStartedAt.String())
			}
		}
		return stack.HasWrittenBack(v1.OutcomePromoted, v2Image)(a, w)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(restarted) > 0 {
		t.Errorf("the restarted operator started the canary over (killed at weight %d, started %s): %v", before.Status.CanaryWeight, started, restarted)
	}
	promote(ctx, t, f, app, v2Image)
}

// TestPrometheusDown: with Prometheus gone the analysis cannot pass, so the
// weight holds and nothing is promoted (Analysis: CheckInconclusive); once
// Prometheus is back the canary goes on and is promoted.
func TestPrometheusDown(t *testing.T) {
	ctx, f, app := start(t, "e2e-prom")
	seedStable(ctx, t, f, app, v1Image)
	if _, err := f.Release(ctx, app, v2Image); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitCanaryApp(ctx, app, canaryTimeout, "a canary of v2 with a passing check", func(a *v1.CanaryApp, w stack.Weights) bool {
		return stack.IsCanary(v2Image, 10)(a, w) && stack.ConditionReason(a, v1.ConditionAnalysis) == v1.ReasonCheckPassed
	}); err != nil {
		t.Fatal(err)
	}
	ctl(t, "stop", "prometheus")
	f.Timeline.Note("test", "Prometheus stopped")
	stopped := true
	t.Cleanup(func() {
		if stopped {
			ctl(t, "start", "prometheus")
		}
	})
	a, err := f.WaitCanaryApp(ctx, app, syncTimeout, "an inconclusive check", func(a *v1.CanaryApp, _ stack.Weights) bool {
		return stack.ConditionReason(a, v1.ConditionAnalysis) == v1.ReasonCheckInconclusive
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := stack.ConditionStatus(a, v1.ConditionAnalysis); s != metav1.ConditionUnknown {
		t.Errorf("Analysis condition status %s on an inconclusive check, want Unknown", s)
	}
	weight := a.Status.CanaryWeight
	// For two steps' time the weight must hold.
	deadline := time.Now().Add(12 * time.Second)
	for time.Now().Before(deadline) {
		a, err := f.Cluster.CanaryApp(ctx, app.Namespace, app.Name)
		if err != nil {
			t.Fatal(err)
		}
		w, err := f.Cluster.VirtualServiceWeights(ctx, app.Namespace, app.Name)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status.CanaryImage != v2Image || a.Status.CanaryWeight != weight || w.Canary != weight || a.Status.Phase != v1.PhaseProgressing {
			t.Fatalf("without Prometheus the canary moved: phase %s, canary %s at %d (VS %s), want %s held at %d",
				a.Status.Phase, a.Status.CanaryImage, a.Status.CanaryWeight, w, v2Image, weight)
		}
		time.Sleep(500 * time.Millisecond)
	}
	ctl(t, "start", "prometheus")
	stopped = false
	f.Timeline.Note("test", "Prometheus started again")
	promote(ctx, t, f, app, v2Image)
}

// TestProjectRefusesOtherNamespace: the AppProject (argocd/appproject.yaml)
// lets Argo CD create CanaryApps only in namespace default; a commit that
// moves the app elsewhere is refused and nothing is created there.
func TestProjectRefusesOtherNamespace(t *testing.T) {
	ctx, f, app := start(t, "e2e-project")
	seedStable(ctx, t, f, app, v1Image)
	const elsewhere = "e2e-elsewhere"
	if err := f.Cluster.EnsureNamespace(ctx, elsewhere); err != nil {
		t.Fatal(err)
	}
	moved, err := f.MoveNamespace(ctx, app, elsewhere)
	if err != nil {
		t.Fatal(err)
	}
	var st stack.AppState
	err = stack.Eventually(ctx, syncTimeout, 250*time.Millisecond, "Argo CD to refuse the move", func(ctx context.Context) (bool, string, error) {
		st, err = f.Cluster.Application(ctx, app.Application)
		if err != nil {
			return false, "", err
		}
		text := strings.Join(st.Results, " ") + " " + strings.Join(st.Conditions, " ")
		return st.Revision == moved.SHA && strings.Contains(text, "namespace "+elsewhere+" is not permitted in project"),
			fmt.Sprintf("%s at %s, operation %s: %s; results %v; conditions %v", st.Sync, st.ShortRevision(), st.OperationPhase, st.OperationMessage, st.Results, st.Conditions), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Argo CD: %s, operation %s: %s; results %v; conditions %v", st.Sync, st.OperationPhase, st.OperationMessage, st.Results, st.Conditions)
	if st.Sync == "Synced" {
		t.Errorf("Application is Synced at the refused commit")
	}
	// Argo CD retries the sync; it must never create the app elsewhere.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if _, err := f.Cluster.CanaryApp(ctx, elsewhere, app.Name); err == nil {
			t.Fatalf("CanaryApp %s/%s exists although the project forbids the namespace", elsewhere, app.Name)
		}
	}
	if _, err := f.Cluster.CanaryApp(ctx, app.Namespace, app.Name); err != nil {
		t.Errorf("the app in %s is gone after the refused move: %v", app.Namespace, err)
	}
	// Moving it back is synced again.
	if _, err := f.MoveNamespace(ctx, app, app.Namespace); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitSynced(ctx, app, syncTimeout); err != nil {
		t.Fatal(err)
	}
}

// TestLimitedUser is the README's limited user (examples/limited-user): it
// manages CanaryApps in default and nothing else; the operator does the rest
// with its own permissions.
func TestLimitedUser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := base.Cluster
	const as = "--as=system:serviceaccount:default:limited-user"
	if _, err := c.Kubectl(ctx, nil, "apply", "-f", "examples/limited-user/"); err != nil {
		t.Fatal(err)
	}
	m, err := stack.DemoManifest(env.Root, "e2e-rbac", ns, env.Get("PROM_URL"), base.Short)
	if err != nil {
		t.Fatal(err)
	}
	allowed := [][]string{
		{"create", "-f", "-"},
		{"get", "canaryapps", "e2e-rbac"},
		{"get", "canaryapps"},
	}
	for _, args := range allowed {
		var stdin []byte
		if args[0] == "create" {
			stdin = m
		}
		if out, err := c.Kubectl(ctx, stdin, append([]string{as, "-n", ns}, args...)...); err != nil {
			t.Errorf("limited user: kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// The operator acts on the user's CanaryApp with its own permissions.
	app := stack.App{Name: "e2e-rbac", Namespace: ns}
	if _, err := base.WaitCanaryApp(ctx, app, syncTimeout, "the limited user's app stable", stack.IsStable(v1Image)); err != nil {
		t.Error(err)
	}
	forbidden := [][]string{
		{"-n", ns, "get", "pods"},
		{"-n", ns, "get", "deployments"},
		{"-n", ns, "get", "virtualservices"},
		{"-n", ns, "get", "secrets"},
		{"-n", "kube-system", "get", "canaryapps"},
	}
	for _, args := range forbidden {
		out, err := c.Kubectl(ctx, nil, append([]string{as}, args...)...)
		if err == nil || !strings.Contains(out, "forbidden") {
			t.Errorf("limited user: kubectl %s: want forbidden, got err=%v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if out, err := c.Kubectl(ctx, nil, as, "-n", ns, "delete", "canaryapp", "e2e-rbac", "--wait=false"); err != nil {
		t.Errorf("limited user: delete canaryapp: %v\n%s", err, out)
	}
}

// TestGitDownDuringRollback: with the Git server down the rollback in the
// cluster happens all the same; the write-back stays pending with its error
// and lands once Git is back, and Argo CD then syncs it.
func TestGitDownDuringRollback(t *testing.T) {
	ctx, f, app := start(t, "e2e-gitdown")
	seedStable(ctx, t, f, app, v1Image)
	if _, err := f.Release(ctx, app, v3Image); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "a canary of v3 taking traffic", stack.IsCanary(v3Image, 10)); err != nil {
		t.Fatal(err)
	}
	ctl(t, "stop", "gitserver")
	f.Timeline.Note("test", "Git server stopped")
	stopped := true
	t.Cleanup(func() {
		if stopped {
			ctl(t, "start", "gitserver")
		}
	})
	a, err := f.WaitCanaryApp(ctx, app, canaryTimeout, "rolled back in the cluster with the write-back pending after a failed attempt",
		func(a *v1.CanaryApp, w stack.Weights) bool {
			wb := a.Status.WriteBack
			return wb != nil && wb.Outcome == v1.OutcomeRolledBack && wb.Pending && wb.Attempts >= 1 && wb.Error != "" &&
				a.Status.StableImage == v1Image && a.Status.CanaryImage == "" && w.Primary == 100
		})
	if err != nil {
		t.Fatal(err)
	}
	if r := stack.ConditionReason(a, v1.ConditionWriteBack); r != v1.ReasonWriteBackFailed {
		t.Errorf("WriteBack condition reason %q while Git is down, want %s", r, v1.ReasonWriteBackFailed)
	}
	if strings.Contains(a.Status.WriteBack.Error, env.Get("GIT_TOKEN")) {
		t.Error("status.writeBack.error holds the Git token")
	}
	ctl(t, "start", "gitserver")
	stopped = false
	f.Timeline.Note("test", "Git server started again")
	if _, err := f.WaitCanaryApp(ctx, app, canaryTimeout, "the rollback written back", stack.HasWrittenBack(v1.OutcomeRolledBack, v1Image)); err != nil {
		t.Fatal(err)
	}
	if err := f.RefreshAfterWriteBack(ctx, app); err != nil {
		t.Fatal(err)
	}
	g, err := f.GitApp(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if g.Spec.Image != v1Image || stack.FailedImage(g, v3Image) == nil {
		t.Errorf("Git names %s with failedImages %+v, want %s with %s recorded", g.Spec.Image, g.Spec.FailedImages, v1Image, v3Image)
	}
	if _, err := f.WaitSynced(ctx, app, syncTimeout); err != nil {
		t.Fatal(err)
	}
}
