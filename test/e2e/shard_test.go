//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/shard"
	"github.com/atzedevries/canaryop/test/e2e/stack"
)

// The apps of TestShardedOperatorsSurviveSIGKILL (also served by the
// suite's traffic simulator).
var shardApps = []string{"e2e-shard-0", "e2e-shard-1", "e2e-shard-2", "e2e-shard-3", "e2e-shard-4"}

// The sharded operators: their identities (POD_NAME, also the names of
// their logs), the shards and the Lease timings.
var shardOperators = []string{"operator-shard-0", "operator-shard-1", "operator-shard-2"}

const (
	shardCount         = 8
	shardLeaseDuration = 6 * time.Second
	shardRenewDeadline = 4 * time.Second
	shardRetryPeriod   = time.Second
	// The Leases live in the leader election namespace, which defaults
	// to the operator's (its credentials') namespace.
	shardLeaseNS     = stack.OperatorNamespace
	shardLeasePrefix = "canaryop-shard-"
)

// TestShardedOperatorsSurviveSIGKILL is issue 12's sharded deployment on
// the local stack: the suite's operator makes way for three processes with
// --sharding, which share the shards of five apps released through Git and
// Argo CD. While the apps are mid-canary (two of them with the failing v3,
// one of the victim's and one of a survivor's), the process holding the
// most apps is SIGKILLed. The survivors take its shards once its Leases
// expire (the time is logged); every canary ends as it would have (v2
// promoted, v3 rolled back, the victim's resumed, not started over), each
// rollback written back in exactly one commit, and Argo CD syncs them. A Lease poller shows that
// no shard ever passed between two live processes and that the dead one's
// passed only after its renew deadline; the processes' logs show no app
// reconciled by two of them at once.
func TestShardedOperatorsSurviveSIGKILL(t *testing.T) {
	began := time.Now()
	stopSuiteOperator(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	r := &shardRun{t: t, ctx: ctx, c: base.Cluster.Client}

	r.startReplicas()
	r.seedApps()
	r.pickVictim()
	r.release()
	r.waitVictimMidCanary()
	r.killVictim()
	r.measureTakeover()
	r.waitOutcomes()
	r.checkGit()
	r.checkArgoCD()
	r.checkLeaseChanges()
	r.checkWorkSpans()
	r.checkSurvivorsAlive()
	t.Logf("test took %.0fs", time.Since(began).Seconds())
}

// stopSuiteOperator stops the suite's operator to make way for the sharded
// ones, and starts it again when the test ends.
func stopSuiteOperator(t *testing.T) {
	single := operator()
	if err := single.Stop(stopTimeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("the suite's operator (pid %d) stopped for the sharded ones", single.PID())
	// Cleanups run last-registered first: the sharded processes stop
	// before this brings the suite's operator back.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := deleteShardLeases(ctx, base.Cluster.Client); err != nil {
			t.Errorf("removing the shard Leases: %v", err)
		}
		o, err := stack.StartOperator(ctx, env)
		if err != nil {
			t.Errorf("starting the suite's operator again: %v", err)
			return
		}
		setOperator(o)
	})
}

// shardRun is the state of one TestShardedOperatorsSurviveSIGKILL, filled
// in phase by phase; each phase fails the test if it cannot go on.
type shardRun struct {
	t   *testing.T
	ctx context.Context
	c   client.Client

	procs map[string]*shardProcess // by identity
	watch *leaseWatcher
	apps  []shardApp

	// Set by pickVictim.
	byHolder     map[string][]string // operator: the apps it holds
	victim       string
	survivors    []string
	failing      []string // the apps that get the failing v3
	victimShards map[int]bool

	// Set by release, waitVictimMidCanary and killVictim.
	before   stack.Commit             // Git's head before the release
	atKill   map[string]*v1.CanaryApp // the victim's apps at the kill
	killedAt time.Time
	final    map[int]leaseState // the Leases right after the kill
}

// shardApp is one of the test's apps, in its own folder with its own
// Application.
type shardApp struct {
	f   *stack.Flow
	app stack.App
}

// fails tells whether the app gets the failing v3.
func (r *shardRun) fails(name string) bool { return slices.Contains(r.failing, name) }

// victimHolds tells whether the app is the victim's.
func (r *shardRun) victimHolds(name string) bool {
	return slices.Contains(r.byHolder[r.victim], name)
}

// startReplicas starts the three sharded operators, waits for them to
// share the shards as rendezvous hashing assigns them and starts the Lease
// poller.
func (r *shardRun) startReplicas() {
	r.procs = map[string]*shardProcess{}
	for _, id := range shardOperators {
		r.procs[id] = startShardOperator(r.ctx, r.t, id)
	}
	var leases map[int]leaseState
	err := stack.Eventually(r.ctx, time.Minute, 200*time.Millisecond, "the three operators to share the shards as rendezvous hashing assigns them",
		func(ctx context.Context) (bool, string, error) {
			var err error
			if leases, err = readShardLeases(ctx, r.c); err != nil {
				return false, "", err
			}
			for s := range shardCount {
				if leases[s].Holder != shard.Owner(s, shardOperators) {
					return false, describeHolders(leases), nil
				}
			}
			return true, "", nil
		})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Logf("shard holders: %s", describeHolders(leases))
	r.watch = watchLeases(r.ctx, r.t, r.c, leases)
}

// seedApps seeds the apps at v1 and waits for each to be stable.
func (r *shardRun) seedApps() {
	for _, name := range shardApps {
		_, f, app := start(r.t, name)
		if _, err := f.Seed(r.ctx, app, v1Image); err != nil {
			r.t.Fatal(err)
		}
		r.apps = append(r.apps, shardApp{f, app})
	}
	for _, a := range r.apps {
		waitStable(r.ctx, r.t, a.f, a.app, v1Image)
	}
}

// pickVictim reads who holds which app, as the Leases say: the victim is
// the operator that holds the most. It also picks the apps for v3.
func (r *shardRun) pickVictim() {
	leases, err := readShardLeases(r.ctx, r.c)
	if err != nil {
		r.t.Fatal(err)
	}
	r.byHolder = map[string][]string{}
	for _, name := range shardApps {
		h := leases[shard.Of(ns, name, shardCount)].Holder
		r.byHolder[h] = append(r.byHolder[h], name)
	}
	for _, id := range shardOperators {
		if r.victim == "" || len(r.byHolder[id]) > len(r.byHolder[r.victim]) {
			r.victim = id
		}
	}
	for _, id := range shardOperators {
		if id != r.victim {
			r.survivors = append(r.survivors, id)
		}
	}
	r.failing = r.pickFailing()
	if len(r.byHolder[r.victim]) == 0 || len(r.failing) == 0 {
		r.t.Fatalf("the apps are not spread over the operators: %v", r.byHolder)
	}
	r.t.Logf("apps per operator: %v; the victim is %s; %v get the failing v3", r.byHolder, r.victim, r.failing)
	r.victimShards = map[int]bool{}
	for s := range shardCount {
		if leases[s].Holder == r.victim {
			r.victimShards[s] = true
		}
	}
}

// pickFailing picks the apps for v3, which fails its analysis: one app of
// a survivor, and one of the victim's when it holds more than one, so that
// a survivor takes over a failing canary too. A promotion writes no commit
// (Git names the image since the release); a rollback writes one.
func (r *shardRun) pickFailing() []string {
	var failing []string
	for _, name := range shardApps {
		if !r.victimHolds(name) {
			failing = append(failing, name)
			break
		}
	}
	if n := len(r.byHolder[r.victim]); n > 1 {
		failing = append(failing, r.byHolder[r.victim][n-1])
	}
	return failing
}

// release releases v2 for all apps but the failing ones, v3 (fails its
// analysis) for those.
func (r *shardRun) release() {
	var err error
	if r.before, err = base.Repo.Head(r.ctx); err != nil {
		r.t.Fatal(err)
	}
	for _, a := range r.apps {
		image := v2Image
		if r.fails(a.app.Name) {
			image = v3Image
		}
		if _, err := a.f.Release(r.ctx, a.app, image); err != nil {
			r.t.Fatal(err)
		}
	}
}

// waitVictimMidCanary waits for each of the victim's apps to be
// mid-canary: v2 at weight 20; v3 (which failed at 20 or 30 so far) as
// soon as it runs, or, should it fail first, rolled back by the victim.
func (r *shardRun) waitVictimMidCanary() {
	r.atKill = map[string]*v1.CanaryApp{}
	for _, a := range r.apps {
		if !r.victimHolds(a.app.Name) {
			continue
		}
		what, cond := "a canary of v2 at weight 20 or more", stack.IsCanary(v2Image, 20)
		if r.fails(a.app.Name) {
			what = "a canary of v3 taking traffic, or rolled back"
			cond = func(got *v1.CanaryApp, w stack.Weights) bool {
				return stack.IsCanary(v3Image, 10)(got, w) || stack.HasWrittenBack(v1.OutcomeRolledBack, v1Image)(got, w)
			}
		}
		got, err := a.f.WaitCanaryApp(r.ctx, a.app, canaryTimeout, what, cond)
		if err != nil {
			r.t.Fatal(err)
		}
		r.atKill[a.app.Name] = got
	}
}

// killVictim SIGKILLs the victim, then reads its apps and the Leases as
// they were at the kill.
func (r *shardRun) killVictim() {
	victim := r.procs[r.victim].op
	r.killedAt = time.Now()
	victim.Kill()
	for _, a := range r.apps {
		a.f.Timeline.Note("test", "%s SIGKILLed (pid %d)", r.victim, victim.PID())
	}
	var err error
	for name := range r.atKill {
		// Re-read: the victim may have stepped between the wait and the kill.
		if r.atKill[name], err = base.Cluster.CanaryApp(r.ctx, ns, name); err != nil {
			r.t.Fatal(err)
		}
		st := r.atKill[name].Status
		r.t.Logf("at the kill %s was %s: canary %s at weight %d", name, st.Phase, stack.Tag(st.CanaryImage), st.CanaryWeight)
	}
	if r.final, err = readShardLeases(r.ctx, r.c); err != nil {
		r.t.Fatal(err)
	}
}

// measureTakeover waits for the victim's shards to move to the survivors
// once its Leases expire, checks who took each and when, and logs how long
// after the kill they were taken.
func (r *shardRun) measureTakeover() {
	moved := r.waitVictimShardsMoved()
	seen := time.Since(r.killedAt)
	var takeover time.Duration
	for s := range r.victimShards {
		l := moved[s]
		takeover = max(takeover, l.Acquire.Sub(r.killedAt))
		if want := shard.Owner(s, r.survivors); l.Holder != want {
			r.t.Errorf("shard %d went to %s, rendezvous hashing gives it to %s", s, l.Holder, want)
		}
		// The victim would have worked on until its renew deadline: no
		// one may take the shard before that.
		if last := r.final[s].Renew; l.Acquire.Before(last.Add(shardRenewDeadline)) {
			r.t.Errorf("shard %d taken by %s at %s, within the renew deadline of the victim's last renew %s",
				s, l.Holder, l.Acquire.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano))
		}
	}
	mid := 0
	for _, a := range r.atKill {
		if a.Status.CanaryImage != "" {
			mid++
		}
	}
	r.t.Logf("the %d shards of SIGKILLed %s (%d apps, %d mid-canary) were taken over %.1fs after the kill (by the Leases' acquire times; seen after %.1fs), lease duration %s",
		len(r.victimShards), r.victim, len(r.atKill), mid, takeover.Seconds(), seen.Seconds(), shardLeaseDuration)
}

// waitVictimShardsMoved waits for a survivor to hold each of the victim's
// shards and returns the Leases then.
func (r *shardRun) waitVictimShardsMoved() map[int]leaseState {
	var moved map[int]leaseState
	err := stack.Eventually(r.ctx, shardLeaseDuration+20*time.Second, 100*time.Millisecond, "the survivors to take the victim's shards",
		func(ctx context.Context) (bool, string, error) {
			var err error
			if moved, err = readShardLeases(ctx, r.c); err != nil {
				return false, "", err
			}
			for s := range r.victimShards {
				if !slices.Contains(r.survivors, moved[s].Holder) {
					return false, describeHolders(moved), nil
				}
			}
			return true, "", nil
		})
	if err != nil {
		r.t.Fatal(err)
	}
	return moved
}

// waitOutcomes waits, for all apps at once, for every canary to end as it
// would have; the victim's resume where they were.
func (r *shardRun) waitOutcomes() {
	var wg sync.WaitGroup
	errs := make(chan error, len(r.apps))
	for _, a := range r.apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- r.waitOutcome(a)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			r.t.Error(err)
		}
	}
	if r.t.Failed() {
		r.t.FailNow()
	}
}

// waitOutcome waits for a's canary to end, v2 promoted or v3 rolled back,
// and written back. It fails if a canary that was running at the kill
// started over meanwhile.
func (r *shardRun) waitOutcome(a shardApp) error {
	cond := stack.HasWrittenBack(v1.OutcomePromoted, v2Image)
	what := "v2 promoted and written back"
	if r.fails(a.app.Name) {
		cond, what = stack.HasWrittenBack(v1.OutcomeRolledBack, v1Image), "v3 rolled back and written back"
	}
	var restarted []string
	k := r.atKill[a.app.Name]
	_, err := a.f.WaitCanaryApp(r.ctx, a.app, canaryTimeout, what, func(got *v1.CanaryApp, w stack.Weights) bool {
		restarted = append(restarted, startedOver(k, got)...)
		return cond(got, w)
	})
	if err == nil && len(restarted) > 0 {
		err = fmt.Errorf("%s: the canary started over after the takeover (weight %d at the kill): %v", a.app.Name, k.Status.CanaryWeight, restarted)
	}
	return err
}

// startedOver tells how got's canary differs from the same canary at the
// kill, k (nil for an app not the victim's), in ways that mean it started
// over: a lower weight, another start time.
func startedOver(k, got *v1.CanaryApp) []string {
	st := got.Status
	if k == nil || k.Status.CanaryImage == "" || st.CanaryImage != k.Status.CanaryImage {
		return nil
	}
	var out []string
	if st.CanaryWeight < k.Status.CanaryWeight {
		out = append(out, fmt.Sprintf("weight %d", st.CanaryWeight))
	}
	if st.CanaryStartedAt != nil && k.Status.CanaryStartedAt != nil && !st.CanaryStartedAt.Equal(k.Status.CanaryStartedAt) {
		out = append(out, "canaryStartedAt "+st.CanaryStartedAt.String())
	}
	return out
}

// checkGit checks that Git holds each outcome: each rollback in exactly
// one commit of canaryop's (no duplicate from the victim and its
// successor), no commit for a promotion (Git names v2 since the release).
func (r *shardRun) checkGit() {
	rec := r.readWriteBackRecords()
	for _, a := range r.apps {
		r.checkWriteBack(a, rec)
		r.checkGitApp(a)
	}
	r.t.Logf("write-back records since the release: %v", rec.inCommit)
}

// writeBackRecords are the write-back trailers in Git's commits since the
// release.
type writeBackRecords struct {
	since    []string            // the commits since the release's parent
	outcomes map[string][]string // app: the outcome of each trailer block naming it
	inCommit map[string][]string // app: the commits naming it
}

// readWriteBackRecords reads the commits since the release's parent, which
// must be among the newest 200.
func (r *shardRun) readWriteBackRecords() writeBackRecords {
	commits, err := base.Repo.Log(r.ctx, 200)
	if err != nil {
		r.t.Fatal(err)
	}
	rec := writeBackRecords{outcomes: map[string][]string{}, inCommit: map[string][]string{}}
	for _, cm := range commits {
		if cm.SHA == r.before.SHA {
			return rec
		}
		rec.add(cm)
	}
	r.t.Fatalf("the release's parent %s is not among the newest %d commits", r.before.Short(), len(commits))
	return rec
}

// add records cm and its trailer blocks: each Canaryop-App line naming an
// app of the test's namespace, with the Canaryop-Outcome line after it.
func (rec *writeBackRecords) add(cm stack.Commit) {
	rec.since = append(rec.since, cm.SHA)
	lines := strings.Split(cm.Body, "\n")
	for i, line := range lines {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "Canaryop-App: "+ns+"/")
		if !ok {
			continue
		}
		outcome := ""
		if i+1 < len(lines) {
			outcome, _ = strings.CutPrefix(strings.TrimSpace(lines[i+1]), "Canaryop-Outcome: ")
		}
		rec.outcomes[name] = append(rec.outcomes[name], outcome)
		rec.inCommit[name] = append(rec.inCommit[name], cm.SHA)
	}
}

// checkWriteBack checks a's write-back records in Git, and that its
// status.writeBack names the commit that made them.
func (r *shardRun) checkWriteBack(a shardApp, rec writeBackRecords) {
	name := a.app.Name
	fails := r.fails(name)
	st, err := base.Cluster.CanaryApp(r.ctx, ns, name)
	if err != nil {
		r.t.Fatal(err)
	}
	wb := st.Status.WriteBack
	switch got := rec.outcomes[name]; {
	case fails && (len(got) != 1 || got[0] != string(v1.OutcomeRolledBack)):
		r.t.Errorf("%s: write-back records in Git since the release: %v (commits %v), want exactly one %s", name, got, rec.inCommit[name], v1.OutcomeRolledBack)
	case fails && (wb == nil || wb.Commit != rec.inCommit[name][0]):
		r.t.Errorf("%s: status.writeBack %+v does not name the commit that records the rollback, %v", name, wb, rec.inCommit[name])
	case !fails && len(got) != 0:
		r.t.Errorf("%s: write-back records of a promotion in Git since the release: %v (commits %v), want none (Git named v2 already)", name, got, rec.inCommit[name])
	case !fails && (wb == nil || !slices.Contains(rec.since, wb.Commit)):
		r.t.Errorf("%s: status.writeBack %+v names no commit since the release", name, wb)
	}
}

// checkGitApp checks the image Git names for a: v1 with v3 recorded as
// failed after a rollback, v2 after a promotion.
func (r *shardRun) checkGitApp(a shardApp) {
	name := a.app.Name
	g, err := a.f.GitApp(r.ctx, a.app)
	if err != nil {
		r.t.Fatal(err)
	}
	switch fails := r.fails(name); {
	case fails && (g.Spec.Image != v1Image || stack.FailedImage(g, v3Image) == nil):
		r.t.Errorf("%s: Git names %s with failedImages %+v, want %s with %s recorded", name, g.Spec.Image, g.Spec.FailedImages, v1Image, v3Image)
	case !fails && g.Spec.Image != v2Image:
		r.t.Errorf("%s: Git names %s after the promotion, want %s", name, g.Spec.Image, v2Image)
	}
}

// checkArgoCD checks that Argo CD syncs the outcomes: the cluster agrees
// with Git.
func (r *shardRun) checkArgoCD() {
	for _, a := range r.apps {
		if err := a.f.RefreshAfterWriteBack(r.ctx, a.app); err != nil {
			r.t.Fatal(err)
		}
	}
	for _, a := range r.apps {
		stable := v2Image
		if r.fails(a.app.Name) {
			stable = v1Image
		}
		waitStable(r.ctx, r.t, a.f, a.app, stable)
	}
}

// checkLeaseChanges stops the Lease poller and checks that no shard passed
// between live processes: only the victim's shards moved, to a survivor,
// after the kill, and the poller missed no change.
func (r *shardRun) checkLeaseChanges() {
	changes, missed := r.watch.stop()
	for _, m := range missed {
		r.t.Errorf("the Lease poller missed a change: %s", m)
	}
	for _, ch := range changes {
		ok := ch.From.Holder == r.victim && r.victimShards[ch.Shard] && slices.Contains(r.survivors, ch.To.Holder) && !ch.To.Acquire.Before(r.killedAt)
		if !ok {
			r.t.Errorf("shard %d passed from %q to %q (seen %s after the kill): only the victim's shards may move, to a survivor, after the kill",
				ch.Shard, ch.From.Holder, ch.To.Holder, ch.Seen.Sub(r.killedAt).Round(time.Millisecond))
		}
	}
	r.t.Logf("the Lease poller saw %d holder changes in %d polls", len(changes), r.watch.polls())
}

// checkWorkSpans checks the processes' logs: every app reconciled, none by
// two processes at once, and each of the victim's apps worked on by the
// victim and, after the kill, by a survivor.
func (r *shardRun) checkWorkSpans() {
	spans := r.workSpansByApp()
	for _, name := range shardApps {
		list := spans[ns+"/"+name]
		if len(list) == 0 {
			r.t.Errorf("%s: no reconcile logged by any operator (--zap-log-level=2 logs \"Shard work started\")", name)
			continue
		}
		checkNoOverlap(r.t, name, list)
		if r.victimHolds(name) {
			if !slices.ContainsFunc(list, func(s workSpan) bool { return s.proc == r.victim }) {
				r.t.Errorf("%s: the victim never worked on its app", name)
			}
			if !slices.ContainsFunc(list, func(s workSpan) bool { return s.proc != r.victim && !s.start.Before(r.killedAt) }) {
				r.t.Errorf("%s: no survivor worked on the victim's app after the kill", name)
			}
		}
	}
}

// workSpansByApp reads every process's work spans, by app; the victim's
// unfinished ones end at the kill, the others' now.
func (r *shardRun) workSpansByApp() map[string][]workSpan {
	spans := map[string][]workSpan{}
	for id, p := range r.procs {
		end := time.Now()
		if id == r.victim {
			end = r.killedAt
		}
		for _, s := range p.workSpans(r.t, end) {
			spans[s.app] = append(spans[s.app], s)
		}
	}
	return spans
}

// checkNoOverlap fails the test for each two spans of the app's by two
// processes that overlap.
func checkNoOverlap(t *testing.T, name string, list []workSpan) {
	t.Helper()
	for i, a := range list {
		for _, b := range list[i+1:] {
			if a.proc != b.proc && b.start.Before(a.end) && a.start.Before(b.end) {
				t.Errorf("%s reconciled by %s (%s-%s) and %s (%s-%s) at once", name,
					a.proc, a.start.Format(time.StampMilli), a.end.Format(time.StampMilli), b.proc, b.start.Format(time.StampMilli), b.end.Format(time.StampMilli))
			}
		}
	}
}

// checkSurvivorsAlive checks that no survivor exited.
func (r *shardRun) checkSurvivorsAlive() {
	for _, id := range r.survivors {
		if exited, err := r.procs[id].op.Exited(); exited {
			r.t.Errorf("survivor %s exited: %v", id, err)
		}
	}
}

// shardProcess is one of the test's operator processes.
type shardProcess struct {
	id string
	op *stack.Operator
	// offset is where this run's lines start in the (appended) log.
	offset int64
}

// startShardOperator starts bin/manager with the suite's flags and
// --sharding as identity id; the test's cleanup stops it (SIGTERM to its
// PID, SIGKILL after stopTimeout) and waits for it to exit.
func startShardOperator(ctx context.Context, t *testing.T, id string) *shardProcess {
	t.Helper()
	p := &shardProcess{id: id}
	if fi, err := os.Stat(filepath.Join(env.LogsDir(), id+".log")); err == nil {
		p.offset = fi.Size()
	}
	args := []string{
		"--sharding", "--leader-elect=false", "--shards=" + strconv.Itoa(shardCount),
		"--shard-lease-duration=" + shardLeaseDuration.String(),
		"--shard-renew-deadline=" + shardRenewDeadline.String(),
		"--shard-retry-period=" + shardRetryPeriod.String(),
		// V(2) logs each reconcile's "Shard work started"/"done".
		"--zap-log-level=2", "--zap-encoder=json", "--zap-time-encoding=rfc3339nano",
	}
	o, err := stack.StartOperatorAs(ctx, env, id, args, []string{"POD_NAME=" + id})
	if err != nil {
		t.Fatal(err)
	}
	p.op = o
	opMu.Lock()
	extraOps[o] = true
	opMu.Unlock()
	t.Logf("%s started (pid %d), log %s", id, o.PID(), o.Log)
	t.Cleanup(func() {
		opMu.Lock()
		delete(extraOps, o)
		opMu.Unlock()
		if err := o.Stop(stopTimeout); err != nil {
			t.Error(err)
		}
	})
	return p
}

// workSpan is one reconcile of one app by one process, from its log.
type workSpan struct {
	proc, app  string
	start, end time.Time
}

// workSpans reads this run's "Shard work" lines; a reconcile not finished
// ends at end.
func (p *shardProcess) workSpans(t *testing.T, end time.Time) []workSpan {
	t.Helper()
	f, err := os.Open(p.op.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(p.offset, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	open := map[string]time.Time{}
	var out []workSpan
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg, Namespace, Name, ReconcileID, Controller string
			TS                                            time.Time
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || !strings.HasPrefix(l.Msg, "Shard work") {
			continue
		}
		key := l.Controller + "\x00" + l.Namespace + "/" + l.Name + "\x00" + l.ReconcileID
		if l.Msg == "Shard work started" {
			open[key] = l.TS
			continue
		}
		out = append(out, workSpan{proc: p.id, app: l.Namespace + "/" + l.Name, start: open[key], end: l.TS})
		delete(open, key)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for key, start := range open {
		out = append(out, workSpan{proc: p.id, app: strings.Split(key, "\x00")[1], start: start, end: end})
	}
	return out
}

// leaseState is a shard Lease's record.
type leaseState struct {
	Holder         string
	Renew, Acquire time.Time
	Transitions    int32
}

// readShardLeases reads the shard Leases (by shard number).
func readShardLeases(ctx context.Context, c client.Client) (map[int]leaseState, error) {
	var list coordinationv1.LeaseList
	if err := c.List(ctx, &list, client.InNamespace(shardLeaseNS)); err != nil {
		return nil, err
	}
	out := map[int]leaseState{}
	for _, l := range list.Items {
		n, ok := strings.CutPrefix(l.Name, shardLeasePrefix)
		if !ok {
			continue
		}
		s, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		st := leaseState{}
		if l.Spec.HolderIdentity != nil {
			st.Holder = *l.Spec.HolderIdentity
		}
		if l.Spec.RenewTime != nil {
			st.Renew = l.Spec.RenewTime.Time
		}
		if l.Spec.AcquireTime != nil {
			st.Acquire = l.Spec.AcquireTime.Time
		}
		if l.Spec.LeaseTransitions != nil {
			st.Transitions = *l.Spec.LeaseTransitions
		}
		out[s] = st
	}
	return out, nil
}

func describeHolders(leases map[int]leaseState) string {
	var b strings.Builder
	for s := range shardCount {
		h := leases[s].Holder
		if h == "" {
			h = "-"
		}
		fmt.Fprintf(&b, "%d:%s ", s, h)
	}
	return strings.TrimSpace(b.String())
}

// deleteShardLeases removes the shard and member Leases the test's
// operators left.
func deleteShardLeases(ctx context.Context, c client.Client) error {
	var list coordinationv1.LeaseList
	if err := c.List(ctx, &list, client.InNamespace(shardLeaseNS)); err != nil {
		return err
	}
	for i := range list.Items {
		l := &list.Items[i]
		if strings.HasPrefix(l.Name, shardLeasePrefix) || l.Labels[shard.LabelMember] == "true" {
			if err := c.Delete(ctx, l); client.IgnoreNotFound(err) != nil {
				return err
			}
		}
	}
	return nil
}

// leaseChange is a shard Lease that the poller saw name another holder.
type leaseChange struct {
	Shard    int
	From, To leaseState
	Seen     time.Time
}

// leaseWatcher polls the shard Leases. A Lease names one holder; two
// processes would work on one shard at once if it passed from a live
// holder to another without being released, or were taken from a dead
// one within its renew deadline: the test checks every change it saw.
// That it saw every change, the Leases' transition counts tell: each
// change of holder counts one.
type leaseWatcher struct {
	mu      sync.Mutex
	changes []leaseChange
	missed  []string
	n       int
	cancel  context.CancelFunc
	done    chan struct{}
}

// watchLeases polls until stop, or the test's end.
func watchLeases(ctx context.Context, t *testing.T, c client.Client, first map[int]leaseState) *leaseWatcher {
	ctx, cancel := context.WithCancel(ctx)
	w := &leaseWatcher{cancel: cancel, done: make(chan struct{})}
	t.Cleanup(func() { w.stop() })
	go func() {
		defer close(w.done)
		last := first
		for ctx.Err() == nil {
			now, err := readShardLeases(ctx, c)
			if err == nil {
				w.mu.Lock()
				w.n++
				for s := range shardCount {
					prev, cur := last[s], now[s]
					if cur.Holder != prev.Holder {
						w.changes = append(w.changes, leaseChange{Shard: s, From: prev, To: cur, Seen: time.Now()})
					}
					// Transitions count acquisitions by a new holder (a
					// release names none and keeps the count).
					wantMax := prev.Transitions
					if cur.Holder != prev.Holder && cur.Holder != "" {
						wantMax++
					}
					if cur.Transitions > wantMax {
						w.missed = append(w.missed, fmt.Sprintf("shard %d's Lease went from %d to %d transitions between two polls (%q to %q)",
							s, prev.Transitions, cur.Transitions, prev.Holder, cur.Holder))
					}
				}
				w.mu.Unlock()
				last = now
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return w
}

// stop ends the polling and returns the changes seen, and the changes it
// missed (as the transition counts tell).
func (w *leaseWatcher) stop() (changes []leaseChange, missed []string) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.changes), slices.Clone(w.missed)
}

func (w *leaseWatcher) polls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}
