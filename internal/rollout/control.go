package rollout

import (
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// The controls people steer a canary with: spec.suspend, the approval gate
// (analysis.approval: Manual with spec.approvedImage) and the one-shot
// abort and retry requests (annotations acknowledged in status.requests).

// requests acts on abort and retry requests whose ids status has not
// acknowledged. It reports whether it decided this step (an abort rolled
// the canary back), in which case Plan does nothing else.
func (p *planner) requests() bool {
	ann := p.in.App.GetAnnotations()
	by := strings.TrimSpace(ann[v1.RequestedByAnnotation])
	if id := strings.TrimSpace(ann[v1.AbortAnnotation]); id != "" && id != p.acked().Abort {
		p.ack().Abort = id
		if p.abortRequest(id, by) {
			return true
		}
	}
	if id, image := parseRetry(ann[v1.RetryAnnotation], p.in.App.Spec.Image); id != "" && id != p.acked().Retry {
		if wb := p.out.Status.WriteBack; wb != nil && wb.Pending {
			// One outcome at a time: the retry is acted on once the
			// pending outcome is in Git.
			p.requeue(waitPoll)
			return false
		}
		p.ack().Retry = id
		p.retryRequest(id, image, by)
	}
	return false
}

func (p *planner) acked() v1.RequestStatus {
	if r := p.out.Status.Requests; r != nil {
		return *r
	}
	return v1.RequestStatus{}
}

func (p *planner) ack() *v1.RequestStatus {
	if p.out.Status.Requests == nil {
		p.out.Status.Requests = &v1.RequestStatus{}
	}
	return p.out.Status.Requests
}

// parseRetry reads "<id> <image>"; the image defaults to spec.image.
func parseRetry(v, specImage string) (id, image string) {
	f := strings.Fields(v)
	switch len(f) {
	case 0:
		return "", ""
	case 1:
		return f[0], specImage
	default:
		return f[0], f[1]
	}
}

func (p *planner) record(action, id, by, image, result string) {
	p.out.Status.LastAction = &v1.ActionRecord{Action: action, ID: id, By: by, Image: image, At: *p.now(), Result: result}
}

func askedBy(by string) string {
	if by == "" {
		return "a person"
	}
	return by
}

// abortRequest rolls the running canary back as failed.
func (p *planner) abortRequest(id, by string) bool {
	st := &p.out.Status
	if st.CanaryImage == "" {
		p.record(v1.ActionAbort, id, by, "", "nothing to abort: no canary runs")
		p.event(false, v1.ReasonAborted, "Abort request %s from %s: no canary runs, nothing to do", id, askedBy(by))
		return false
	}
	image := st.CanaryImage
	p.record(v1.ActionAbort, id, by, image, "rolled back")
	p.rollback(v1.ReasonAborted, fmt.Sprintf("aborted by %s (request %s)", askedBy(by), id))
	return true
}

// retryRequest allows a failed image again: the operator's own record goes
// at once; a record Git holds (spec.failedImages) is removed there by a
// write-back when the app writes back, else by whoever owns the spec.
func (p *planner) retryRequest(id, image, by string) {
	st := &p.out.Status
	before := len(st.FailedImages)
	st.FailedImages = slices.DeleteFunc(st.FailedImages, func(f v1.FailedImage) bool { return f.Image == image })
	if len(st.FailedImages) == 0 {
		st.FailedImages = nil
	}
	inSpec := slices.ContainsFunc(p.in.App.Spec.FailedImages, func(f v1.FailedImage) bool { return f.Image == image })
	switch {
	case inSpec && p.in.App.Spec.GitOps != nil:
		p.record(v1.ActionRetry, id, by, image, "failure record removed; writing its removal to Git")
		p.decideRetry(image, fmt.Sprintf("retry of %s allowed by %s (request %s)", image, askedBy(by), id))
	case inSpec:
		p.record(v1.ActionRetry, id, by, image, "spec.failedImages still lists the image: remove it there")
	case before == len(st.FailedImages):
		p.record(v1.ActionRetry, id, by, image, "the image had no failure record")
	default:
		p.record(v1.ActionRetry, id, by, image, "failure record removed")
	}
	p.event(false, v1.ReasonRetryAllowed, "Retry request %s from %s for %s: %s", id, askedBy(by), image, st.LastAction.Result)
}

// decideRetry records the removal of image's failure record as the outcome
// to write back.
func (p *planner) decideRetry(image, reason string) {
	p.out.Status.WriteBack = &v1.WriteBackStatus{
		Outcome:     v1.OutcomeRetryAllowed,
		Image:       p.out.Status.StableImage,
		FailedImage: image,
		Reason:      reason,
		DecidedAt:   *p.now(),
		Pending:     true,
	}
}

// holdSuspended keeps a suspended canary where it is and reports whether
// it did; on resume it restarts the step clock where it stopped.
func (p *planner) holdSuspended() bool {
	st := &p.out.Status
	if p.in.App.Spec.Suspend {
		if st.SuspendedAt == nil {
			st.SuspendedAt = p.now()
			p.event(false, v1.ReasonSuspended, "Suspended canary %s at weight %d: checks keep running", st.CanaryImage, st.CanaryWeight)
		}
		st.Phase = v1.PhaseSuspended
		p.requeue(min(waitPoll, p.untilNextCheck()))
		return true
	}
	if st.SuspendedAt == nil {
		return false
	}
	if st.StepStartedAt != nil {
		ran := max(0, st.SuspendedAt.Sub(st.StepStartedAt.Time))
		st.StepStartedAt.Time = p.in.Now.Add(-ran)
	}
	st.SuspendedAt = nil
	p.event(false, v1.ReasonResumed, "Resumed canary %s at weight %d", st.CanaryImage, st.CanaryWeight)
	return false
}

// requestApproval asks for the approval in Git, with the analysis as its
// pull request, once the outbox is free: the approval is then recorded next
// to the evidence, and merging it is the approval. Only apps whose
// promotions are reviewed in pull requests (gitops.promotion: PullRequest)
// get one; the others are approved by setting the field.
func (p *planner) requestApproval() {
	st := &p.out.Status
	wb := st.WriteBack
	g := p.in.App.Spec.GitOps
	if g == nil || g.Promotion != v1.WritePullRequest || (wb != nil && (wb.Pending || p.approvalRequested(wb))) {
		return
	}
	st.WriteBack = &v1.WriteBackStatus{
		Outcome:   v1.OutcomeApprovalRequested,
		Image:     st.CanaryImage,
		Reason:    fmt.Sprintf("canary passed analysis at weight %d and waits for approval", st.CanaryWeight),
		DecidedAt: *p.now(),
		Pending:   true,
	}
}

func (p *planner) approvalRequested(wb *v1.WriteBackStatus) bool {
	return wb.Outcome == v1.OutcomeApprovalRequested && wb.Image == p.out.Status.CanaryImage
}

// rejectedInReview: the approval pull request of this canary was closed
// without being merged.
func (p *planner) rejectedInReview() bool {
	wb := p.out.Status.WriteBack
	return wb != nil && p.approvalRequested(wb) && !wb.Pending && wb.PullRequestState == "closed"
}

// recordApproval records the approval of a promoted image behind the gate
// when the step that approved it did not get its status saved (the
// promotion is derived from the cluster, the record only from status).
func (p *planner) recordApproval(promoted string) {
	if p.in.Analysis.Approval != v1.ApprovalManual || p.in.App.Spec.ApprovedImage != promoted {
		return
	}
	if a := p.out.Status.LastAction; a == nil || a.Action != v1.ActionApprove || a.Image != promoted {
		p.record(v1.ActionApprove, "", "", promoted, "promoted")
	}
}

// awaitingApproval holds a canary that passed its last step at the gate
// until spec.approvedImage names it, and reports whether it did.
func (p *planner) awaitingApproval() bool {
	st := &p.out.Status
	if p.in.Analysis.Approval != v1.ApprovalManual {
		return false
	}
	if p.in.App.Spec.ApprovedImage == st.CanaryImage {
		p.record(v1.ActionApprove, "", "", st.CanaryImage, "promoted")
		if st.Approval != nil {
			p.event(false, v1.ReasonApproved, "Canary %s approved (spec.approvedImage), %s after it reached the gate",
				st.CanaryImage, p.in.Now.Sub(st.Approval.RequestedAt.Time).Round(time.Second))
		}
		st.Approval = nil
		return false
	}
	if p.rejectedInReview() {
		p.rollback(v1.ReasonRejectedInReview, "rejected in review: the approval pull request was closed unmerged")
		return true
	}
	if st.Approval == nil || st.Approval.Image != st.CanaryImage {
		st.Approval = &v1.ApprovalStatus{Image: st.CanaryImage, RequestedAt: *p.now()}
		p.event(false, v1.ReasonWaitingForApproval, "Canary %s passed analysis at weight %d; waiting for approval: set spec.approvedImage to %s",
			st.CanaryImage, st.CanaryWeight, st.CanaryImage)
	}
	p.requestApproval()
	st.Phase = v1.PhaseSuspended
	p.requeue(min(time.Minute, p.untilNextCheck()))
	return true
}
