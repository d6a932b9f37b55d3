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
	d := &story{f: f, tl: tl, env: env,
		app: stack.App{Name: stack.SampleName, Namespace: "default", Dir: stack.SampleDir, Application: stack.SampleName}}
	stop, err := d.setup(ctx)
	defer stop()
	if err != nil {
		return err
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go tl.Watch(watchCtx, f.Cluster, f.Repo, d.app.Namespace, d.app.Name, d.app.Application)
	for _, chapter := range []func(context.Context) error{d.v1, d.v2, d.v3} {
		if err := chapter(ctx); err != nil {
			return err
		}
	}
	stopWatch()
	if err := limitedUser(ctx, f, d.app, tl); err != nil {
		return err
	}
	return d.summary(ctx)
}

// story is the demo's state from one chapter to the next.
type story struct {
	f   *stack.Flow
	tl  *stack.Timeline
	env stack.Env
	app stack.App
	s   summary
	// last is the CanaryApp and st the Argo CD state at the story's end.
	last *v1.CanaryApp
	st   stack.AppState
}

func (d *story) step(format string, args ...any) { d.tl.Note("==", format, args...) }

// setup installs what the story needs and starts the operator and the
// traffic simulator; stop stops whatever it started.
func (d *story) setup(ctx context.Context) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	d.step("installing the CanaryApp CRD, the operator's Git credentials Secret and the AppProject %q", "canaryapps")
	if err := d.f.Prepare(ctx); err != nil {
		return stop, err
	}
	op, err := stack.StartOperator(ctx, d.env)
	if err != nil {
		return stop, err
	}
	stops = append(stops, func() { _ = op.Stop(processTimeout) })
	d.step("operator running (pid %d, log %s)", op.PID(), op.Log)
	sim, err := stack.StartTrafficsim(ctx, d.env, d.app.Namespace, []string{d.app.Name})
	if err != nil {
		return stop, err
	}
	stops = append(stops, func() { _ = sim.Stop(processTimeout) })
	d.step("traffic simulator (the data-plane stand-in) on %s: 20 req/s, 20%% to /nothello, v3 answers 500 there", sim.Addr)
	return stop, nil
}

// v1 running, synced by Argo CD from Git.
func (d *story) v1(ctx context.Context) error {
	f, app := d.f, d.app
	d.step("seeding %s into Git at :v1 and creating its Argo CD Application", app.Manifest())
	if _, err := f.Seed(ctx, app, stack.Image("v1")); err != nil {
		return err
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "v1 running", stack.IsStable(stack.Image("v1"))); err != nil {
		return err
	}
	if _, err := f.WaitSynced(ctx, app, syncTimeout); err != nil {
		return err
	}
	d.step("v1 runs with all traffic; Argo CD: Synced, Healthy")
	return nil
}

// v2: canary, weights step up to the approval gate, approved in Git,
// promoted, Git holds v2.
func (d *story) v2(ctx context.Context) error {
	f, app, image := d.f, d.app, stack.Image("v2")
	if err := requireApproval(ctx, f, app, d.tl); err != nil {
		return err
	}
	start := time.Now()
	if _, err := f.Release(ctx, app, image); err != nil {
		return err
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "a canary of v2 taking traffic", stack.IsCanary(image, 1)); err != nil {
		return err
	}
	if err := approveAtGate(ctx, f, app, image, &d.s, d.tl); err != nil {
		return err
	}
	a, err := f.WaitCanaryApp(ctx, app, canaryTimeout, "v2 promoted and written back", stack.HasWrittenBack(v1.OutcomePromoted, image))
	if err != nil {
		return err
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "v2 stable", stack.IsStable(image)); err != nil {
		return err
	}
	d.s.promoted, d.s.promotedWeights = time.Since(start), weightsSeen(a, image)
	g, err := f.GitApp(ctx, app)
	if err != nil {
		return err
	}
	if g.Spec.Image != image {
		return fmt.Errorf("after the promotion Git names %s, want %s", g.Spec.Image, image)
	}
	if _, err := f.WaitSynced(ctx, app, syncTimeout); err != nil {
		return err
	}
	d.step("v2 promoted in %s (weights %s); Git holds %s", d.s.promoted.Round(time.Second), d.s.promotedWeights, stack.Tag(g.Spec.Image))
	return nil
}

// v3: errors, rollback, the operator's commit, Argo CD syncs it.
func (d *story) v3(ctx context.Context) error {
	f, app, v2, v3 := d.f, d.app, stack.Image("v2"), stack.Image("v3")
	start := time.Now()
	if _, err := f.Release(ctx, app, v3); err != nil {
		return err
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "a canary of v3 taking traffic", stack.IsCanary(v3, 1)); err != nil {
		return err
	}
	a, err := f.WaitCanaryApp(ctx, app, canaryTimeout, "v3 rolled back and written back", stack.HasWrittenBack(v1.OutcomeRolledBack, v2))
	if err != nil {
		return err
	}
	d.s.rolledBack, d.s.failCheck = time.Since(start), lastCheck(a, v3, v1.CheckFail)
	// The Git server's webhook would tell Argo CD about the operator's push.
	if err := f.RefreshAfterWriteBack(ctx, app); err != nil {
		return err
	}
	g, err := f.GitApp(ctx, app)
	if err != nil {
		return err
	}
	if g.Spec.Image != v2 || stack.FailedImage(g, v3) == nil {
		return fmt.Errorf("after the rollback Git names %s with failedImages %v, want %s with %s recorded", g.Spec.Image, g.Spec.FailedImages, v2, v3)
	}
	d.last, err = f.WaitCanaryApp(ctx, app, syncTimeout, "v2 stable with v3 recorded as failed in spec (synced from Git)", func(a *v1.CanaryApp, w stack.Weights) bool {
		return a.Spec.Image == v2 && stack.FailedImage(a, v3) != nil && stack.IsStable(v2)(a, w)
	})
	if err != nil {
		return err
	}
	if d.st, err = f.WaitSynced(ctx, app, syncTimeout); err != nil {
		return err
	}
	head, err := f.Repo.Head(ctx)
	if err != nil {
		return err
	}
	d.step("v3 rolled back in %s (%s); Git and cluster agree: %s, %s failed; Argo CD %s at %s, %s",
		d.s.rolledBack.Round(time.Second), d.s.failCheck, stack.Tag(d.last.Spec.Image), stack.Tag(d.last.Spec.FailedImages[0].Image), d.st.Sync, head.Short(), d.st.Health)
	return nil
}

// summary prints the outcome, the Git log and the manifest Git holds.
func (d *story) summary(ctx context.Context) error {
	a, st, s := d.last, d.st, d.s
	commits, err := d.f.Repo.Log(ctx, 20)
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
	manifest, err := d.f.Repo.ReadFile(ctx, d.app.Manifest())
	if err != nil {
		return err
	}
	fmt.Printf("  %s in Git now:\n", d.app.Manifest())
	for _, l := range strings.Split(strings.TrimRight(string(manifest), "\n"), "\n") {
		fmt.Println("    | " + l)
	}
	fmt.Printf("  total %s; logs in %s\n", d.tl.Elapsed().Round(time.Second), d.env.LogsDir())
	return nil
}

type summary struct {
	promoted, rolledBack time.Duration
	atGate               time.Duration
	promotedWeights      string
	failCheck            string
}

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

// weightsSeen lists the weights at which image's checks ran (status keeps
// the last 30 checks).
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
