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

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	procs := map[string]*shardProcess{}
	for _, id := range shardOperators {
		procs[id] = startShardOperator(ctx, t, id)
	}
	c := base.Cluster.Client
	var leases map[int]leaseState
	err := stack.Eventually(ctx, time.Minute, 200*time.Millisecond, "the three operators to share the shards as rendezvous hashing assigns them",
		func(ctx context.Context) (bool, string, error) {
			var err error
			if leases, err = readShardLeases(ctx, c); err != nil {
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
		t.Fatal(err)
	}
	t.Logf("shard holders: %s", describeHolders(leases))
	watch := watchLeases(ctx, t, c, leases)

	// The apps, each in its own folder with its own Application.
	type shardApp struct {
		f   *stack.Flow
		app stack.App
	}
	var all []shardApp
	for _, name := range shardApps {
		_, f, app := start(t, name)
		if _, err := f.Seed(ctx, app, v1Image); err != nil {
			t.Fatal(err)
		}
		all = append(all, shardApp{f, app})
	}
	for _, a := range all {
		waitStable(ctx, t, a.f, a.app, v1Image)
	}

	// Who holds which app, as the Leases say; the victim holds the most.
	if leases, err = readShardLeases(ctx, c); err != nil {
		t.Fatal(err)
	}
	byHolder := map[string][]string{}
	for _, name := range shardApps {
		h := leases[shard.Of(ns, name, shardCount)].Holder
		byHolder[h] = append(byHolder[h], name)
	}
	victim := ""
	for _, id := range shardOperators {
		if victim == "" || len(byHolder[id]) > len(byHolder[victim]) {
			victim = id
		}
	}
	var survivors []string
	for _, id := range shardOperators {
		if id != victim {
			survivors = append(survivors, id)
		}
	}
	// v3 fails its analysis: one app of a survivor gets it, and one of the
	// victim's when it holds more than one, so that a survivor takes over
	// a failing canary too. A promotion writes no commit (Git names the
	// image since the release); a rollback writes one.
	var failing []string
	for _, name := range shardApps {
		if !slices.Contains(byHolder[victim], name) {
			failing = append(failing, name)
			break
		}
	}
	if n := len(byHolder[victim]); n > 1 {
		failing = append(failing, byHolder[victim][n-1])
	}
	if len(byHolder[victim]) == 0 || len(failing) == 0 {
		t.Fatalf("the apps are not spread over the operators: %v", byHolder)
	}
	t.Logf("apps per operator: %v; the victim is %s; %v get the failing v3", byHolder, victim, failing)
	victimShards := map[int]bool{}
	for s := range shardCount {
		if leases[s].Holder == victim {
			victimShards[s] = true
		}
	}

	// Release: v2 for all but one, v3 (fails its analysis) for that one.
	before, err := base.Repo.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, a := range all {
		want[a.app.Name] = v2Image
		if slices.Contains(failing, a.app.Name) {
			want[a.app.Name] = v3Image
		}
		if _, err := a.f.Release(ctx, a.app, want[a.app.Name]); err != nil {
			t.Fatal(err)
		}
	}
	atKill := map[string]*v1.CanaryApp{}
	for _, a := range all {
		if !slices.Contains(byHolder[victim], a.app.Name) {
			continue
		}
		// v2 at weight 20; v3 (which failed at 20 or 30 so far) as soon as
		// it runs, or, should it fail first, rolled back by the victim.
		what, cond := "a canary of v2 at weight 20 or more", stack.IsCanary(v2Image, 20)
		if want[a.app.Name] == v3Image {
			what = "a canary of v3 taking traffic, or rolled back"
			cond = func(got *v1.CanaryApp, w stack.Weights) bool {
				return stack.IsCanary(v3Image, 10)(got, w) || stack.HasWrittenBack(v1.OutcomeRolledBack, v1Image)(got, w)
			}
		}
		got, err := a.f.WaitCanaryApp(ctx, a.app, canaryTimeout, what, cond)
		if err != nil {
			t.Fatal(err)
		}
		atKill[a.app.Name] = got
	}

	// SIGKILL the victim.
	killedAt := time.Now()
	procs[victim].op.Kill()
	for _, a := range all {
		a.f.Timeline.Note("test", "%s SIGKILLed (pid %d)", victim, procs[victim].op.PID())
	}
	for name := range atKill {
		// Re-read: the victim may have stepped between the wait and the kill.
		if atKill[name], err = base.Cluster.CanaryApp(ctx, ns, name); err != nil {
			t.Fatal(err)
		}
		st := atKill[name].Status
		t.Logf("at the kill %s was %s: canary %s at weight %d", name, st.Phase, stack.Tag(st.CanaryImage), st.CanaryWeight)
	}
	final, err := readShardLeases(ctx, c)
	if err != nil {
		t.Fatal(err)
	}

	// Its shards move to the survivors once its Leases expire.
	var moved map[int]leaseState
	err = stack.Eventually(ctx, shardLeaseDuration+20*time.Second, 100*time.Millisecond, "the survivors to take the victim's shards",
		func(ctx context.Context) (bool, string, error) {
			var err error
			if moved, err = readShardLeases(ctx, c); err != nil {
				return false, "", err
			}
			for s := range victimShards {
				if !slices.Contains(survivors, moved[s].Holder) {
					return false, describeHolders(moved), nil
				}
			}
			return true, "", nil
		})
	if err != nil {
		t.Fatal(err)
	}
	seen := time.Since(killedAt)
	var takeover time.Duration
	for s := range victimShards {
		l := moved[s]
		takeover = max(takeover, l.Acquire.Sub(killedAt))
		if want := shard.Owner(s, survivors); l.Holder != want {
			t.Errorf("shard %d went to %s, rendezvous hashing gives it to %s", s, l.Holder, want)
		}
		// The victim would have worked on until its renew deadline: no
		// one may take the shard before that.
		if last := final[s].Renew; l.Acquire.Before(last.Add(shardRenewDeadline)) {
			t.Errorf("shard %d taken by %s at %s, within the renew deadline of the victim's last renew %s",
				s, l.Holder, l.Acquire.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano))
		}
	}
	mid := 0
	for _, a := range atKill {
		if a.Status.CanaryImage != "" {
			mid++
		}
	}
	t.Logf("the %d shards of SIGKILLed %s (%d apps, %d mid-canary) were taken over %.1fs after the kill (by the Leases' acquire times; seen after %.1fs), lease duration %s",
		len(victimShards), victim, len(atKill), mid, takeover.Seconds(), seen.Seconds(), shardLeaseDuration)

	// Every canary ends as it would have; the victim's resume where they were.
	var wg sync.WaitGroup
	errs := make(chan error, len(all))
	for _, a := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cond := stack.HasWrittenBack(v1.OutcomePromoted, v2Image)
			what := "v2 promoted and written back"
			if slices.Contains(failing, a.app.Name) {
				cond, what = stack.HasWrittenBack(v1.OutcomeRolledBack, v1Image), "v3 rolled back and written back"
			}
			var restarted []string
			k := atKill[a.app.Name]
			_, err := a.f.WaitCanaryApp(ctx, a.app, canaryTimeout, what, func(got *v1.CanaryApp, w stack.Weights) bool {
				if st := got.Status; k != nil && k.Status.CanaryImage != "" && st.CanaryImage == k.Status.CanaryImage {
					if st.CanaryWeight < k.Status.CanaryWeight {
						restarted = append(restarted, fmt.Sprintf("weight %d", st.CanaryWeight))
					}
					if st.CanaryStartedAt != nil && k.Status.CanaryStartedAt != nil && !st.CanaryStartedAt.Equal(k.Status.CanaryStartedAt) {
						restarted = append(restarted, "canaryStartedAt "+st.CanaryStartedAt.String())
					}
				}
				return cond(got, w)
			})
			if err == nil && len(restarted) > 0 {
				err = fmt.Errorf("%s: the canary started over after the takeover (weight %d at the kill): %v", a.app.Name, k.Status.CanaryWeight, restarted)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Git holds each outcome: each rollback in exactly one commit of
	// canaryop's (no duplicate from the victim and its successor), no
	// commit for a promotion (Git names v2 since the release).
	commits, err := base.Repo.Log(ctx, 200)
	if err != nil {
		t.Fatal(err)
	}
	var since []string                // the commits since the release's parent
	outcomes := map[string][]string{} // app: the outcome of each trailer block naming it
	inCommit := map[string][]string{} // app: the commits naming it
	found := false
	for _, cm := range commits {
		if cm.SHA == before.SHA {
			found = true
			break
		}
		since = append(since, cm.SHA)
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
			outcomes[name] = append(outcomes[name], outcome)
			inCommit[name] = append(inCommit[name], cm.SHA)
		}
	}
	if !found {
		t.Fatalf("the release's parent %s is not among the newest %d commits", before.Short(), len(commits))
	}
	for _, a := range all {
		name := a.app.Name
		fails := slices.Contains(failing, name)
		st, err := base.Cluster.CanaryApp(ctx, ns, name)
		if err != nil {
			t.Fatal(err)
		}
		wb := st.Status.WriteBack
		switch got := outcomes[name]; {
		case fails && (len(got) != 1 || got[0] != string(v1.OutcomeRolledBack)):
			t.Errorf("%s: write-back records in Git since the release: %v (commits %v), want exactly one %s", name, got, inCommit[name], v1.OutcomeRolledBack)
		case fails && (wb == nil || wb.Commit != inCommit[name][0]):
			t.Errorf("%s: status.writeBack %+v does not name the commit that records the rollback, %v", name, wb, inCommit[name])
		case !fails && len(got) != 0:
			t.Errorf("%s: write-back records of a promotion in Git since the release: %v (commits %v), want none (Git named v2 already)", name, got, inCommit[name])
		case !fails && (wb == nil || !slices.Contains(since, wb.Commit)):
			t.Errorf("%s: status.writeBack %+v names no commit since the release", name, wb)
		}
		g, err := a.f.GitApp(ctx, a.app)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case fails && (g.Spec.Image != v1Image || stack.FailedImage(g, v3Image) == nil):
			t.Errorf("%s: Git names %s with failedImages %+v, want %s with %s recorded", name, g.Spec.Image, g.Spec.FailedImages, v1Image, v3Image)
		case !fails && g.Spec.Image != v2Image:
			t.Errorf("%s: Git names %s after the promotion, want %s", name, g.Spec.Image, v2Image)
		}
	}
	t.Logf("write-back records since the release: %v", inCommit)

	// Argo CD syncs the outcomes: the cluster agrees with Git.
	for _, a := range all {
		if err := a.f.RefreshAfterWriteBack(ctx, a.app); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range all {
		stable := v2Image
		if slices.Contains(failing, a.app.Name) {
			stable = v1Image
		}
		waitStable(ctx, t, a.f, a.app, stable)
	}

	// No shard passed between live processes; the logs show no app
	// reconciled by two processes at once.
	changes, missed := watch.stop()
	for _, m := range missed {
		t.Errorf("the Lease poller missed a change: %s", m)
	}
	for _, ch := range changes {
		ok := ch.From.Holder == victim && victimShards[ch.Shard] && slices.Contains(survivors, ch.To.Holder) && !ch.To.Acquire.Before(killedAt)
		if !ok {
			t.Errorf("shard %d passed from %q to %q (seen %s after the kill): only the victim's shards may move, to a survivor, after the kill",
				ch.Shard, ch.From.Holder, ch.To.Holder, ch.Seen.Sub(killedAt).Round(time.Millisecond))
		}
	}
	t.Logf("the Lease poller saw %d holder changes in %d polls", len(changes), watch.polls())
	spans := map[string][]workSpan{}
	for id, p := range procs {
		end := time.Now()
		if id == victim {
			end = killedAt
		}
		for _, s := range p.workSpans(t, end) {
			spans[s.app] = append(spans[s.app], s)
		}
	}
	for _, name := range shardApps {
		list := spans[ns+"/"+name]
		if len(list) == 0 {
			t.Errorf("%s: no reconcile logged by any operator (--zap-log-level=2 logs \"Shard work started\")", name)
			continue
		}
		for i, a := range list {
			for _, b := range list[i+1:] {
				if a.proc != b.proc && b.start.Before(a.end) && a.start.Before(b.end) {
					t.Errorf("%s reconciled by %s (%s-%s) and %s (%s-%s) at once", name,
						a.proc, a.start.Format(time.StampMilli), a.end.Format(time.StampMilli), b.proc, b.start.Format(time.StampMilli), b.end.Format(time.StampMilli))
				}
			}
		}
		if slices.Contains(byHolder[victim], name) {
			if !slices.ContainsFunc(list, func(s workSpan) bool { return s.proc == victim }) {
				t.Errorf("%s: the victim never worked on its app", name)
			}
			if !slices.ContainsFunc(list, func(s workSpan) bool { return s.proc != victim && !s.start.Before(killedAt) }) {
				t.Errorf("%s: no survivor worked on the victim's app after the kill", name)
			}
		}
	}
	for _, id := range survivors {
		if exited, err := procs[id].op.Exited(); exited {
			t.Errorf("survivor %s exited: %v", id, err)
		}
	}
	t.Logf("test took %.0fs", time.Since(began).Seconds())
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
