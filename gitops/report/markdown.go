package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/safetext"
)

// PullRequest renders the title and GitHub-flavoured markdown body of the
// pull request that proposes the outcome: what happened and why, what
// merging or closing does, a compact chart of the query value per check and
// the analysis table.
func PullRequest(in Input) (title, body string) {
	var b strings.Builder
	appRef := code(app(in), maxApp)
	intro(&b, in, appRef)

	if in.Query != "" || len(in.Checks) > 0 {
		b.WriteString("### Analysis\n\n")
	}
	if in.Query != "" {
		b.WriteString("Query:\n\n")
		b.WriteString(fenced("promql", query(in.Query)))
		b.WriteString("\n")
	}
	if len(in.Checks) > 0 {
		checks, omitted := newest(in.Checks)
		if omitted > 0 {
			fmt.Fprintf(&b, "%d older checks are not shown.\n\n", omitted)
		}
		b.WriteString(fenced("text", Chart(checks)))
		b.WriteString("\n")
		b.WriteString(mdTable(checks, omitted) + "\n" + metricsMarkdown(in, checks, omitted))
	}
	b.WriteString("<sub>Opened by canaryop for ")
	b.WriteString(appRef)
	b.WriteString(".</sub>\n")
	return Subject(in), b.String()
}

// intro is what happened and what merging or closing the pull request does,
// per outcome.
func intro(b *strings.Builder, in Input, appRef string) {
	switch in.Outcome {
	case v1.OutcomeRolledBack:
		fmt.Fprintf(b, "## Canary rolled back: %s\n\n", appRef)
		fmt.Fprintf(b, "The canary of %s failed and the cluster was rolled back to %s%s.\n\n",
			code(in.FailedImage, maxImage), code(in.Image, maxImage), at(in.DecidedAt))
		if in.Reason != "" {
			fmt.Fprintf(b, "**Why:** %s\n\n", md(line(in.Reason, maxReason)))
		}
		if in.KeptImage != "" {
			fmt.Fprintf(b, "Git already names the newer image %s, which this pull request keeps. "+
				"It only records %s in `spec.failedImages`, so that the operator never canaries it again; "+
				"remove the record to allow a retry.\n\n", code(in.KeptImage, maxImage), code(in.FailedImage, maxImage))
		} else {
			fmt.Fprintf(b, "This pull request sets `spec.image` back to %s and records %s in `spec.failedImages`, "+
				"so that the operator never canaries it again; remove the record to allow a retry.\n\n",
				code(in.Image, maxImage), code(in.FailedImage, maxImage))
		}
		b.WriteString("- **Merge** it so that Git matches the cluster: Argo CD then syncs the stable image.\n")
		b.WriteString("- **Close** it unmerged and the cluster stays on the stable image; the failure is then recorded only in the CanaryApp's status, which a cluster rebuild loses.\n\n")
	case v1.OutcomePromoted:
		fmt.Fprintf(b, "## Canary promoted: %s\n\n", appRef)
		fmt.Fprintf(b, "The canary of %s passed its analysis and was promoted%s.\n\n", code(in.Image, maxImage), at(in.DecidedAt))
		if in.Reason != "" {
			fmt.Fprintf(b, "**Why:** %s\n\n", md(line(in.Reason, maxReason)))
		}
		if in.KeptImage != "" {
			fmt.Fprintf(b, "Git already names the newer image %s, which this pull request keeps.\n\n", code(in.KeptImage, maxImage))
		} else {
			fmt.Fprintf(b, "This pull request makes `spec.image` in Git name %s, so that Git matches the cluster.\n\n", code(in.Image, maxImage))
		}
	case v1.OutcomeApprovalRequested:
		fmt.Fprintf(b, "## Approval requested: %s\n\n", appRef)
		fmt.Fprintf(b, "The canary of %s passed its analysis%s and holds at its last weight, checks still running.\n\n", code(in.Image, maxImage), at(in.DecidedAt))
		b.WriteString("- **Merge** this pull request to approve it: Argo CD syncs `spec.approvedImage` and the operator promotes the canary.\n")
		b.WriteString("- **Close** it unmerged to reject it: the canary is rolled back (\"rejected in review\") and its image recorded as failed.\n\n")
		b.WriteString("A failing check still rolls the canary back while this waits.\n\n")
	case v1.OutcomeRetryAllowed:
		fmt.Fprintf(b, "## Retry allowed: %s\n\n", appRef)
		fmt.Fprintf(b, "This pull request removes %s from `spec.failedImages`%s, so that the next change of `spec.image` to it starts a canary.\n\n",
			code(in.FailedImage, maxImage), at(in.DecidedAt))
		if in.Reason != "" {
			fmt.Fprintf(b, "**Asked:** %s\n\n", md(line(in.Reason, maxReason)))
		}
	default:
		fmt.Fprintf(b, "## Canary %s: %s\n\n", md(line(string(in.Outcome), maxOutcome)), appRef)
	}
}

// Chart draws the checks as three rows of one character per check, oldest
// first: a sparkline of the query value, the canary weight (scaled to the
// highest weight reached), and the verdict. An inconclusive check or a value
// that is not a number shows as "·"; "empty" (no sample: the check passed)
// counts as 0. No checks give "".
func Chart(checks []v1.AnalysisCheck) string {
	if len(checks) == 0 {
		return ""
	}
	const bars = "▁▂▃▄▅▆▇█"
	blocks := []rune(bars)
	level := func(f float64) rune { // f in [0,1]
		i := int(math.Round(f * float64(len(blocks)-1)))
		return blocks[min(max(i, 0), len(blocks)-1)]
	}

	vals := make([]float64, len(checks))
	ok := make([]bool, len(checks))
	lo, hi, seen := 0.0, 0.0, false
	for i, c := range checks {
		vals[i], ok[i] = parseValue(c.Value)
		ok[i] = ok[i] && c.Verdict != v1.CheckInconclusive
		if !ok[i] {
			continue
		}
		if !seen {
			lo, hi, seen = min(0, vals[i]), vals[i], true
		}
		lo, hi = min(lo, vals[i]), max(hi, vals[i])
	}

	maxWeight := int32(1)
	for _, c := range checks {
		maxWeight = max(maxWeight, c.Weight)
	}

	var value, weight, verdict strings.Builder
	for i, c := range checks {
		switch {
		case !ok[i]:
			value.WriteRune('·')
		case hi == lo:
			value.WriteRune(blocks[0])
		default:
			value.WriteRune(level((vals[i] - lo) / (hi - lo)))
		}
		weight.WriteRune(level(float64(max(c.Weight, 0)) / float64(maxWeight)))
		switch c.Verdict {
		case v1.CheckPass:
			verdict.WriteRune('✓')
		case v1.CheckFail:
			verdict.WriteRune('✗')
		default:
			verdict.WriteRune('?')
		}
	}

	first, last := checks[0].Weight, checks[len(checks)-1].Weight
	valueRange := "no numeric value"
	if seen {
		valueRange = fmt.Sprintf("%s … %s", num(lo), num(hi))
	}
	return fmt.Sprintf("value   %s  %s\nweight  %s  %d%% → %d%%\nverdict %s  ✓ pass  ✗ fail  ? inconclusive\n",
		value.String(), valueRange, weight.String(), first, last, verdict.String())
}

// parseValue reads a check's value: "empty" or "" is 0 (the query returned
// no sample), a number is itself, anything else is not a number.
func parseValue(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "empty") {
		return 0, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) }

// mdTable renders the checks as a markdown table, numbered from first+1.
func mdTable(checks []v1.AnalysisCheck, first int) string {
	var b strings.Builder
	b.WriteString("| # | Time (UTC) | Weight | Value | Verdict | Note |\n")
	b.WriteString("|--:|---|--:|---|---|---|\n")
	for i, c := range checks {
		verdict := md(line(string(c.Verdict), maxCell))
		if c.Verdict == v1.CheckFail {
			verdict = "**" + verdict + "**"
		}
		fmt.Fprintf(&b, "| %d | %s | %d%% | %s | %s | %s |\n",
			first+i+1, checkTime(c), c.Weight, md(orDash(line(c.Value, maxCell))), verdict, md(line(c.Message, maxCell)))
	}
	return b.String()
}

func at(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return " at " + t.UTC().Format(time.RFC3339)
}

// md escapes one line of text for markdown, table cells included: a
// backslash before every character that could start emphasis, a link, HTML,
// code, an entity or a cell boundary. Untrusted text must have been through
// line first, which defangs mentions and URLs: an escape does not stop
// GitHub from resolving those.
func md(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]<>|~&!#", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// code renders untrusted text, cut to n runes, as an inline code span. The
// delimiter is one backtick longer than the longest run inside, so the text
// cannot end the span early.
func code(s string, n int) string {
	s = line(s, n)
	if s == "" {
		return "`-`"
	}
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// fenced renders multi-line text as a fenced code block whose fence is
// longer than any backtick run inside. Untrusted text must have been through
// query (or line) first.
func fenced(lang, s string) string {
	s = strings.TrimRight(safetext.Clean(s), "\n")
	fence := strings.Repeat("`", max(3, longestRun(s, '`')+1))
	return fence + lang + "\n" + s + "\n" + fence + "\n"
}

func longestRun(s string, c rune) int {
	best, cur := 0, 0
	for _, r := range s {
		if r == c {
			cur++
			best = max(best, cur)
		} else {
			cur = 0
		}
	}
	return best
}
