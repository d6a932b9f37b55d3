// Package rollout decides what a CanaryApp should do next. It is pure: the
// controller observes the cluster, runs an analysis check when CheckDue says
// so, hands everything to Plan, and applies the returned desired state. Plan
// never talks to the API server, Prometheus or Git, so every transition is
// covered by table tests and a restarted controller resumes exactly where the
// persisted status says it stopped.
package rollout

import (
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// Deployment is what the controller observed of one Deployment.
type Deployment struct {
	// Exists is false when there is no such Deployment.
	Exists bool
	// Image is the image of the Deployment's pod template.
	Image string
	// Available is true when the Deployment has rolled out Image and all its
	// replicas are available.
	Available bool
	// Failed is true when the Deployment reports that its rollout exceeded
	// its progress deadline (pods crash or cannot be scheduled).
	Failed bool
}

// Input is everything Plan needs.
type Input struct {
	Now      time.Time
	App      *v1.CanaryApp // read only
	Analysis v1.Analysis   // app.Spec.EffectiveAnalysis()
	Primary  Deployment
	Canary   Deployment
	// Check is the analysis check run during this reconcile, nil when none
	// was due.
	Check *v1.AnalysisCheck
	// PreRollout is what the pre-rollout webhooks answered during this
	// reconcile (PreRolloutDue), nil when they were not called.
	PreRollout *HookResult
	// RolloutHooks is what the rollout webhooks answered with Check, nil
	// when they were not called.
	RolloutHooks *HookResult
	// Queued is true when the admin's cap on canaries progressing at once
	// holds a new image back: a steady app then waits (status.queuedAt)
	// instead of starting its canary. A canary that runs is never held.
	Queued bool
}

// HookResult is what an app's webhooks of one type answered: all 2xx, or
// the first that did not, in fixed words (the controller never hands in a
// webhook's answer).
type HookResult struct {
	Passed bool
	// Reason is a condition reason (v1.ReasonPreRolloutWebhookFailed,
	// v1.ReasonWebhookNotAllowed, ...) when not Passed.
	Reason  string
	Message string
}

// queueRecheck is how often a queued app looks for a free slot when no
// canary that ends wakes it sooner.
const queueRecheck = time.Minute

// Event is a transition worth a Kubernetes Event.
type Event struct {
	Warning bool
	Reason  string
	Message string
}

// Result is the desired state after this step.
type Result struct {
	// Status is the new status (a deep copy; conditions untouched).
	Status v1.CanaryAppStatus
	// PrimaryImage is the image the primary Deployment must run.
	PrimaryImage string
	// CanaryImage is the image of the canary Deployment; empty means the
	// canary Deployment must not exist.
	CanaryImage string
	// Weight is the percentage of traffic routed to the canary.
	Weight int32
	// RequeueAfter is when Plan wants to be called again even if nothing in
	// the cluster changes; zero means only on change.
	RequeueAfter time.Duration
	// Events are the transitions this step made.
	Events []Event
}

// waitPoll is how often Plan asks to look again while it waits for a
// Deployment; watches usually wake the controller sooner.
const waitPoll = 5 * time.Second

// CheckDue reports whether an analysis check should run now: only while the
// canary takes traffic (not while it starts or while the primary is being
// promoted), and at most once per check interval.
func CheckDue(in Input) bool {
	st := &in.App.Status
	if !analysing(in) {
		return false
	}
	last := lastCheck(st)
	return last == nil || !in.Now.Before(last.Time.Add(in.Analysis.CheckInterval))
}

// PreRolloutDue reports whether the pre-rollout webhooks should be called
// now: the app has some, its canary is available and has no traffic yet,
// and the last attempt is at least a check interval old.
func PreRolloutDue(in Input) bool {
	st := &in.App.Status
	if len(in.App.Spec.WebhooksOf(v1.WebhookPreRollout)) == 0 || st.CanaryImage == "" || st.CanaryImage != in.App.Spec.Image ||
		st.StepStartedAt != nil || promoting(in) || !in.Canary.Available || in.Canary.Image != st.CanaryImage {
		return false
	}
	last := lastCheck(st)
	return last == nil || !in.Now.Before(last.Time.Add(in.Analysis.CheckInterval))
}

func analysing(in Input) bool {
	st := &in.App.Status
	return st.CanaryImage != "" && st.CanaryImage == in.App.Spec.Image &&
		st.StepStartedAt != nil && !promoting(in)
}

// promoting is derived from the cluster, not from the phase: the primary
// Deployment has been given the canary's image.
func promoting(in Input) bool {
	st := &in.App.Status
	return st.CanaryImage != "" && in.Primary.Exists && in.Primary.Image == st.CanaryImage &&
		st.StableImage != st.CanaryImage
}

func lastCheck(st *v1.CanaryAppStatus) *v1.AnalysisCheck {
	if len(st.Checks) == 0 {
		return nil
	}
	return &st.Checks[len(st.Checks)-1]
}

// Plan computes the next desired state.
func Plan(in Input) Result {
	p := planner{in: in, out: Result{Status: *in.App.Status.DeepCopy()}}
	p.handOverFailedImages()
	if !p.requests() {
		p.step()
	}
	st := &p.out.Status
	p.out.CanaryImage = st.CanaryImage
	p.out.Weight = st.CanaryWeight
	if p.out.PrimaryImage == "" {
		p.out.PrimaryImage = st.StableImage
	}
	return p.out
}

type planner struct {
	in  Input
	out Result
}

func (p *planner) now() *metav1.Time { t := metav1.NewTime(p.in.Now); return &t }

func (p *planner) event(warning bool, reason, format string, args ...any) {
	p.out.Events = append(p.out.Events, Event{Warning: warning, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

func (p *planner) requeue(d time.Duration) {
	if d <= 0 {
		d = time.Second
	}
	if p.out.RequeueAfter == 0 || d < p.out.RequeueAfter {
		p.out.RequeueAfter = d
	}
}

func (p *planner) step() {
	st := &p.out.Status
	spec := &p.in.App.Spec
	if st.StableImage == "" {
		p.initialize()
		return
	}
	if st.CanaryImage == "" {
		p.steady()
		return
	}
	switch {
	case promoting(p.in):
		p.promote()
	case spec.Image == st.StableImage:
		p.abort(fmt.Sprintf("spec.image is back at the stable image %s", st.StableImage))
	case spec.Image != st.CanaryImage && p.isFailed(spec.Image):
		p.abort(fmt.Sprintf("spec.image names %s, which failed before", spec.Image))
	case spec.Image != st.CanaryImage:
		p.startCanary(fmt.Sprintf("Restarting canary: %s replaces %s under analysis", spec.Image, st.CanaryImage))
	case st.StepStartedAt == nil:
		p.waitForCanary()
	default:
		p.analyse()
	}
}

// initialize adopts what the primary Deployment already runs (a status lost
// with objects kept) or deploys spec.image as the first stable image.
func (p *planner) initialize() {
	st := &p.out.Status
	st.StableImage = p.in.App.Spec.Image
	if p.in.Primary.Exists && p.in.Primary.Image != "" {
		st.StableImage = p.in.Primary.Image
	}
	st.Phase = v1.PhaseInitializing
	st.CanaryWeight = 0
	p.event(false, v1.ReasonInitializing, "Deploying %s as the stable image", st.StableImage)
	p.requeue(waitPoll)
}

func (p *planner) steady() {
	st := &p.out.Status
	spec := &p.in.App.Spec
	st.CanaryWeight = 0
	switch {
	case spec.Image == st.StableImage:
		if p.in.Primary.Available && p.in.Primary.Image == st.StableImage {
			st.Phase = v1.PhaseStable
		} else {
			st.Phase = v1.PhaseInitializing
			p.requeue(waitPoll)
		}
	case p.isFailed(spec.Image):
		st.Phase = v1.PhaseFailed
	case p.in.Queued:
		p.queue()
		return
	default:
		p.startCanary(fmt.Sprintf("Starting canary of %s next to stable %s", spec.Image, st.StableImage))
	}
	st.QueuedAt = nil
}

// queue holds a new image back until the cap has a free slot; the first
// time it says so.
func (p *planner) queue() {
	st := &p.out.Status
	st.Phase = v1.PhaseQueued
	if st.QueuedAt == nil {
		st.QueuedAt = p.now()
		p.event(false, v1.ReasonQueued, "Canary of %s is queued: the limit on canaries progressing at once is reached", p.in.App.Spec.Image)
	}
	p.requeue(queueRecheck)
}

func (p *planner) startCanary(message string) {
	st := &p.out.Status
	st.CanaryImage = p.in.App.Spec.Image
	st.CanaryWeight = 0
	st.FailedChecks = 0
	st.CanaryStartedAt = p.now()
	st.QueuedAt = nil
	st.StepStartedAt = nil
	st.Checks = nil
	st.Phase = v1.PhaseProgressing
	p.event(false, v1.ReasonWaitingForCanary, "%s", message)
	p.requeue(waitPoll)
}

func (p *planner) waitForCanary() {
	st := &p.out.Status
	st.Phase = v1.PhaseProgressing
	if p.in.Canary.Available && p.in.Canary.Image == st.CanaryImage {
		if p.holdSuspended() {
			return
		}
		if !p.preRolloutPassed() {
			p.requeue(p.untilNextCheck())
			return
		}
		st.CanaryWeight = p.in.Analysis.Weights[0]
		st.StepStartedAt = p.now()
		p.event(false, v1.ReasonAnalysing, "Canary %s is available; routing %d%% of traffic to it", st.CanaryImage, st.CanaryWeight)
		p.requeue(min(p.in.Analysis.CheckInterval, p.in.Analysis.Interval))
		return
	}
	started := p.in.Now
	if st.CanaryStartedAt != nil {
		started = st.CanaryStartedAt.Time
	}
	deadline := started.Add(p.in.Analysis.CanaryReadyTimeout)
	if p.in.Canary.Failed && p.in.Canary.Image == st.CanaryImage {
		p.rollback(v1.ReasonCanaryNotReady, "canary Deployment exceeded its progress deadline")
		return
	}
	if !p.in.Now.Before(deadline) {
		p.rollback(v1.ReasonCanaryNotReady, fmt.Sprintf("canary did not become available within %s", p.in.Analysis.CanaryReadyTimeout))
		return
	}
	p.requeue(min(deadline.Sub(p.in.Now), waitPoll))
}

// preRolloutPassed records what the pre-rollout webhooks answered, as a
// check at weight 0, and reports whether the canary may get traffic: it
// has no pre-rollout webhooks, or they all answered 2xx just now. Until
// then the canary holds at weight 0; the canary's ready timeout is over
// once it is available.
func (p *planner) preRolloutPassed() bool {
	if len(p.in.App.Spec.WebhooksOf(v1.WebhookPreRollout)) == 0 {
		return true
	}
	h := p.in.PreRollout
	if h == nil {
		return false
	}
	st := &p.out.Status
	c := v1.AnalysisCheck{Time: *p.now(), Image: st.CanaryImage, Value: v1.WebhookValue, Verdict: v1.CheckPass, Message: h.Message}
	if !h.Passed {
		c.Verdict, c.Reason = v1.CheckInconclusive, h.Reason
	}
	p.appendCheck(c)
	return h.Passed
}

func (p *planner) appendCheck(c v1.AnalysisCheck) {
	st := &p.out.Status
	st.Checks = append(st.Checks, c)
	if n := len(st.Checks) - v1.MaxStatusChecks; n > 0 {
		st.Checks = slices.Delete(st.Checks, 0, n)
	}
}

// withRolloutHooks is the check as the rollout webhooks make it: one that
// did not answer 2xx fails a check Prometheus passed or could not decide.
func withRolloutHooks(c v1.AnalysisCheck, h *HookResult) v1.AnalysisCheck {
	if h == nil || h.Passed || c.Verdict == v1.CheckFail {
		return c
	}
	c.Verdict, c.Reason, c.Message = v1.CheckFail, h.Reason, h.Message
	return c
}

func (p *planner) analyse() {
	st := &p.out.Status
	a := p.in.Analysis
	st.Phase = v1.PhaseProgressing
	if p.in.Check != nil {
		c := withRolloutHooks(*p.in.Check.DeepCopy(), p.in.RolloutHooks)
		p.appendCheck(c)
		// A query the admin's allow-list refused is no evidence about the
		// canary either way: it holds (never passes, never fails) until the
		// URL is fixed, whatever onQueryError says.
		refused := c.Reason == v1.ReasonPrometheusURLNotAllowed
		// A check of analysis.metrics has applied each metric's own
		// onQueryError already (CountsAsFailure).
		byPolicy := len(c.Metrics) == 0 && a.OnQueryError == v1.QueryErrorFail && !refused
		if c.Verdict == v1.CheckFail || (c.Verdict == v1.CheckInconclusive && (byPolicy || c.CountsAsFailure)) {
			st.FailedChecks++
		}
		if st.FailedChecks >= a.FailureThreshold {
			why := fmt.Sprintf("%d failed check(s) at weight %d, last value %s", st.FailedChecks, st.CanaryWeight, c.Value)
			if c.Reason == v1.ReasonRolloutWebhookFailed || c.Reason == v1.ReasonWebhookNotAllowed || c.Reason == v1.ReasonWebhookNotFound || c.Reason == v1.ReasonWebhookInvalid {
				why += ": " + c.Message
			}
			p.rollback(v1.ReasonAnalysisFailed, why)
			return
		}
		if c.Verdict != v1.CheckPass {
			// A weight increases only after a whole interval of passing
			// checks: a check that did not pass starts the interval anew.
			t := c.Time
			st.StepStartedAt = &t
		}
	}

	if p.holdSuspended() {
		return
	}
	stepDue := st.StepStartedAt.Add(a.Interval)
	if p.in.Now.Before(stepDue) {
		p.requeue(min(stepDue.Sub(p.in.Now), p.untilNextCheck()))
		return
	}
	// The weight only increases on fresh evidence: the newest check ran at
	// this weight and passed, and the canary is still available.
	last := lastCheck(st)
	if last == nil || last.Time.Before(st.StepStartedAt) || last.Verdict != v1.CheckPass || !p.in.Canary.Available {
		p.requeue(p.untilNextCheck())
		return
	}
	next, ok := nextWeight(a.Weights, st.CanaryWeight)
	if !ok && p.awaitingApproval() {
		return
	}
	if !ok {
		p.out.PrimaryImage = st.CanaryImage
		st.Phase = v1.PhasePromoting
		p.event(false, v1.ReasonPromoting, "Canary %s passed analysis at weight %d; promoting it to the primary", st.CanaryImage, st.CanaryWeight)
		p.requeue(waitPoll)
		return
	}
	st.CanaryWeight = next
	st.StepStartedAt = p.now()
	p.event(false, v1.ReasonAnalysing, "Routing %d%% of traffic to canary %s", next, st.CanaryImage)
	p.requeue(min(a.Interval, p.untilNextCheck()))
}

func (p *planner) untilNextCheck() time.Duration {
	last := lastCheck(&p.out.Status)
	if last == nil {
		return time.Second
	}
	return last.Time.Add(p.in.Analysis.CheckInterval).Sub(p.in.Now)
}

// nextWeight returns the first weight above current, or false when current
// already is the promotion weight.
func nextWeight(weights []int32, current int32) (int32, bool) {
	for _, w := range weights {
		if w > current {
			return w, true
		}
	}
	return 0, false
}

// promote finishes a promotion once the primary Deployment has rolled out
// the canary's image: all traffic back to the primary, canary removed.
func (p *planner) promote() {
	st := &p.out.Status
	p.out.PrimaryImage = st.CanaryImage
	if !p.in.Primary.Available {
		st.Phase = v1.PhasePromoting
		p.requeue(waitPoll)
		return
	}
	promoted, previous := st.CanaryImage, st.StableImage
	st.StableImage = promoted
	p.endCanary()
	st.Phase = v1.PhaseStable
	p.event(false, v1.ReasonPromoted, "Promoted %s: the primary runs it and receives all traffic", promoted)
	why := "passed analysis"
	p.recordApproval(promoted)
	if a := st.LastAction; a != nil && a.Action == v1.ActionApprove && a.Image == promoted {
		why += fmt.Sprintf("; approved at the gate (spec.approvedImage) at %s", a.At.UTC().Format(time.RFC3339))
	}
	p.decide(v1.OutcomePromoted, promoted, "", why)
	if wb := p.out.Status.WriteBack; wb != nil {
		wb.PreviousImage = previous
	}
}

func (p *planner) rollback(reason, message string) {
	st := &p.out.Status
	failed := st.CanaryImage
	p.endCanary()
	st.FailedImages = append(slices.DeleteFunc(st.FailedImages, func(f v1.FailedImage) bool { return f.Image == failed }),
		v1.FailedImage{Image: failed, Reason: reason + ": " + message, Time: p.now()})
	if n := len(st.FailedImages) - v1.MaxStatusFailedImages; n > 0 {
		st.FailedImages = slices.Delete(st.FailedImages, 0, n)
	}
	st.Phase = v1.PhaseFailed
	p.event(true, v1.ReasonRolledBack, "Rolled back %s to %s: %s", failed, st.StableImage, message)
	p.decide(v1.OutcomeRolledBack, st.StableImage, failed, reason+": "+message)
}

func (p *planner) abort(why string) {
	st := &p.out.Status
	p.event(false, v1.ReasonStable, "Stopped canary of %s: %s", st.CanaryImage, why)
	p.endCanary()
	st.Phase = v1.PhaseStable
	if p.isFailed(p.in.App.Spec.Image) {
		st.Phase = v1.PhaseFailed
	}
}

func (p *planner) endCanary() {
	st := &p.out.Status
	st.CanaryImage = ""
	st.CanaryWeight = 0
	st.StepStartedAt = nil
	st.CanaryStartedAt = nil
	st.FailedChecks = 0
	st.SuspendedAt = nil
	st.Approval = nil
}

// handOverFailedImages drops in-cluster failure records that Git now holds
// (spec.failedImages), once no write-back is pending. From then on Git is the
// only record, so a person who removes the entry in Git allows a retry.
func (p *planner) handOverFailedImages() {
	st := &p.out.Status
	if st.WriteBack != nil && st.WriteBack.Pending {
		return
	}
	st.FailedImages = slices.DeleteFunc(st.FailedImages, func(f v1.FailedImage) bool {
		return slices.ContainsFunc(p.in.App.Spec.FailedImages, func(g v1.FailedImage) bool { return g.Image == f.Image })
	})
	if len(st.FailedImages) == 0 {
		st.FailedImages = nil
	}
}

// decide records an outcome to be written back to Git when the app asks for
// write-back.
func (p *planner) decide(outcome v1.Outcome, image, failed, reason string) {
	if p.in.App.Spec.GitOps == nil {
		return
	}
	prev := p.out.Status.WriteBack
	p.out.Status.WriteBack = &v1.WriteBackStatus{
		Outcome:     outcome,
		Image:       image,
		FailedImage: failed,
		Reason:      reason,
		DecidedAt:   *p.now(),
		Pending:     true,
		Supersedes:  openApproval(prev),
	}
}

// openApproval is the approval pull request of wb while it is open: the
// outcome that replaces it closes it.
func openApproval(wb *v1.WriteBackStatus) *v1.PullRequestRef {
	if wb == nil || wb.Outcome != v1.OutcomeApprovalRequested || wb.PullRequest == nil || wb.PullRequestState != "open" {
		return nil
	}
	return wb.PullRequest.DeepCopy()
}

// isFailed reports whether image is recorded as failed, in the spec (Git)
// or in the status this step computes (so a record a retry just removed,
// or a rollback just added, counts at once).
func (p *planner) isFailed(image string) bool {
	a := v1.CanaryApp{Spec: p.in.App.Spec, Status: v1.CanaryAppStatus{FailedImages: p.out.Status.FailedImages}}
	return a.IsFailedImage(image)
}
