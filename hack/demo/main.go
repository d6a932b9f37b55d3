// Command demo plays the release story of canaryop's original README on the
// local stack (hack/stack/up.sh must have started it; `make demo` does all of
// it): the app runs v1; the team asks for approval before each promotion; a
// person commits v2 to Git, Argo CD syncs it, the canary's weight steps up
// to the approval gate, the person approves it in Git and v2 is promoted;
// the person commits v3, which
// answers errors, and canaryop rolls it back and commits v2 plus the record
// of v3's failure to Git; Argo CD syncs that and Git and the cluster agree.
// Then the limited user of the README reads the CanaryApp but not the pods.
//
// It prints a timeline and a summary and exits 1 when anything deviates
// from the story, 130 when interrupted. It stops the operator and the
// traffic simulator it started in every case.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/test/e2e/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case interrupted:
		fmt.Fprintln(os.Stderr, "demo: interrupted")
		os.Exit(130)
	case err != nil:
		fmt.Fprintf(os.Stderr, "\ndemo FAILED: %v\n", err)
		os.Exit(1)
	}
}

// Deadlines for each step; the steps take seconds to a minute.
const (
	syncTimeout    = 90 * time.Second
	canaryTimeout  = 3 * time.Minute
	processTimeout = 10 * time.Second
)

func run(ctx context.Context) error {
	env, err := stack.LoadEnv()
	if err != nil {
		return err
	}
	tl := stack.NewTimeline(os.Stdout, "")
	f, err := stack.NewFlow(ctx, env, "demo", tl)
	if err != nil {
		return err
	}
	app := stack.App{Name: stack.SampleName, Namespace: "default", Dir: stack.SampleDir, Application: stack.SampleName}
	step := func(format string, args ...any) { tl.Note("==", format, args...) }

	step("installing the CanaryApp CRD, the operator's Git credentials Secret and the AppProject %q", "canaryapps")
	if err := f.Prepare(ctx); err != nil {
		return err
	}
	op, err := stack.StartOperator(ctx, env)
	if err != nil {
		return err
	}
	defer func() { _ = op.Stop(processTimeout) }()
	step("operator running (pid %d, log %s)", op.PID(), op.Log)
	sim, err := stack.StartTrafficsim(ctx, env, app.Namespace, []string{app.Name})
	if err != nil {
		return err
	}
	defer func() { _ = sim.Stop(processTimeout) }()
	step("traffic simulator (the data-plane stand-in) on %s: 20 req/s, 20%% to /nothello, v3 answers 500 there", sim.Addr)

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go tl.Watch(watchCtx, f.Cluster, f.Repo, app.Namespace, app.Name, app.Application)

	var s summary
	// 1. v1 running, synced by Argo CD from Git.
	step("seeding %s into Git at :v1 and creating its Argo CD Application", app.Manifest())
	if _, err := f.Seed(ctx, app, stack.Image("v1")); err != nil {
		return err
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "v1 running", stack.IsStable(stack.Image("v1"))); err != nil {
		return err
	}
	if _, err := f.WaitSynced(ctx, app, syncTimeout); err != nil {
		return err
	}
	step("v1 runs with all traffic; Argo CD: Synced, Healthy")

	// 2. v2: canary, weights step up to the approval gate, approved in Git,
	// promoted, Git holds v2.
	if err := requireApproval(ctx, f, app, tl); err != nil {
		return err
	}
	start := time.Now()
	if _, err := f.Release(ctx, app, stack.Image("v2")); err != nil {
		return err
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "a canary of v2 taking traffic", stack.IsCanary(stack.Image("v2"), 1)); err != nil {
		return err
	}
	if err := approveAtGate(ctx, f, app, stack.Image("v2"), &s, tl); err != nil {
		return err
	}
	a, err := f.WaitCanaryApp(ctx, app, canaryTimeout, "v2 promoted and written back", stack.HasWrittenBack(v1.OutcomePromoted, stack.Image("v2")))
	if err != nil {
		return err
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "v2 stable", stack.IsStable(stack.Image("v2"))); err != nil {
		return err
	}
	s.promoted = time.Since(start)
	s.promotedWeights = weightsSeen(a, stack.Image("v2"))
	g, err := f.GitApp(ctx, app)
	if err != nil {
		return err
	}
	if g.Spec.Image != stack.Image("v2") {
		return fmt.Errorf("after the promotion Git names %s, want %s", g.Spec.Image, stack.Image("v2"))
	}
	if _, err := f.WaitSynced(ctx, app, syncTimeout); err != nil {
		return err
	}
	step("v2 promoted in %s (weights %s); Git holds %s", s.promoted.Round(time.Second), s.promotedWeights, stack.Tag(g.Spec.Image))

	// 3. v3: errors, rollback, the operator's commit, Argo CD syncs it.
	start = time.Now()
	if _, err := f.Release(ctx, app, stack.Image("v3")); err != nil {
		return err
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "a canary of v3 taking traffic", stack.IsCanary(stack.Image("v3"), 1)); err != nil {
		return err
	}
	a, err = f.WaitCanaryApp(ctx, app, canaryTimeout, "v3 rolled back and written back", stack.HasWrittenBack(v1.OutcomeRolledBack, stack.Image("v2")))
	if err != nil {
		return err
	}
	s.rolledBack = time.Since(start)
	s.failCheck = lastCheck(a, stack.Image("v3"), v1.CheckFail)
	// The Git server's webhook would tell Argo CD about the operator's push.
	if err := f.RefreshAfterWriteBack(ctx, app); err != nil {
		return err
	}
	g, err = f.GitApp(ctx, app)
	if err != nil {
		return err
	}
	if g.Spec.Image != stack.Image("v2") || stack.FailedImage(g, stack.Image("v3")) == nil {
		return fmt.Errorf("after the rollback Git names %s with failedImages %v, want %s with %s recorded", g.Spec.Image, g.Spec.FailedImages, stack.Image("v2"), stack.Image("v3"))
	}
	a, err = f.WaitCanaryApp(ctx, app, syncTimeout, "v2 stable with v3 recorded as failed in spec (synced from Git)", func(a *v1.CanaryApp, w stack.Weights) bool {
		return a.Spec.Image == stack.Image("v2") && stack.FailedImage(a, stack.Image("v3")) != nil && stack.IsStable(stack.Image("v2"))(a, w)
	})
	if err != nil {
		return err
	}
	st, err := f.WaitSynced(ctx, app, syncTimeout)
	if err != nil {
		return err
	}
	head, err := f.Repo.Head(ctx)
	if err != nil {
		return err
	}
	step("v3 rolled back in %s (%s); Git and cluster agree: %s, %s failed; Argo CD %s at %s, %s",
		s.rolledBack.Round(time.Second), s.failCheck, stack.Tag(a.Spec.Image), stack.Tag(a.Spec.FailedImages[0].Image), st.Sync, head.Short(), st.Health)
	stopWatch()

	// 4. The limited user of the README.
	if err := limitedUser(ctx, f, app, tl); err != nil {
		return err
	}

	// Summary.
	commits, err := f.Repo.Log(ctx, 20)
	if err != nil {
		return err
	}
	fmt.Println()
	fmt.Println("Summary")
	fmt.Printf("  v1 -> v2: promoted in %s, weights %s, approved in Git after %s at the gate\n",
		s.promoted.Round(time.Second), s.promotedWeights, s.atGate.Round(time.Second))
	fmt.Printf("  v2 -> v3: rolled back in %s; %s\n", s.rolledBack.Round(time.Second), s.failCheck)
	fmt.Printf("  cluster:  spec.image %s, stable %s, phase %s, Ready=%s (%s); failedImages %s\n",
		stack.Tag(a.Spec.Image), stack.Tag(a.Status.StableImage), a.Status.Phase,
		stack.ConditionStatus(a, v1.ConditionReady), stack.ConditionReason(a, v1.ConditionReady), failedList(a))
	fmt.Printf("  Argo CD:  %s at %s, %s\n", st.Sync, st.ShortRevision(), st.Health)
	fmt.Println("  Git log (newest first):")
	for _, c := range commits {
		fmt.Printf("    %s %-10s %s\n", c.Short(), c.Author, c.Subject)
	}
	manifest, err := f.Repo.ReadFile(ctx, app.Manifest())
	if err != nil {
		return err
	}
	fmt.Printf("  %s in Git now:\n", app.Manifest())
	for _, l := range strings.Split(strings.TrimRight(string(manifest), "\n"), "\n") {
		fmt.Println("    | " + l)
	}
	fmt.Printf("  total %s; logs in %s\n", tl.Elapsed().Round(time.Second), env.LogsDir())
	return nil
}

type summary struct {
	promoted, rolledBack time.Duration
	atGate               time.Duration
	promotedWeights      string
	failCheck            string
}

// weightsSeen lists the weights at which image's checks ran (status keeps
// the last 30 checks).
// requireApproval commits analysis.approval: Manual and waits for Argo CD.
func requireApproval(ctx context.Context, f *stack.Flow, app stack.App, tl *stack.Timeline) error {
	if _, err := f.RequireApproval(ctx, app); err != nil {
		return err
	}
	if _, err := f.WaitSynced(ctx, app, syncTimeout); err != nil {
		return err
	}
	tl.Note("==", "the team requires an approval before each promotion (analysis.approval: Manual, synced)")
	return nil
}

// approveAtGate waits for the canary at the approval gate (Argo CD shows it
// Suspended), lets it wait a few checks, and approves it in Git.
func approveAtGate(ctx context.Context, f *stack.Flow, app stack.App, image string, s *summary, tl *stack.Timeline) error {
	a, err := f.WaitCanaryApp(ctx, app, canaryTimeout, "v2 waiting at the approval gate", stack.IsWaitingForApproval(image))
	if err != nil {
		return err
	}
	reached := time.Now()
	st, err := f.WaitApplication(ctx, app, syncTimeout, "Suspended")
	if err != nil {
		return err
	}
	tl.Note("==", "%s passed its analysis at weight %d%% and waits for approval; Argo CD: %s", stack.Tag(image), a.Status.CanaryWeight, st.Health)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(3 * time.Second): // a person looks at the checks; they keep running
	}
	if _, err := f.Approve(ctx, app, image); err != nil {
		return err
	}
	s.atGate = time.Since(reached)
	tl.Note("==", "a person approved %s in Git (spec.approvedImage)", stack.Tag(image))
	return nil
}

func weightsSeen(a *v1.CanaryApp, image string) string {
	var ws []string
	for _, c := range a.Status.Checks {
		w := fmt.Sprint(c.Weight)
		if c.Image == image && (len(ws) == 0 || ws[len(ws)-1] != w) {
			ws = append(ws, w)
		}
	}
	if len(ws) == 0 {
		return "none recorded"
	}
	return strings.Join(ws, " -> ")
}

func lastCheck(a *v1.CanaryApp, image string, verdict v1.CheckVerdict) string {
	for i := len(a.Status.Checks) - 1; i >= 0; i-- {
		c := a.Status.Checks[i]
		if c.Image == image && c.Verdict == verdict {
			return fmt.Sprintf("check %s at weight %d, query value %s", c.Verdict, c.Weight, c.Value)
		}
	}
	return "no failing check recorded"
}

func failedList(a *v1.CanaryApp) string {
	var s []string
	for _, f := range a.Spec.FailedImages {
		s = append(s, stack.Tag(f.Image))
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// limitedUser shows the README's limited user: it may read the CanaryApp,
// not the pods.
func limitedUser(ctx context.Context, f *stack.Flow, app stack.App, tl *stack.Timeline) error {
	const as = "--as=system:serviceaccount:default:limited-user"
	tl.Note("==", "the limited user (examples/limited-user): CanaryApps only")
	if _, err := f.Cluster.Kubectl(ctx, nil, "apply", "-f", "examples/limited-user/"); err != nil {
		return err
	}
	out, err := f.Cluster.Kubectl(ctx, nil, as, "-n", app.Namespace, "get", "canaryapps", app.Name)
	if err != nil {
		return fmt.Errorf("the limited user cannot read the CanaryApp: %w", err)
	}
	tl.Note("rbac", "kubectl %s get canaryapps %s: allowed", as, app.Name)
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		fmt.Println("                    " + l)
	}
	out, err = f.Cluster.Kubectl(ctx, nil, as, "-n", app.Namespace, "get", "pods")
	if err == nil {
		return errors.New("the limited user can list pods; examples/limited-user should forbid it")
	}
	if !strings.Contains(out, "forbidden") {
		return fmt.Errorf("listing pods as the limited user failed for another reason than RBAC: %w", err)
	}
	tl.Note("rbac", "kubectl %s get pods: %s", as, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "Error from server (Forbidden): ")))
	return nil
}
