package stack

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// Timeline prints what happens, one line per change, with the time since it
// was made: commits, Argo CD's view, the CanaryApp's phase, weight and
// latest check, and the operator's decisions.
type Timeline struct {
	start time.Time
	label string
	mu    sync.Mutex
	out   io.Writer
	lines []string
}

// NewTimeline starts the clock. A label (a test's app, say) starts every
// line when not empty.
func NewTimeline(out io.Writer, label string) *Timeline {
	if label != "" {
		label += " "
	}
	return &Timeline{start: time.Now(), out: out, label: label}
}

// Elapsed is the time since the timeline started.
func (t *Timeline) Elapsed() time.Duration { return time.Since(t.start) }

// Note prints a line of kind ("git", "argocd", "app", "decision", ...).
func (t *Timeline) Note(kind, format string, args ...any) {
	line := fmt.Sprintf("%s%8s  %-9s %s", t.label, fmt.Sprintf("+%.1fs", t.Elapsed().Seconds()), kind, fmt.Sprintf(format, args...))
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	fmt.Fprintln(t.out, line)
}

// Lines returns every line printed so far.
func (t *Timeline) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}

// Watch prints the changes of one app (its CanaryApp in ns, its
// VirtualService, its Argo CD Application) until ctx ends. Commits named by
// the operator's write-back are looked up in repo for their subject.
func (t *Timeline) Watch(ctx context.Context, c *Cluster, repo *Repo, ns, name, application string) {
	var lastApp, lastArgo, lastDecision, lastCommit string
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if application != "" {
			if st, err := c.Application(ctx, application); err == nil {
				s := fmt.Sprintf("%s %s %s", st.Sync, st.ShortRevision(), st.Health)
				if s != lastArgo && st.Sync != "" {
					lastArgo = s
					msg := ""
					if st.HealthMessage != "" && st.Health != "Healthy" {
						msg = ": " + st.HealthMessage
					}
					t.Note("argocd", "%s at %s, %s%s", st.Sync, st.ShortRevision(), st.Health, msg)
				}
			}
		}
		app, err := c.CanaryApp(ctx, ns, name)
		switch {
		case err == nil:
			w, _ := c.RouteWeights(ctx, ns, name)
			s := appLine(app, w)
			if app.Status.Phase == "" {
				s = "created, waiting for the operator"
			}
			if s != lastApp {
				lastApp = s
				t.Note("app", "%s", s)
			}
			if wb := app.Status.WriteBack; wb != nil {
				d := fmt.Sprintf("%s %s %s", wb.Outcome, wb.Image, wb.DecidedAt.UTC().Format(time.RFC3339))
				if d != lastDecision {
					lastDecision = d
					t.Note("decision", "%s", decisionLine(app))
				}
				if wb.Commit != "" && wb.Commit != lastCommit {
					lastCommit = wb.Commit
					if cm, err := repo.Show(ctx, wb.Commit); err == nil {
						already := ""
						if !strings.HasPrefix(cm.Author, "canaryop") {
							already = " (Git already holds the outcome: no new commit)"
						}
						t.Note("git", "%s %s: %s%s", cm.Short(), cm.Author, cm.Subject, already)
					} else {
						t.Note("git", "%s (write-back commit)", short(wb.Commit))
					}
				}
			}
		case apierrors.IsNotFound(err) && lastApp != "absent":
			if lastApp != "" {
				t.Note("app", "%s/%s is gone", ns, name)
			}
			lastApp = "absent"
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// Tag returns ":v2" for an image "repo:v2" (the whole image without a tag).
func Tag(image string) string {
	if i := strings.LastIndex(image, ":"); i >= 0 && !strings.Contains(image[i:], "/") {
		return image[i:]
	}
	return image
}

// appLine is the CanaryApp's state in one line: phase, images, weight, the
// Ready reason and the latest check.
func appLine(app *v1.CanaryApp, w Weights) string {
	st := app.Status
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s stable %-4s", st.Phase, Tag(st.StableImage))
	if st.CanaryImage != "" {
		fmt.Fprintf(&b, " canary %-4s weight %3d%%", Tag(st.CanaryImage), st.CanaryWeight)
	}
	if w.Found {
		kind := "VS"
		if w.Kind == "HTTPRoute" {
			kind = "HTTPRoute"
		}
		fmt.Fprintf(&b, "  [%s %d/%d]", kind, w.Primary, w.Canary)
	}
	if c := meta.FindStatusCondition(st.Conditions, v1.ConditionReady); c != nil {
		fmt.Fprintf(&b, "  Ready=%s/%s", c.Status, c.Reason)
	}
	if c := meta.FindStatusCondition(st.Conditions, v1.ConditionAnalysis); c != nil && st.CanaryImage != "" {
		fmt.Fprintf(&b, "  analysis %s", c.Reason)
	}
	if n := len(st.Checks); n > 0 && st.CanaryImage != "" {
		ch := st.Checks[n-1]
		// Checks come every second: only the verdict and value belong in
		// the line, not the time, or every check would print a line.
		fmt.Fprintf(&b, "  last check %s", checkText(ch))
	}
	return b.String()
}

func checkText(ch v1.AnalysisCheck) string {
	if ch.Value == "" {
		return string(ch.Verdict)
	}
	return fmt.Sprintf("%s, query %s", ch.Verdict, ch.Value)
}

func decisionLine(app *v1.CanaryApp) string {
	wb := app.Status.WriteBack
	switch wb.Outcome {
	case v1.OutcomePromoted:
		return fmt.Sprintf("promoted %s; write-back to Git: %s", Tag(wb.Image), writeBackState(wb))
	case v1.OutcomeRolledBack:
		s := fmt.Sprintf("rolled back to %s, %s failed", Tag(wb.Image), Tag(wb.FailedImage))
		if wb.Reason != "" {
			s += " (" + firstLine(wb.Reason) + ")"
		}
		return s + "; write-back to Git: " + writeBackState(wb)
	}
	return string(wb.Outcome)
}

func writeBackState(wb *v1.WriteBackStatus) string {
	if wb.Pending {
		return "pending"
	}
	if wb.Error != "" {
		return "failed: " + wb.Error
	}
	return "done"
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return s
}
