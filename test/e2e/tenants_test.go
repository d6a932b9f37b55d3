//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/gitops/argocd"
	"github.com/atzedevries/canaryop/gitops/credentials"
	"github.com/atzedevries/canaryop/test/e2e/stack"
)

// Two tenants on one cluster (security review C1). Team B releases through
// its own repository and Argo CD; the attacker may only create CanaryApps in
// namespace evil, and knows team B's repository, folder, Application and
// image.
const (
	teamBNamespace = "team-b"
	// teamBRepo is one of the stack's GIT_EXTRA_REPOS (hack/e2e.sh).
	teamBRepo        = "team-b"
	teamBApplication = "team-b-payments"
	evilNamespace    = "evil"
	// tenantApp names team B's app and the attacker's, so that the
	// attacker's name matches team B's namespace-less document.
	tenantApp     = "payments"
	backdoorImage = "ghcr.io/attacker/backdoor:1"
)

// TestTenantIsolation: team B's CanaryApp is synced by Argo CD from its own
// repository into namespace team-b. An attacker in namespace evil points a
// CanaryApp's write-back at team B's manifest, (a) by naming the repository
// and folder in spec.gitops and (b) by forging Argo CD's tracking annotation
// and instance label, and makes its canary of team B's image fail so that
// the rollback would write the backdoor into team B's manifest. Each attack
// rolls back in the attacker's namespace, and its write-back is refused
// (WriteBackNotPermitted, Stalled) without a push: team B's refs never
// change. Then team B's own failed release is written back and synced.
func TestTenantIsolation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	repoURL, err := env.RepoURL(teamBRepo)
	if err != nil {
		t.Fatal(err)
	}
	tl := stack.NewTimeline(os.Stdout, "[team-b]")
	f, err := base.ForRepo(ctx, repoURL, "team-b", tl)
	if err != nil {
		t.Fatal(err)
	}
	app := stack.App{Name: tenantApp, Namespace: teamBNamespace, Dir: "apps/" + tenantApp, Application: teamBApplication, Project: teamBNamespace}
	onboardTeamB(ctx, t, f.Cluster, repoURL, app)
	startTeamTrafficsim(ctx, t, teamBNamespace, []string{app.Name})
	watch(ctx, t, tl, f, app.Namespace, app.Name, app.Application)
	watch(ctx, t, stack.NewTimeline(os.Stdout, "[evil]"), f, evilNamespace, tenantApp, "")

	m, err := stack.TenantManifest(env.Root, app.Name, app.Namespace, env.Get("PROM_URL"), f.Short)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.SeedManifest(ctx, app, m, v1Image); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "stable at "+v1Image, stack.IsStable(v1Image)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitSynced(ctx, app, syncTimeout); err != nil {
		t.Fatal(err)
	}

	before, err := f.Repo.Refs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pushes := pushesTo(t, teamBRepo)
	stopGuard := guardRefs(ctx, f.Repo, before)
	t.Cleanup(func() { stopGuard() }) // when an attack ends the test

	explicit := attacker()
	explicit.Spec.GitOps = &v1.GitOpsSpec{RepoURL: repoURL, Branch: env.Get("GIT_BRANCH"), Path: app.Dir, Promotion: v1.WriteCommit, Rollback: v1.WriteCommit}
	attack(ctx, t, f, "(a) spec.gitops names team B's repository and folder", explicit)

	forged := attacker()
	// What Argo CD would write on an object of team B's Application, in
	// both tracking modes; spec.gitops leaves the location to Argo CD.
	forged.Annotations = map[string]string{argocd.TrackingAnnotation: fmt.Sprintf("%s:%s/CanaryApp:%s/%s", teamBApplication, v1.GroupVersion.Group, evilNamespace, tenantApp)}
	forged.Labels = map[string]string{argocd.InstanceLabel: teamBApplication}
	forged.Spec.GitOps = &v1.GitOpsSpec{Promotion: v1.WriteCommit, Rollback: v1.WriteCommit}
	attack(ctx, t, f, "(b) forged tracking annotation and instance label name team B's Application", forged)

	for _, change := range stopGuard() {
		t.Errorf("team B's refs changed during the attacks: %s", change)
	}
	if after, err := f.Repo.Refs(ctx); err != nil {
		t.Error(err)
	} else if d := diffRefs(before, after); d != "" {
		t.Errorf("team B's refs after the attacks: %s", d)
	}
	if n := pushesTo(t, teamBRepo); n != pushes {
		t.Errorf("the Git server answered %d push requests for %s during the attacks, want none", n-pushes, teamBRepo)
	}
	b, err := f.Cluster.CanaryApp(ctx, app.Namespace, app.Name)
	if err != nil {
		t.Fatal(err)
	}
	if b.Spec.Image != v1Image || len(b.Spec.FailedImages) > 0 || b.Status.StableImage != v1Image || b.Status.CanaryImage != "" {
		t.Errorf("team B's app after the attacks: spec %s, failed %v, stable %s, canary %q; want %s untouched",
			b.Spec.Image, b.Spec.FailedImages, b.Status.StableImage, b.Status.CanaryImage, v1Image)
	}

	// Team B's own release of v3 fails: its rollback is written back
	// through the Application that proves where team B's manifest lives.
	if _, err := f.WaitSynced(ctx, app, syncTimeout); err != nil {
		t.Fatal(err)
	}
	v3Commit, err := f.Release(ctx, app, v3Image)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "a canary of v3 taking traffic", stack.IsCanary(v3Image, 10)); err != nil {
		t.Fatal(err)
	}
	a, err := f.WaitCanaryApp(ctx, app, canaryTimeout, "v3 rolled back and written back", stack.HasWrittenBack(v1.OutcomeRolledBack, v1Image))
	if err != nil {
		t.Fatal(err)
	}
	if wb := a.Status.WriteBack; wb.FailedImage != v3Image {
		t.Errorf("status.writeBack.failedImage = %q, want %q", wb.FailedImage, v3Image)
	}
	commits, err := f.Repo.Log(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	rollback := commits[0]
	if rollback.SHA != a.Status.WriteBack.Commit || rollback.Author != "canaryop" || commits[1].SHA != v3Commit.SHA {
		t.Errorf("team B's Git log after the rollback: %+v; want canaryop's commit %s on top of the v3 release %s", commits, a.Status.WriteBack.Commit, v3Commit.Short())
	}
	if !strings.Contains(rollback.Subject, ":v3") || !strings.Contains(rollback.Subject, ":v1") {
		t.Errorf("rollback commit subject %q names neither :v1 nor :v3", rollback.Subject)
	}
	g, err := f.GitApp(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if g.Spec.Image != v1Image || g.Namespace != "" {
		t.Errorf("team B's manifest after the rollback: image %s, namespace %q; want %s, still without a namespace", g.Spec.Image, g.Namespace, v1Image)
	}
	if fi := stack.FailedImage(g, v3Image); fi == nil || fi.Reason == "" {
		t.Errorf("team B's spec.failedImages after the rollback = %+v, want %s with a reason", g.Spec.FailedImages, v3Image)
	}
	// Only the branch moved, to canaryop's commit: no branch of its own.
	after, err := f.Repo.Refs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := maps.Clone(before)
	for ref, sha := range before {
		if sha == before["refs/heads/"+env.Get("GIT_BRANCH")] {
			want[ref] = rollback.SHA
		}
	}
	if d := diffRefs(want, after); d != "" {
		t.Errorf("team B's refs after its write-back, against the branch moved to %s: %s", rollback.Short(), d)
	}
	// The pushes of team B and canaryop are in the log: pushesTo sees them.
	if n := pushesTo(t, teamBRepo); n <= pushes {
		t.Errorf("the Git server's log holds no push to %s after team B's release and write-back; pushesTo counts nothing", teamBRepo)
	}
	// Argo CD syncs canaryop's commit (WaitSynced refreshes the Application
	// until it has seen it, as the Git server's webhook would).
	st, err := f.WaitSynced(ctx, app, syncTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if st.Revision != rollback.SHA {
		t.Errorf("Argo CD synced %s, want canaryop's rollback commit %s", st.ShortRevision(), rollback.Short())
	}
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "spec v1 with v3 failed (from Git), stable v1", func(a *v1.CanaryApp, w stack.Weights) bool {
		return a.Spec.Image == v1Image && stack.FailedImage(a, v3Image) != nil && stack.IsStable(v1Image)(a, w)
	}); err != nil {
		t.Fatal(err)
	}
}

// onboardTeamB is what the platform admin sets up for team B: its
// namespace, an AppProject that syncs only CanaryApps, only from team B's
// repository, only into team-b, the Application, and a credential Secret
// for team B's repository scoped to namespace team-b, its app's folder, the
// branch and direct commits. The stack's Secret for the whole Git server
// (no namespaces key: Argo CD provenance only) covers the repository too.
// Namespace evil is the attacker's, with nothing for it.
func onboardTeamB(ctx context.Context, t *testing.T, c *stack.Cluster, repoURL string, app stack.App) {
	t.Helper()
	for _, ns := range []string{teamBNamespace, evilNamespace} {
		if err := c.EnsureNamespace(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.ApplyTeamProject(ctx, app.Project, repoURL, teamBNamespace); err != nil {
		t.Fatal(err)
	}
	err := c.GiveGitCredentials(ctx, "git-team-b", repoURL, map[string]string{
		credentials.KeyNamespaces: teamBNamespace,
		credentials.KeyPaths:      "apps/{name}",
		credentials.KeyBranches:   env.Get("GIT_BRANCH"),
		credentials.KeyWriteModes: string(v1.WriteCommit),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// watch prints the changes of one app on tl until the test ends.
func watch(ctx context.Context, t *testing.T, tl *stack.Timeline, f *stack.Flow, ns, name, application string) {
	watchCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tl.Watch(watchCtx, f.Cluster, f.Repo, ns, name, application)
	}()
	t.Cleanup(func() {
		stop()
		<-done
	})
}

// attacker is the attacker's CanaryApp, created in namespace evil with the
// API (Argo CD knows nothing of it), stable at the backdoor image. Its
// query always returns a sample, so any canary fails at its first check:
// the attacker needs neither traffic nor team B's metrics.
func attacker() *v1.CanaryApp {
	return &v1.CanaryApp{
		ObjectMeta: metav1.ObjectMeta{Name: tenantApp, Namespace: evilNamespace},
		Spec: v1.CanaryAppSpec{
			Image:           backdoorImage,
			ImageListenPort: 8088,
			Replicas:        1,
			TestReplicas:    1,
			PrometheusQuery: "vector(1)",
			PrometheusURL:   env.Get("PROM_URL"),
			Analysis: &v1.AnalysisSpec{
				Interval:      &metav1.Duration{Duration: 5 * time.Second},
				CheckInterval: &metav1.Duration{Duration: time.Second},
			},
		},
	}
}

// attack creates a, waits until it runs the backdoor, then canaries team
// B's image, which fails: the rollback to the backdoor is the outcome that,
// written back, would put the backdoor into team B's manifest (which names
// team B's image, the failed one) and team B's image into its failedImages.
// It must roll back in namespace evil and its write-back must be refused
// for good. The app is deleted at the end.
func attack(ctx context.Context, t *testing.T, f *stack.Flow, variant string, a *v1.CanaryApp) {
	t.Helper()
	c := f.Cluster.Client
	f.Timeline.Note("attack", "%s", variant)
	if err := c.Create(ctx, a); err != nil {
		t.Fatalf("%s: creating %s/%s: %v", variant, a.Namespace, a.Name, err)
	}
	defer deleteAndWait(ctx, t, f, a)
	target := stack.App{Name: a.Name, Namespace: a.Namespace}
	if _, err := f.WaitCanaryApp(ctx, target, syncTimeout, "stable at "+backdoorImage, stack.IsStable(backdoorImage)); err != nil {
		t.Fatalf("%s: %v", variant, err)
	}
	patch := client.RawPatch("application/merge-patch+json", []byte(fmt.Sprintf(`{"spec":{"image":%q}}`, v1Image)))
	if err := c.Patch(ctx, a, patch); err != nil {
		t.Fatalf("%s: %v", variant, err)
	}
	var got *v1.CanaryApp
	err := stack.Eventually(ctx, canaryTimeout, 200*time.Millisecond, "rolled back to the backdoor with its write-back refused",
		func(ctx context.Context) (bool, string, error) {
			a, err := f.Cluster.CanaryApp(ctx, target.Namespace, target.Name)
			if err != nil {
				return false, "", err
			}
			w, err := f.Cluster.VirtualServiceWeights(ctx, target.Namespace, target.Name)
			if err != nil {
				return false, "", err
			}
			got = a
			if wb := a.Status.WriteBack; wb != nil && (wb.Commit != "" || wb.PullRequestURL != "") {
				return false, "", stack.Stop(fmt.Errorf("the attacker's write-back was done: commit %q, pull request %q: %s", wb.Commit, wb.PullRequestURL, wb.Message))
			}
			return refused(backdoorImage, v1Image)(a, w), fmt.Sprintf("%s; writeBack %+v; conditions %v", w, a.Status.WriteBack, a.Status.Conditions), nil
		})
	if err != nil {
		t.Fatalf("%s: %v", variant, err)
	}
	failed := false
	for _, ch := range got.Status.Checks {
		failed = failed || (ch.Image == v1Image && ch.Verdict == v1.CheckFail)
	}
	if !failed || !got.IsFailedImage(v1Image) {
		t.Errorf("%s: no failed check of %s and no failure record: checks %+v, failedImages %+v", variant, v1Image, got.Status.Checks, got.Status.FailedImages)
	}
	wb := got.Status.WriteBack
	t.Logf("%s: refused after %d attempt(s): %s", variant, wb.Attempts, wb.Error)
	if strings.Contains(wb.Error+wb.Message, env.Get("GIT_TOKEN")) {
		t.Errorf("%s: status.writeBack holds the Git token", variant)
	}
}

// refused: the app rolled back to stable in the cluster (all traffic to the
// primary, no canary), the outcome is pending with a write-back that a
// person must fix (WriteBack False and Stalled True, both
// WriteBackNotPermitted), and no commit.
func refused(stable, failed string) func(*v1.CanaryApp, stack.Weights) bool {
	return func(a *v1.CanaryApp, w stack.Weights) bool {
		wb := a.Status.WriteBack
		return a.Status.StableImage == stable && a.Status.CanaryImage == "" && w.Found && w.Primary == 100 && w.Canary == 0 &&
			wb != nil && wb.Outcome == v1.OutcomeRolledBack && wb.Image == stable && wb.FailedImage == failed &&
			wb.Pending && wb.Stalled && wb.ErrorReason == v1.ReasonWriteBackNotPermitted && wb.Commit == "" &&
			stack.ConditionStatus(a, v1.ConditionWriteBack) == metav1.ConditionFalse &&
			stack.ConditionReason(a, v1.ConditionWriteBack) == v1.ReasonWriteBackNotPermitted &&
			stack.ConditionStatus(a, v1.ConditionStalled) == metav1.ConditionTrue &&
			stack.ConditionReason(a, v1.ConditionStalled) == v1.ReasonWriteBackNotPermitted
	}
}

// ownedKinds are the kinds of the objects the operator makes for an app.
var ownedKinds = []schema.GroupVersionKind{
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Version: "v1", Kind: "Service"},
	{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRule"},
	{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"},
}

// deleteAndWait deletes a and the objects it owns and waits until they are
// gone, so that the next attacker app can take its name (objects owned by
// the old one would be foreign to it). The owned objects are deleted here
// rather than left to the garbage collector, which acts only once it
// watches CanaryApps, up to half a minute after their CRD appeared.
func deleteAndWait(ctx context.Context, t *testing.T, f *stack.Flow, a *v1.CanaryApp) {
	t.Helper()
	c := f.Cluster.Client
	if err := c.Delete(ctx, a); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting %s/%s: %v", a.Namespace, a.Name, err)
		return
	}
	err := stack.Eventually(ctx, syncTimeout, 200*time.Millisecond, fmt.Sprintf("%s/%s and its objects to be deleted", a.Namespace, a.Name),
		func(ctx context.Context) (bool, string, error) {
			left := []string{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(a), &v1.CanaryApp{}); !apierrors.IsNotFound(err) {
				left = append(left, "CanaryApp "+a.Name)
			}
			for _, gvk := range ownedKinds {
				list := &unstructured.UnstructuredList{}
				list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
				if err := c.List(ctx, list, client.InNamespace(a.Namespace)); err != nil {
					return false, "", err
				}
				for i := range list.Items {
					o := &list.Items[i]
					if !slices.ContainsFunc(o.GetOwnerReferences(), func(r metav1.OwnerReference) bool { return r.UID == a.UID }) {
						continue
					}
					left = append(left, gvk.Kind+" "+o.GetName())
					if err := c.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
						return false, "", err
					}
				}
			}
			return len(left) == 0, "left: " + strings.Join(left, ", "), nil
		})
	if err != nil {
		t.Error(err)
	}
}

// guardRefs polls the repository's refs until the returned function is
// called (again: a no-op), which returns every difference from want it saw.
func guardRefs(ctx context.Context, repo *stack.Repo, want map[string]string) func() []string {
	ctx, cancel := context.WithCancel(ctx)
	var (
		mu   sync.Mutex
		seen []string
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			if refs, err := repo.Refs(ctx); err == nil {
				if d := diffRefs(want, refs); d != "" {
					mu.Lock()
					if len(seen) == 0 || seen[len(seen)-1] != d {
						seen = append(seen, d)
					}
					mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() []string {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

// diffRefs describes how got differs from want ("" when equal).
func diffRefs(want, got map[string]string) string {
	var d []string
	for _, ref := range slices.Sorted(maps.Keys(want)) {
		switch sha, ok := got[ref]; {
		case !ok:
			d = append(d, ref+" deleted")
		case sha != want[ref]:
			d = append(d, fmt.Sprintf("%s moved %.7s -> %.7s", ref, want[ref], sha))
		}
	}
	for _, ref := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[ref]; !ok {
			d = append(d, fmt.Sprintf("%s created at %.7s", ref, got[ref]))
		}
	}
	return strings.Join(d, ", ")
}

// pushesTo counts the push requests (git-receive-pack, answered or refused)
// the Git server logged for repository name.
func pushesTo(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(env.LogsDir(), "gitserver.log"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(line, "path=/"+name+".git/") && strings.Contains(line, "git-receive-pack") {
			n++
		}
	}
	return n
}
