// Package report renders what a person reads about a canary's outcome: the
// Git commit message and the GitHub pull request. The functions are pure so
// that the same outcome always yields byte-identical text; the writer relies
// on that to recognise a commit or pull request it already made.
//
// Everything that comes from the cluster or from Git (reason, query, check
// values and messages, image names) is treated as untrusted text: invisible
// and bidi characters become U+FFFD, mentions, issue references and URLs are
// defanged (safetext.Defang), every value is capped, and single-line values
// are flattened and escaped so that they can neither add Git trailers nor
// break a markdown table.
package report

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/safetext"
)

// Trailer keys of the commit message. Tools (and the writer itself) find
// commits of canaryop with `git log --grep` or `git interpret-trailers`.
const (
	TrailerApp         = "Canaryop-App"
	TrailerOutcome     = "Canaryop-Outcome"
	TrailerImage       = "Canaryop-Image"
	TrailerFailedImage = "Canaryop-Failed-Image"
	TrailerKeptImage   = "Canaryop-Kept-Image"
	TrailerDecidedAt   = "Canaryop-Decided-At"
)

// Input is one canary outcome to describe.
type Input struct {
	// Namespace and Name identify the CanaryApp.
	Namespace, Name string
	// Outcome is v1.OutcomePromoted or v1.OutcomeRolledBack.
	Outcome v1.Outcome
	// Image is the image the manifest names after the change: the promoted
	// image, or the stable image a rollback returns to.
	Image string
	// FailedImage is the image recorded as failed (rollbacks only).
	FailedImage string
	// KeptImage, when set, is the newer image a person had already committed;
	// compare-and-swap kept it, so only the failure record is written.
	KeptImage string
	// Reason says why the canary ended this way.
	Reason string
	// DecidedAt is when the canary decided.
	DecidedAt time.Time
	// Query is the Prometheus query of the analysis.
	Query string
	// Checks is the analysis history, oldest first.
	Checks []v1.AnalysisCheck
	// Metrics describe the analysis metrics' rules (MetricRule), when the
	// analysis has spec.analysis.metrics.
	Metrics []string
}

// Limits in runes on untrusted text, so that one runaway value cannot make
// a commit or pull request unreadable, nor the pull request longer than
// GitHub accepts (65536 characters of body, 256 of title).
const (
	maxCell   = 60
	maxReason = 300
	// maxImage is spec.image's own limit, so a valid image is never cut;
	// KeptImage comes from the manifest in Git and has no other bound.
	maxImage = 512
	// maxShortImage bounds an image in the subject, where two of them and
	// the app's name share one line.
	maxShortImage = 80
	// maxApp fits any namespace/name Kubernetes accepts (63 + 1 + 253).
	maxApp        = 320
	maxSubjectApp = 130
	maxOutcome    = 40
	// maxQuery is spec.prometheusQuery's own limit.
	maxQuery   = 4096
	maxSubject = 256
	// maxChecks is the length of the history the controller keeps; a
	// longer one (status is writable by others) shows only its newest.
	maxChecks = v1.MaxStatusChecks
)

// Subject is the first line of the commit message and the pull request
// title, readable in `git log --oneline`.
func Subject(in Input) string {
	return safetext.Truncate(fmt.Sprintf("canaryapp %s: %s", line(app(in), maxSubjectApp), summary(in)), maxSubject)
}

func summary(in Input) string {
	img, failed := shortPair(in.Image, in.FailedImage)
	switch in.Outcome {
	case v1.OutcomeRolledBack:
		why := "failed"
		if hasVerdict(in.Checks, v1.CheckFail) {
			why = "failed analysis"
		}
		switch {
		case in.FailedImage == "":
			return "roll back to " + img
		case in.KeptImage != "":
			kept, failed := shortPair(in.KeptImage, in.FailedImage)
			return fmt.Sprintf("record %s %s, keep %s", failed, why, kept)
		}
		return fmt.Sprintf("roll back to %s, %s %s", img, failed, why)
	case v1.OutcomePromoted:
		if in.KeptImage != "" {
			kept, img := shortPair(in.KeptImage, in.Image)
			return fmt.Sprintf("promoted %s, keep %s", img, kept)
		}
		return "promote " + img
	case v1.OutcomeRetryAllowed:
		return fmt.Sprintf("allow a retry of %s", failed)
	case v1.OutcomeApprovalRequested:
		return "approve " + img
	default:
		return fmt.Sprintf("%s %s", line(string(in.Outcome), maxOutcome), img)
	}
}

// CommitMessage is the full commit message: subject, a body with the
// analysis history, and trailers for tools.
func CommitMessage(in Input) string {
	var b strings.Builder
	b.WriteString(Subject(in))
	b.WriteString("\n\n")

	switch in.Outcome {
	case v1.OutcomeRolledBack:
		if in.FailedImage != "" {
			fmt.Fprintf(&b, "The canary of %s was rolled back to %s.\n", line(in.FailedImage, maxImage), line(in.Image, maxImage))
		} else {
			fmt.Fprintf(&b, "The canary was rolled back to %s.\n", line(in.Image, maxImage))
		}
		if in.KeptImage != "" {
			fmt.Fprintf(&b, "Git already names the newer image %s, which is kept: this commit\nonly records the failed image.\n", line(in.KeptImage, maxImage))
		}
	case v1.OutcomeApprovalRequested:
		fmt.Fprintf(&b, "The canary of %s passed its analysis and waits for approval:\nthis change sets spec.approvedImage to it.\n", line(in.Image, maxImage))
	case v1.OutcomeRetryAllowed:
		fmt.Fprintf(&b, "A person allowed %s again: its record is removed from spec.failedImages,\nso the next change of spec.image to it starts a canary.\n", line(in.FailedImage, maxImage))
	case v1.OutcomePromoted:
		fmt.Fprintf(&b, "The canary of %s was promoted.\n", line(in.Image, maxImage))
		if in.KeptImage != "" {
			fmt.Fprintf(&b, "Git already names the newer image %s, which is kept.\n", line(in.KeptImage, maxImage))
		}
	}
	if in.Reason != "" {
		fmt.Fprintf(&b, "Reason: %s\n", line(in.Reason, maxReason))
	}
	if in.Query != "" {
		b.WriteString("\nQuery:\n")
		for _, l := range strings.Split(query(in.Query), "\n") {
			if l = strings.TrimRightFunc(l, unicode.IsSpace); l != "" {
				b.WriteString("    " + l + "\n")
			}
		}
	}
	if len(in.Checks) > 0 {
		checks, omitted := newest(in.Checks)
		b.WriteString("\nAnalysis (oldest first):\n")
		if omitted > 0 {
			fmt.Fprintf(&b, "  (%d older checks are not shown)\n", omitted)
		}
		b.WriteString(textTable(checks, omitted))
		b.WriteString(metricsText(in, checks, omitted))
	}

	b.WriteString("\n")
	for _, t := range Trailers(in) {
		fmt.Fprintf(&b, "%s: %s\n", t[0], t[1])
	}
	return b.String()
}

// Trailers are the key/value pairs at the end of the commit message, in
// order. Values are single lines.
func Trailers(in Input) [][2]string {
	t := [][2]string{
		{TrailerApp, line(app(in), maxApp)},
		{TrailerOutcome, line(string(in.Outcome), maxOutcome)},
		{TrailerImage, line(in.Image, maxImage)},
	}
	if in.FailedImage != "" {
		t = append(t, [2]string{TrailerFailedImage, line(in.FailedImage, maxImage)})
	}
	if in.KeptImage != "" {
		t = append(t, [2]string{TrailerKeptImage, line(in.KeptImage, maxImage)})
	}
	if !in.DecidedAt.IsZero() {
		t = append(t, [2]string{TrailerDecidedAt, in.DecidedAt.UTC().Format(time.RFC3339)})
	}
	return t
}

// textTable renders the checks as an aligned plain-text table, indented so
// that no row can be mistaken for a trailer. Steps are numbered from
// first+1.
func textTable(checks []v1.AnalysisCheck, first int) string {
	rows := [][]string{{"STEP", "TIME (UTC)", "WEIGHT", "VALUE", "VERDICT", "NOTE"}}
	for i, c := range checks {
		rows = append(rows, []string{
			fmt.Sprint(first + i + 1),
			checkTime(c),
			fmt.Sprintf("%d%%", c.Weight),
			orDash(line(c.Value, maxCell)),
			orDash(line(string(c.Verdict), maxCell)),
			line(c.Message, maxCell),
		})
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, cell := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		var l strings.Builder
		l.WriteString("  ")
		for i, cell := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if i == 2 { // weights read best right-aligned
				l.WriteString(pad + cell)
			} else {
				l.WriteString(cell + pad)
			}
			if i < len(r)-1 {
				l.WriteString("  ")
			}
		}
		b.WriteString(strings.TrimRight(l.String(), " ") + "\n")
	}
	return b.String()
}

func app(in Input) string { return in.Namespace + "/" + in.Name }

func checkTime(c v1.AnalysisCheck) string {
	if c.Time.IsZero() {
		return "-"
	}
	return c.Time.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func hasVerdict(checks []v1.AnalysisCheck, v v1.CheckVerdict) bool {
	for _, c := range checks {
		if c.Verdict == v {
			return true
		}
	}
	return false
}

// line makes untrusted s one defanged line of at most n runes: invisible
// characters become U+FFFD, line breaks and other controls spaces, and a
// cut ends in an ellipsis. The cut comes last so that n holds for what is
// written.
func line(s string, n int) string {
	return safetext.Truncate(safetext.Defang(safetext.Line(s, 0)), n)
}

// query prepares the multi-line Prometheus query: like line, but line feeds
// are kept and the whole query is capped at maxQuery runes.
func query(s string) string {
	return safetext.Truncate(safetext.Defang(safetext.Clean(s)), maxQuery)
}

// newest returns at most maxChecks of the newest checks, and how many older
// ones it left out.
func newest(checks []v1.AnalysisCheck) ([]v1.AnalysisCheck, int) {
	omitted := max(len(checks)-maxChecks, 0)
	return checks[omitted:], omitted
}

// shortPair shortens two image references for a subject line: when both
// name the same repository (or b is empty) only the tag or digest is shown,
// like ":v2"; otherwise both are shown in full, up to maxShortImage runes.
func shortPair(a, b string) (string, string) {
	ra, ta := splitRef(a)
	rb, tb := splitRef(b)
	if ta != "" && (b == "" || (ra == rb && tb != "")) {
		return line(ta, maxShortImage), line(tb, maxShortImage)
	}
	return line(a, maxShortImage), line(b, maxShortImage)
}

// splitRef splits an image reference into its repository and the rest: the
// ":tag", "@digest" (short form) or ":tag@digest" suffix. A colon belongs to
// the tag only when it follows the last slash, so a registry port
// ("localhost:5000/app") stays in the repository.
func splitRef(ref string) (repo, suffix string) {
	repo, digest, hasDigest := strings.Cut(ref, "@")
	if hasDigest {
		if algo, hex, ok := strings.Cut(digest, ":"); ok && len(hex) > 12 {
			digest = algo + ":" + hex[:12]
		}
		digest = "@" + digest
	}
	tag := ""
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo, tag = repo[:i], repo[i:]
	}
	if hasDigest {
		return repo, tag + digest
	}
	return repo, tag
}
