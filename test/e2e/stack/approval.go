package stack

import (
	"context"
	"fmt"
	"regexp"
	"time"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// RequireApproval commits analysis.approval: Manual into a DemoManifest, as
// a team that wants a person to approve each promotion would.
func (f *Flow) RequireApproval(ctx context.Context, app App) (Commit, error) {
	return f.editManifest(ctx, app, fmt.Sprintf("%s: a person approves each promotion (analysis.approval: Manual)", app.Name), SetManualApproval)
}

// Approve commits spec.approvedImage, as a person approves the canary
// waiting at the gate (or merges the approval pull request).
func (f *Flow) Approve(ctx context.Context, app App, image string) (Commit, error) {
	return f.editManifest(ctx, app, fmt.Sprintf("%s: approve %s", app.Name, Tag(image)),
		func(b []byte) ([]byte, error) { return SetApprovedImage(b, image) })
}

// SetManualApproval adds analysis.approval: Manual to a DemoManifest.
func SetManualApproval(manifest []byte) ([]byte, error) {
	out, n := replaceLine(string(manifest), `(?m)^  analysis:$`, "  analysis:\n    approval: Manual")
	if n != 1 {
		return nil, fmt.Errorf("manifest has %d spec.analysis lines, want 1", n)
	}
	return checked(out, func(a *v1.CanaryApp) bool {
		return a.Spec.Analysis != nil && a.Spec.Analysis.Approval == v1.ApprovalManual
	})
}

// SetApprovedImage sets spec.approvedImage, after spec.image when absent.
func SetApprovedImage(manifest []byte, image string) ([]byte, error) {
	out, n := replaceLine(string(manifest), `(?m)^  approvedImage: .*$`, "  approvedImage: "+image)
	if n == 0 {
		re := regexp.MustCompile(`(?m)^  image: .*$`)
		n = len(re.FindAllStringIndex(out, -1))
		out = re.ReplaceAllString(out, "$0\n  approvedImage: "+regexp.QuoteMeta(image))
	}
	if n != 1 {
		return nil, fmt.Errorf("manifest has %d spec.image lines, want 1", n)
	}
	return checked(out, func(a *v1.CanaryApp) bool { return a.Spec.ApprovedImage == image })
}

// checked parses an edited manifest and reports an edit that missed.
func checked(out string, ok func(*v1.CanaryApp) bool) ([]byte, error) {
	a, err := ParseCanaryApp([]byte(out))
	if err != nil {
		return nil, err
	}
	if !ok(a) {
		return nil, fmt.Errorf("the edit did not land in the manifest")
	}
	return []byte(out), nil
}

// IsWaitingForApproval: a canary of image holds at the approval gate.
func IsWaitingForApproval(image string) func(*v1.CanaryApp, Weights) bool {
	return func(a *v1.CanaryApp, _ Weights) bool {
		return a.Status.CanaryImage == image && a.Status.Phase == v1.PhaseSuspended &&
			a.Status.Approval != nil && a.Status.Approval.Image == image
	}
}

// WaitApplication waits until Argo CD reports the app's Application with
// health (at any revision).
func (f *Flow) WaitApplication(ctx context.Context, app App, timeout time.Duration, health string) (AppState, error) {
	var st AppState
	err := Eventually(ctx, timeout, 250*time.Millisecond, fmt.Sprintf("Argo CD to report %s %s", app.Application, health),
		func(ctx context.Context) (bool, string, error) {
			var err error
			st, err = f.Cluster.Application(ctx, app.Application)
			if err != nil {
				return false, "", err
			}
			return st.Health == health, fmt.Sprintf("%s at %s, %s %s", st.Sync, st.ShortRevision(), st.Health, st.HealthMessage), nil
		})
	return st, err
}
