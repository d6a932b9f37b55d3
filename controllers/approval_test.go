package controllers_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/controllers"
)

// approvalSetup runs the operator with write-back to the test repository
// and the GitHub stand-in, and brings a canary of v2 to the approval gate.
func approvalSetup(t *testing.T, g *WithT) (*gitRepo, *fakeGitHub, *fakeProm, string, *v1.CanaryApp) {
	t.Helper()
	repo := newGitRepo(t)
	github := newFakeGitHub(t)
	prom := newFakeProm(t)
	startManager(t, pullRequestWriter(t, g, repo, github), func(r *controllers.CanaryAppReconciler) { r.PullRequestPoll = 500 * time.Millisecond })
	ns, app := stableApp(t, g, prom.URL, nil, func(a *v1.CanaryApp) {
		a.Spec.GitOps = &v1.GitOpsSpec{RepoURL: repo.url(), Branch: "main", Path: "apps/canaryapp-sample", Promotion: v1.WritePullRequest}
		a.Spec.Analysis.Approval = v1.ApprovalManual
	})
	setImage(g, app, image("v2"))
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(And(
		haveCondition(v1.ConditionProgressing, metav1.ConditionTrue, v1.ReasonWaitingForApproval),
		WithTransform(func(a *v1.CanaryApp) string {
			wb := a.Status.WriteBack
			if wb == nil || wb.Outcome != v1.OutcomeApprovalRequested {
				return ""
			}
			return wb.PullRequestState
		}, Equal("open")),
	))
	return repo, github, prom, ns, app
}

// The approval gate recorded in Git: the operator proposes
// spec.approvedImage in a pull request whose body is the analysis; merging
// it (Argo CD then syncs the field) promotes the canary.
func TestApprovalPullRequestMergedPromotes(t *testing.T) {
	g := NewWithT(t)
	repo, github, _, ns, app := approvalSetup(t, g)

	created, labels := github.snapshot()
	g.Expect(created).To(HaveLen(1))
	g.Expect(created[0]["title"]).To(ContainSubstring("approve :v2"))
	body, _ := created[0]["body"].(string)
	g.Expect(body).To(ContainSubstring("## Approval requested"))
	g.Expect(body).To(ContainSubstring("**Merge** this pull request to approve it"))
	g.Expect(body).To(ContainSubstring("### Analysis"))
	g.Expect(body).To(ContainSubstring("| 50% |"), "the check history with its weights")
	g.Expect(labels).To(ContainElement("canary-approval"))
	repo.fetch()
	head := created[0]["head"].(string)
	g.Expect(head).To(HavePrefix("canaryop/" + ns + "/" + appName + "/approvalrequested-"))
	g.Expect(repo.git("show", "origin/"+head+":apps/canaryapp-sample/canaryapp.yaml")).To(ContainSubstring("approvedImage: " + image("v2")))
	g.Expect(repo.git("show", "origin/main:apps/canaryapp-sample/canaryapp.yaml")).NotTo(ContainSubstring("approvedImage"))
	g.Eventually(func(g Gomega) string { return condition(get(g, app), v1.ConditionProgressing).Message }, timeout, poll).Should(
		ContainSubstring("merge https://github.example.com/team/apps/pull/7"))
	g.Expect(containerImage(deployment(g, ns, appName))).To(Equal(image("v1")))

	// A person merges; Argo CD syncs the field.
	github.set("merged")
	patchApp(g, app, func(a *v1.CanaryApp) { a.Spec.ApprovedImage = image("v2") })
	g.Eventually(func(g Gomega) string { return get(g, app).Status.StableImage }, timeout, poll).Should(Equal(image("v2")))
	g.Expect(containerImage(deployment(g, ns, appName))).To(Equal(image("v2")))
	g.Expect(get(g, app).Status.LastAction).NotTo(BeNil())
	g.Expect(get(g, app).Status.LastAction.Action).To(Equal(v1.ActionApprove))
}

// Closing the approval pull request unmerged rejects the canary: rolled
// back with reason RejectedInReview, the failure record written to Git.
func TestApprovalPullRequestClosedRollsBack(t *testing.T) {
	g := NewWithT(t)
	repo, github, _, ns, app := approvalSetup(t, g)

	github.set("closed")
	g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, timeout, poll).Should(And(
		WithTransform(phase, Equal(v1.PhaseFailed)),
		haveCondition(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonRejectedInReview),
	))
	g.Expect(canaryWeight(g, ns, appName)).To(Equal(int32(0)))
	g.Eventually(func(g Gomega) bool {
		wb := get(g, app).Status.WriteBack
		return wb != nil && wb.Outcome == v1.OutcomeRolledBack && !wb.Pending && wb.Commit != ""
	}, timeout, poll).Should(BeTrue())
	repo.fetch()
	manifest := repo.git("show", "origin/main:apps/canaryapp-sample/canaryapp.yaml")
	g.Expect(manifest).To(ContainSubstring("- image: " + image("v2")))
	g.Expect(manifest).To(ContainSubstring("rejected in review"))
}

// A canary at the gate that fails a check is rolled back, and its approval
// pull request, which nobody needs to merge any more, is closed with a
// comment once the rollback is written.
func TestRollbackAtTheGateClosesTheApprovalPullRequest(t *testing.T) {
	g := NewWithT(t)
	_, github, prom, _, app := approvalSetup(t, g)
	prom.set("bad")
	g.Eventually(func(g Gomega) *v1.WriteBackStatus { return get(g, app).Status.WriteBack }, timeout, poll).Should(And(
		WithTransform(func(wb *v1.WriteBackStatus) v1.Outcome { return wb.Outcome }, Equal(v1.OutcomeRolledBack)),
		WithTransform(func(wb *v1.WriteBackStatus) bool { return wb.Pending }, BeFalse()),
		WithTransform(func(wb *v1.WriteBackStatus) string { return wb.Message }, ContainSubstring("approval pull request #7 closed")),
	))
	github.mu.Lock()
	defer github.mu.Unlock()
	g.Expect(github.state).To(Equal("closed"))
	g.Expect(github.comments).To(ConsistOf(ContainSubstring("without merging it")))
}
