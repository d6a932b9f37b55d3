package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/controllers"
	"github.com/atzedevries/canaryop/gitops"
	"github.com/atzedevries/canaryop/gitops/argocd"
	"github.com/atzedevries/canaryop/gitops/credentials"
	"github.com/atzedevries/canaryop/gitops/gitrepo"
)

// syncedAt makes Argo CD report the Application synced at rev, with the
// revisions before it in its history.
func syncedAt(g Gomega, app *unstructured.Unstructured, rev string, history ...string) {
	cur := app.DeepCopy()
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(app), cur)).To(Succeed())
	var h []any
	for i, r := range append(history, rev) {
		h = append(h, map[string]any{"id": int64(i), "revision": r})
	}
	g.Expect(unstructured.SetNestedField(cur.Object, rev, "status", "sync", "revision")).To(Succeed())
	g.Expect(unstructured.SetNestedSlice(cur.Object, h, "status", "history")).To(Succeed())
	g.Expect(env.Client.Update(context.Background(), cur)).To(Succeed())
}

// commitStatusSetup runs the operator with commit statuses against the
// GitHub stand-in, team B's Application managing team B's app.
func commitStatusSetup(t *testing.T, g *WithT) (repo *gitRepo, github *fakeGitHub, prom *fakeProm, teamB string, application *unstructured.Unstructured) {
	t.Helper()
	installApplicationCRD(t, g)
	repo, github, prom = newGitRepo(t), newFakeGitHub(t), newFakeProm(t)
	argoNS, credsNS := env.NewNamespace(t), env.NewNamespace(t)
	teamB = env.NewNamespace(t)
	secret := scopedCredentialSecret(credsNS, repo, teamB)
	secret.StringData["githubAPIURL"] = github.URL + "/api/v3/"
	g.Expect(env.Client.Create(context.Background(), secret)).To(Succeed())
	application = teamBApplication(argoNS, teamB, repo)
	g.Expect(env.Client.Create(context.Background(), application)).To(Succeed())
	cache, err := gitrepo.New(gitrepo.Options{Dir: t.TempDir()})
	g.Expect(err).NotTo(HaveOccurred())
	w, err := gitops.New(gitops.Options{Cache: cache, Credentials: credentials.New(env.Client, credsNS), Discoverer: argocd.New(env.Client, argoNS)})
	g.Expect(err).NotTo(HaveOccurred())
	startManagerOpts(t, managerConfig(), controllers.Options{Writer: w, CommitStatuses: w})
	return repo, github, prom, teamB, application
}

func managedApp(a *v1.CanaryApp) {
	a.Spec.GitOps = &v1.GitOpsSpec{}
	a.Labels = map[string]string{argocd.InstanceLabel: "team-b-sample"}
}

func recordOf(g Gomega, app *v1.CanaryApp) v1.CommitStatusReport {
	if rec := get(g, app).Status.CommitStatus; rec != nil {
		return *rec
	}
	return v1.CommitStatusReport{}
}

func statusesOn(github *fakeGitHub, sha string) []string {
	var out []string
	for _, s := range github.commitStatuses() {
		if rest, ok := strings.CutPrefix(s, sha+" "); ok {
			out = append(out, rest)
		}
	}
	return out
}

// The verdict of each canary lands on the commit of its change, the one
// Argo CD synced when the canary started: pending during the analysis,
// success on promotion, failure on rollback, in the app's own context,
// however the branch moves meanwhile.
func TestCommitStatusOnTheChange(t *testing.T) {
	g := NewWithT(t)
	_, github, prom, teamB, application := commitStatusSetup(t, g)
	const shaV2, shaV3, later = "2222222222222222222222222222222222222222", "3333333333333333333333333333333333333333", "4444444444444444444444444444444444444444"
	statusContext := "canaryop/canary/" + teamB + "/" + appName
	prom.set("good")
	_, app := stableAppIn(t, g, teamB, prom.URL, managedApp)

	syncedAt(g, application, shaV2)
	setImage(g, app, image("v2"))
	g.Eventually(func(g Gomega) string { return get(g, app).Status.StableImage }, timeout, poll).Should(Equal(image("v2")))
	g.Eventually(func() []string { return statusesOn(github, shaV2) }, timeout, poll).Should(ContainElement(
		HavePrefix("success " + statusContext + " promoted :v2 after ")))
	got := statusesOn(github, shaV2)
	g.Expect(got[0]).To(HavePrefix("pending " + statusContext + " canary :v2 at "))
	// GitHub has the post before status records it.
	g.Eventually(func(g Gomega) string { return recordOf(g, app).State }, timeout, poll).Should(Equal("success"))
	rec := get(g, app).Status.CommitStatus
	g.Expect(rec).NotTo(BeNil())
	g.Expect(rec.Revision).To(Equal(shaV2))
	g.Expect(rec.Repository).To(Equal("team/apps"))
	g.Expect(rec.State).To(Equal("success"))
	g.Expect(toJSON(rec)).NotTo(ContainSubstring("GitHub's own words"))

	// v3 is committed; while its canary runs, the write-back of another
	// app moves the branch on: the verdict still goes to v3's commit.
	patchApp(g, app, holdAtFirstStep)
	syncedAt(g, application, shaV3, shaV2)
	setImage(g, app, image("v3"))
	g.Eventually(func() []string { return statusesOn(github, shaV3) }, timeout, poll).Should(ContainElement("pending " + statusContext + " canary :v3 at 25% of traffic"))
	syncedAt(g, application, later, shaV2, shaV3)
	prom.set("bad")
	g.Eventually(func() []string { return statusesOn(github, shaV3) }, timeout, poll).Should(ContainElement(
		HavePrefix("failure " + statusContext + " rolled back :v3: ")))
	g.Expect(statusesOn(github, later)).To(BeEmpty())
	g.Expect(toJSON(get(g, app).Status)).NotTo(ContainSubstring(plantedToken))
}

// SECURITY: an author cannot aim the admin's GitHub token at another
// team's commits. A CanaryApp in another namespace that names team B's
// Application in its tracking label posts nothing (the Application does not
// manage it); a forged status.commitStatus naming a commit team B's
// Application never synced is refused: with gitops.Report's
// synced-revision check taken out, the rollback's failure is posted on the
// forged commit and this test fails.
func TestTenantCannotPostOnAnotherCommit(t *testing.T) {
	g := NewWithT(t)
	_, github, prom, teamB, application := commitStatusSetup(t, g)
	const shaV2, foreign = "2222222222222222222222222222222222222222", "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
	syncedAt(g, application, shaV2)
	prom.set("good")

	// A tenant elsewhere names team B's Application.
	_, evil := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) { managedApp(a); holdAtFirstStep(a) })
	setImage(g, evil, image("v2"))
	g.Eventually(func(g Gomega) *v1.CommitStatusReport { return get(g, evil).Status.CommitStatus }, timeout, poll).Should(And(
		Not(BeNil()),
		WithTransform(func(r *v1.CommitStatusReport) string { return r.Reason }, Equal(v1.ReasonCommitStatusNotPermitted)),
	))
	g.Expect(github.commitStatuses()).To(BeEmpty(), "nothing posted for an app team B's Application does not manage")

	// Team B's own app, with a forged record aiming at a foreign commit.
	_, app := stableAppIn(t, g, teamB, prom.URL, func(a *v1.CanaryApp) { managedApp(a); holdAtFirstStep(a) })
	setImage(g, app, image("v2"))
	g.Eventually(func(g Gomega) string { return recordOf(g, app).Description }, timeout, poll).Should(Equal("canary :v2 at 25% of traffic"))
	cur := get(g, app)
	base := cur.DeepCopy()
	cur.Status.CommitStatus.Revision, cur.Status.CommitStatus.Description = foreign, "forged"
	g.Expect(env.Client.Status().Patch(context.Background(), cur, client.MergeFrom(base))).To(Succeed())
	prom.set("bad")
	g.Eventually(func(g Gomega) string { return recordOf(g, app).Reason }, timeout, poll).Should(Equal(v1.ReasonCommitStatusNotPermitted), func() string { return toJSON(get(g, app).Status) + "\n" + strings.Join(github.commitStatuses(), "\n") })
	g.Consistently(func() []string { return statusesOn(github, foreign) }, 3*time.Second, 300*time.Millisecond).Should(BeEmpty())
	g.Expect(get(g, app).Status.CommitStatus.Message).To(ContainSubstring("is not one Argo CD Application"))
}
