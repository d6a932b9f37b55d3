package controllers_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/argocd"
	"github.com/atzedevries/canaryop/argocd/luatest"
)

// patchApp changes the live object with a merge patch.
func patchApp(g Gomega, app *v1.CanaryApp, mutate func(*v1.CanaryApp)) {
	cur := get(g, app)
	base := cur.DeepCopy()
	mutate(cur)
	g.Expect(env.Client.Patch(context.Background(), cur, client.MergeFrom(base))).To(Succeed())
}

func annotate(kv ...string) func(*v1.CanaryApp) {
	return func(a *v1.CanaryApp) {
		if a.Annotations == nil {
			a.Annotations = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			a.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func phase(a *v1.CanaryApp) v1.Phase { return a.Status.Phase }

// A canary behind analysis.approval: Manual waits at its last weight, also
// across an operator restart, and is promoted only once spec.approvedImage
// names it.
func TestApprovalGateSurvivesARestart(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	first := startManager(t, nil)
	ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) { a.Spec.Analysis.Approval = v1.ApprovalManual })

	setImage(g, app, image("v2"))
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(And(
		WithTransform(phase, Equal(v1.PhaseSuspended)),
		haveCondition(v1.ConditionProgressing, metav1.ConditionTrue, v1.ReasonWaitingForApproval),
		haveCondition(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonWaitingForApproval),
	))
	g.Expect(get(g, app).Status.Approval.Image).To(Equal(image("v2")))
	g.Expect(canaryWeight(g, ns, appName)).To(Equal(int32(50)))

	first.stop()
	startManager(t, nil)
	touch(g, app)
	g.Consistently(func(g Gomega) string {
		g.Expect(get(g, app).Status.Phase).To(Equal(v1.PhaseSuspended))
		return containerImage(deployment(g, ns, appName))
	}, 4*time.Second, 200*time.Millisecond).Should(Equal(image("v1")), "no promotion without approval")
	g.Expect(eventReasons(ns)).To(ContainElement(v1.ReasonWaitingForApproval))

	patchApp(g, app, func(a *v1.CanaryApp) { a.Spec.ApprovedImage = image("v2") })
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(And(
		WithTransform(func(a *v1.CanaryApp) string { return a.Status.StableImage }, Equal(image("v2"))),
		WithTransform(phase, Equal(v1.PhaseStable)),
	))
	g.Expect(containerImage(deployment(g, ns, appName))).To(Equal(image("v2")))
	g.Expect(get(g, app).Status.LastAction.Action).To(Equal(v1.ActionApprove))
}

// An abort request rolls the canary back once; the same request delivered
// again (the annotation re-applied, as Argo CD or a retried kubectl would)
// does not abort the next canary.
func TestAbortRequestDeliveredTwice(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	ns, app := stableApp(t, g, prom.URL, nil, holdAtFirstStep)

	setImage(g, app, image("v3"))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(Equal(int32(25)))
	patchApp(g, app, annotate(v1.AbortAnnotation, "req-1", v1.RequestedByAnnotation, "alice"))
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(And(
		WithTransform(phase, Equal(v1.PhaseFailed)),
		haveCondition(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonAborted),
	))
	got := get(g, app)
	g.Expect(got.Status.Requests.Abort).To(Equal("req-1"))
	g.Expect(got.Status.FailedImages[len(got.Status.FailedImages)-1].Reason).To(ContainSubstring("aborted by alice (request req-1)"))
	g.Expect(canaryWeight(g, ns, appName)).To(Equal(int32(0)))
	g.Expect(eventReasons(ns)).To(ContainElement(v1.ReasonRolledBack))

	setImage(g, app, image("v4"))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(Equal(int32(25)))
	patchApp(g, app, annotate(v1.AbortAnnotation, "req-1", "test/again", "1"))
	g.Consistently(func(g Gomega) v1.Phase { return get(g, app).Status.Phase }, 3*time.Second, 200*time.Millisecond).Should(Equal(v1.PhaseProgressing))
	g.Expect(get(g, app).Status.CanaryImage).To(Equal(image("v4")))
}

// A retry of an image whose failure record Git holds writes the record's
// removal to Git; once Argo CD syncs that (here: the test patches the
// spec the way the sync would), the image can be canaried again.
func TestRetryWritesTheRemovalToGit(t *testing.T) {
	g := NewWithT(t)
	repo := newGitRepo(t)
	prom := newFakeProm(t)
	startManager(t, gitWriter(t, repo))
	ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) {
		a.Spec.GitOps = &v1.GitOpsSpec{RepoURL: repo.url(), Branch: "main", Path: "apps/canaryapp-sample"}
		holdAtFirstStep(a)
	})
	setImage(g, app, image("v3"))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(Equal(int32(25)))
	prom.set("bad")
	g.Eventually(func(g Gomega) bool {
		wb := get(g, app).Status.WriteBack
		return wb != nil && !wb.Pending && wb.Outcome == v1.OutcomeRolledBack && wb.Commit != ""
	}, timeout, poll).Should(BeTrue())
	repo.fetch()
	g.Expect(repo.git("show", "origin/main:apps/canaryapp-sample/canaryapp.yaml")).To(ContainSubstring("- image: " + image("v3")))
	// Argo CD syncs the rollback commit.
	patchApp(g, app, func(a *v1.CanaryApp) {
		a.Spec.Image = image("v1")
		a.Spec.FailedImages = []v1.FailedImage{{Image: image("v3")}}
	})
	prom.set("good")

	patchApp(g, app, annotate(v1.RetryAnnotation, "r1 "+image("v3"), v1.RequestedByAnnotation, "bob"))
	g.Eventually(func(g Gomega) bool {
		wb := get(g, app).Status.WriteBack
		return wb != nil && !wb.Pending && wb.Outcome == v1.OutcomeRetryAllowed && wb.Commit != ""
	}, timeout, poll).Should(BeTrue())
	repo.fetch()
	manifest := repo.git("show", "origin/main:apps/canaryapp-sample/canaryapp.yaml")
	g.Expect(manifest).NotTo(ContainSubstring(image("v3")))
	g.Expect(manifest).To(ContainSubstring("image: " + image("v1")))
	msg := repo.git("log", "-1", "--format=%B", "origin/main")
	g.Expect(msg).To(ContainSubstring("allow a retry of"))
	g.Expect(msg).To(ContainSubstring("allowed by bob (request r1)"))
	g.Expect(get(g, app).Status.Requests.Retry).To(Equal("r1"))

	// Argo CD syncs the removal and a person names the image again.
	patchApp(g, app, func(a *v1.CanaryApp) {
		a.Spec.FailedImages = nil
		a.Spec.Image = image("v3")
	})
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(Equal(int32(25)))
}

// runArgoCDAction runs one of the Argo CD resource actions on the live
// object and applies the result as Argo CD does: a merge patch from the
// object it read to the object the script returned.
func runArgoCDAction(g Gomega, app *v1.CanaryApp, name string) {
	script, err := argocd.Actions.ReadFile("actions/" + name + ".lua")
	g.Expect(err).NotTo(HaveOccurred())
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(v1.GroupVersion.WithKind("CanaryApp"))
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(app), live)).To(Succeed())
	before, err := json.Marshal(live.Object)
	g.Expect(err).NotTo(HaveOccurred())
	ret, done, err := luatest.Run(string(script), live.Object)
	g.Expect(err).NotTo(HaveOccurred())
	defer done()
	after, err := json.Marshal(luatest.FromLua(ret))
	g.Expect(err).NotTo(HaveOccurred())
	patch, err := jsonpatch.CreateMergePatch(before, after)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(env.Client.Patch(context.Background(), live, client.RawPatch(types.MergePatchType, patch))).To(Succeed())
}

// The Argo CD resource actions steer a canary on the real API server:
// suspend holds it, resume lets it go on to the approval gate, approve
// promotes; on the next canary abort rolls back and retry allows the image
// again.
func TestArgoCDActionsSteerACanary(t *testing.T) {
	g := NewWithT(t)
	prom := newFakeProm(t)
	startManager(t, nil)
	ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) { a.Spec.Analysis.Approval = v1.ApprovalManual })

	setImage(g, app, image("v2"))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(BeNumerically(">", 0))
	runArgoCDAction(g, app, "suspend")
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
		haveCondition(v1.ConditionProgressing, metav1.ConditionTrue, v1.ReasonSuspended))
	held := canaryWeight(g, ns, appName)
	g.Consistently(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, 3*time.Second, 200*time.Millisecond).Should(Equal(held))

	runArgoCDAction(g, app, "resume")
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
		haveCondition(v1.ConditionProgressing, metav1.ConditionTrue, v1.ReasonWaitingForApproval))
	runArgoCDAction(g, app, "approve")
	g.Eventually(func(g Gomega) string { return get(g, app).Status.StableImage }, timeout, poll).Should(Equal(image("v2")))

	setImage(g, app, image("v3"))
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(BeNumerically(">", 0))
	runArgoCDAction(g, app, "abort")
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(
		haveCondition(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonAborted))
	g.Expect(get(g, app).Status.Requests.Abort).To(HavePrefix("argocd-"))

	runArgoCDAction(g, app, "retry")
	g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, appName) }, timeout, 50*time.Millisecond).Should(BeNumerically(">", 0),
		"the retried image is canaried again")
	g.Expect(get(g, app).Status.LastAction.By).To(Equal("argocd"))
}
