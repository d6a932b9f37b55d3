package kubectlplugin

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/duration"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/safetext"
)

// The views are pure functions of the objects and the time, so golden
// files pin them.

// maxText bounds any text taken from an object in one cell or line.
const maxText = 120

func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	return safetext.Truncate(s, maxText)
}

func age(now time.Time, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(now.Sub(t))
}

// readyReason is the Ready condition's status and reason.
func readyReason(a *v1.CanaryApp) string {
	c := meta.FindStatusCondition(a.Status.Conditions, v1.ConditionReady)
	if c == nil {
		return "-"
	}
	return string(c.Status) + "/" + c.Reason
}

// List writes one line per app.
func List(w io.Writer, apps []v1.CanaryApp, allNamespaces bool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if allNamespaces {
		fmt.Fprint(tw, "NAMESPACE\t")
	}
	fmt.Fprintln(tw, "NAME\tPHASE\tSTABLE\tCANARY\tWEIGHT\tREADY\tAGE")
	for i := range apps {
		a := &apps[i]
		if allNamespaces {
			fmt.Fprintf(tw, "%s\t", a.Namespace)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d%%\t%s\t%s\n", a.Name, cell(string(a.Status.Phase)), cell(a.Status.StableImage),
			cell(a.Status.CanaryImage), a.Status.CanaryWeight, readyReason(a), age(now, a.CreationTimestamp.Time))
	}
	return tw.Flush()
}

// bar draws a weight as 20 cells.
func bar(weight int32) string {
	w := min(max(int(weight), 0), 100)
	n := w / 5
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", 20-n) + fmt.Sprintf("] %3d%%", w)
}

// Get writes the detailed view of one app: where the release stands, the
// checks, what waits for a person and the write-back.
func Get(w io.Writer, a *v1.CanaryApp, now time.Time) error {
	st := &a.Status
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("Name:       %s/%s\n", a.Namespace, a.Name)
	p("Phase:      %s\n", cell(string(st.Phase)))
	p("Ready:      %s\n", readyReason(a))
	p("Image:      %s\n", cell(a.Spec.Image))
	p("Stable:     %s\n", cell(st.StableImage))
	if st.CanaryImage != "" {
		p("Canary:     %s\n", cell(st.CanaryImage))
		p("Weight:     %s\n", bar(st.CanaryWeight))
	}
	if c := meta.FindStatusCondition(st.Conditions, v1.ConditionProgressing); c != nil && c.Status == "True" {
		p("Progress:   %s: %s\n", c.Reason, cell(c.Message))
	}
	if c := meta.FindStatusCondition(st.Conditions, v1.ConditionStalled); c != nil && c.Status == "True" {
		p("Stalled:    %s: %s\n", c.Reason, cell(c.Message))
	}
	controls(p, a, now)
	checks(w, st.Checks, now)
	writeBack(p, st.WriteBack, now)
	commitStatus(p, st.CommitStatus)
	if len(st.FailedImages) > 0 || len(a.Spec.FailedImages) > 0 {
		p("Failed images:\n")
		for _, f := range a.Spec.FailedImages {
			p("  %s (in spec)\n", cell(f.Image))
		}
		for _, f := range st.FailedImages {
			p("  %s: %s\n", cell(f.Image), cell(f.Reason))
		}
	}
	return nil
}

func controls(p func(string, ...any), a *v1.CanaryApp, now time.Time) {
	st := &a.Status
	if st.Approval != nil {
		p("Approval:   waiting since %s ago for %s: kubectl canaryapp promote %s\n", age(now, st.Approval.RequestedAt.Time), cell(st.Approval.Image), a.Name)
	}
	if a.Spec.Suspend {
		p("Suspended:  yes (kubectl canaryapp resume %s)\n", a.Name)
	}
	if la := st.LastAction; la != nil {
		by := la.By
		if by == "" {
			by = "-"
		}
		p("Last action: %s by %s %s ago: %s\n", la.Action, cell(by), age(now, la.At.Time), cell(la.Result))
	}
}

func checks(w io.Writer, cs []v1.AnalysisCheck, now time.Time) {
	if len(cs) == 0 {
		return
	}
	last := cs[len(cs)-1]
	fmt.Fprintf(w, "Last check: %s, value %s, %s ago\n", last.Verdict, cell(last.Value), age(now, last.Time.Time))
	fmt.Fprintln(w, "Checks (newest last):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  AGO\tWEIGHT\tVERDICT\tVALUE")
	for _, c := range cs[max(0, len(cs)-10):] {
		fmt.Fprintf(tw, "  %s\t%d%%\t%s\t%s\n", age(now, c.Time.Time), c.Weight, c.Verdict, cell(c.Value))
	}
	_ = tw.Flush()
}

func writeBack(p func(string, ...any), wb *v1.WriteBackStatus, now time.Time) {
	if wb == nil {
		return
	}
	state := "done"
	switch {
	case wb.Pending && wb.Error != "":
		state = "failing (" + cell(wb.ErrorReason) + "): " + cell(wb.Error)
	case wb.Pending:
		state = "pending"
	}
	p("Write-back: %s %s, %s\n", wb.Outcome, cell(wb.Image), state)
	if wb.Commit != "" {
		p("  commit:   %s\n", cell(wb.Commit))
	}
	if wb.PullRequestURL != "" {
		p("  pull request: %s (%s)\n", cell(wb.PullRequestURL), cell(wb.PullRequestState))
	}
	if wb.LastAttemptAt != nil {
		p("  last attempt %s ago, %d attempt(s)\n", age(now, wb.LastAttemptAt.Time), wb.Attempts)
	}
}

func commitStatus(p func(string, ...any), cs *v1.CommitStatusReport) {
	if cs == nil {
		return
	}
	if cs.Reason != "" {
		p("Commit status: %s for %s: %s\n", cs.Reason, cell(cs.Image), cell(cs.Message))
		return
	}
	if cs.State == "" {
		return
	}
	p("Commit status: %s on %s@%s: %s\n", cs.State, cell(cs.Repository), cell(shortSHA(cs.Revision)), cell(cs.Description))
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
