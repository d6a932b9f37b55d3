package gitrepo

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
)

// A remote's refusal text (a hook's output can be anything, a secret
// included) never reaches the error the write-back reports.
func TestRejectionTextIsNotEchoed(t *testing.T) {
	const planted = "pre-receive hook declined: token=SECRET-XYZ see https://internal.example/x"
	rs := &packp.ReportStatus{UnpackStatus: "ok", CommandStatuses: []*packp.CommandStatus{
		{ReferenceName: plumbing.NewBranchReferenceName("main"), Status: planted},
	}}
	err := statusError(rs)
	var rej *RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("err = %v, want a RejectedError", err)
	}
	if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "internal.example") {
		t.Fatalf("the remote's text is echoed: %v", err)
	}
	if rej.Reason != "a server-side hook declined the push" {
		t.Fatalf("reason %q", rej.Reason)
	}
	rs = &packp.ReportStatus{UnpackStatus: "index-pack failed: SECRET"}
	if err := statusError(rs); err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("unpack status: %v", err)
	}
}
