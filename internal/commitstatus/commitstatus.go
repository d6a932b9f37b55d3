// Package commitstatus decides what the commit of a canary's change should
// show on GitHub: pending while the canary is analysed, success when it is
// promoted, failure when it is rolled back, error when it stopped without a
// verdict. It is pure: a function of the CanaryApp's status, so the
// controller that posts it only compares what is wanted with what
// status.commitStatus says was posted.
package commitstatus

import (
	"fmt"
	"strings"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/safetext"
)

// States, as GitHub names them.
const (
	Pending = "pending"
	Success = "success"
	Failure = "failure"
	Error   = "error"
)

// MaxDescription is GitHub's bound on a description.
const MaxDescription = 140

// Verdict is what the commit of Image's change should show.
type Verdict struct {
	Image       string
	State       string
	Description string
}

// Context is the status context of an app. It names the app, so that the
// apps one commit changes (a base image bumped for many) each keep their
// own verdict instead of overwriting one another's.
func Context(namespace, name string) string {
	return "canaryop/canary/" + namespace + "/" + name
}

// Want is the verdict app's status calls for; false when there is nothing
// to report: no canary runs and none was reported (status.commitStatus).
func Want(app *v1.CanaryApp) (Verdict, bool) {
	st := &app.Status
	if st.CanaryImage != "" {
		switch st.Phase {
		case v1.PhaseProgressing, v1.PhaseSuspended, v1.PhasePromoting:
			return Verdict{Image: st.CanaryImage, State: Pending, Description: pending(app)}, true
		}
	}
	rec := st.CommitStatus
	if rec == nil || rec.Image == "" || rec.State == "" {
		// A verdict is only reported on a change whose pending status
		// was: the commit is recorded when the canary starts.
		return Verdict{}, false
	}
	img := rec.Image
	switch {
	case st.StableImage == img && st.CanaryImage == "":
		return Verdict{Image: img, State: Success, Description: line("promoted %s after %s", short(img), checks(app, img))}, true
	case failed(app, img) != nil:
		return Verdict{Image: img, State: Failure, Description: line("rolled back %s: %s", short(img), failed(app, img).Reason)}, true
	case app.IsFailedImage(img):
		return Verdict{Image: img, State: Failure, Description: line("rolled back %s", short(img))}, true
	case st.CanaryImage != img:
		return Verdict{Image: img, State: Error, Description: line("canary of %s stopped without a verdict: spec.image changed", short(img))}, true
	}
	return Verdict{}, false
}

// pending describes a canary under analysis. It changes with the weight
// and the gate, not with every check, so a canary costs a few statuses
// (GitHub keeps at most 1,000 per commit and context).
func pending(app *v1.CanaryApp) string {
	st := &app.Status
	img := short(st.CanaryImage)
	switch {
	case st.Phase == v1.PhasePromoting:
		return line("promoting %s", img)
	case st.Approval != nil && st.Approval.Image == st.CanaryImage:
		return line("%s waits for approval at %d%% of traffic", img, st.CanaryWeight)
	case st.Phase == v1.PhaseSuspended:
		return line("canary %s suspended at %d%% of traffic", img, st.CanaryWeight)
	}
	return line("canary %s at %d%% of traffic", img, st.CanaryWeight)
}

// checks counts the passed checks of img: "3 checks passed".
func checks(app *v1.CanaryApp, img string) string {
	n := 0
	for _, c := range app.Status.Checks {
		if c.Image == img && c.Verdict == v1.CheckPass {
			n++
		}
	}
	if n == 1 {
		return "1 check passed"
	}
	return fmt.Sprintf("%d checks passed", n)
}

// failed is img's record in status.failedImages, the newest first.
func failed(app *v1.CanaryApp, img string) *v1.FailedImage {
	fs := app.Status.FailedImages
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].Image == img && fs[i].Reason != "" {
			return &fs[i]
		}
	}
	return nil
}

// short names an image by its tag or digest (":v2"), or its last path
// element without one.
func short(img string) string {
	last := img[strings.LastIndex(img, "/")+1:]
	if i := strings.IndexAny(last, ":@"); i >= 0 {
		return last[i:]
	}
	return last
}

// line is one line of at most MaxDescription runes, without characters a
// reader cannot see.
func line(format string, args ...any) string {
	return safetext.Line(fmt.Sprintf(format, args...), MaxDescription)
}
