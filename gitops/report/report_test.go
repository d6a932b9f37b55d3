package report

import (
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func check(sec int, weight int32, value string, verdict v1.CheckVerdict) v1.AnalysisCheck {
	return v1.AnalysisCheck{
		Time:    metav1.NewTime(t0.Add(time.Duration(sec) * time.Second)),
		Image:   "ghcr.io/atze/app:v3",
		Weight:  weight,
		Value:   value,
		Verdict: verdict,
	}
}

func rollback() Input {
	in := Input{
		Namespace:   "default",
		Name:        "canaryapp-sample",
		Outcome:     v1.OutcomeRolledBack,
		Image:       "ghcr.io/atze/app:v2",
		FailedImage: "ghcr.io/atze/app:v3",
		Reason:      "1 failed check at weight 30%",
		DecidedAt:   t0.Add(95 * time.Second),
		Query:       `increase(istio_requests_total{response_code=~"5.*"}[20s]) > 2`,
		Checks: []v1.AnalysisCheck{
			check(0, 10, "empty", v1.CheckPass),
			check(30, 20, "1", v1.CheckPass),
			check(60, 30, "", v1.CheckInconclusive),
			check(90, 30, "7", v1.CheckFail),
		},
	}
	in.Checks[2].Message = "prometheus: timeout"
	return in
}

func promotion() Input {
	return Input{
		Namespace: "default",
		Name:      "canaryapp-sample",
		Outcome:   v1.OutcomePromoted,
		Image:     "ghcr.io/atze/app:v2",
		Reason:    "all checks passed up to weight 50%",
		DecidedAt: t0,
		Query:     "up == 0",
		Checks: []v1.AnalysisCheck{
			check(0, 10, "empty", v1.CheckPass),
			check(30, 50, "empty", v1.CheckPass),
		},
	}
}

func TestCommitMessageRollback(t *testing.T) {
	want := `canaryapp default/canaryapp-sample: roll back to :v2, :v3 failed analysis

The canary of ghcr.io/atze/app:v3 was rolled back to ghcr.io/atze/app:v2.
Reason: 1 failed check at weight 30%

Query:
    increase(istio_requests_total{response_code=~"5.*"}[20s]) > 2

Analysis (oldest first):
  STEP  TIME (UTC)            WEIGHT  VALUE  VERDICT       NOTE
  1     2026-03-01T12:00:00Z     10%  empty  Pass
  2     2026-03-01T12:00:30Z     20%  1      Pass
  3     2026-03-01T12:01:00Z     30%  -      Inconclusive  prometheus: timeout
  4     2026-03-01T12:01:30Z     30%  7      Fail

Canaryop-App: default/canaryapp-sample
Canaryop-Outcome: RolledBack
Canaryop-Image: ghcr.io/atze/app:v2
Canaryop-Failed-Image: ghcr.io/atze/app:v3
Canaryop-Decided-At: 2026-03-01T12:01:35Z
`
	if got := CommitMessage(rollback()); got != want {
		t.Errorf("CommitMessage:\n%s\nwant:\n%s", got, want)
	}
}

func TestCommitMessagePromotion(t *testing.T) {
	want := `canaryapp default/canaryapp-sample: promote :v2

The canary of ghcr.io/atze/app:v2 was promoted.
Reason: all checks passed up to weight 50%

Query:
    up == 0

Analysis (oldest first):
  STEP  TIME (UTC)            WEIGHT  VALUE  VERDICT  NOTE
  1     2026-03-01T12:00:00Z     10%  empty  Pass
  2     2026-03-01T12:00:30Z     50%  empty  Pass

Canaryop-App: default/canaryapp-sample
Canaryop-Outcome: Promoted
Canaryop-Image: ghcr.io/atze/app:v2
Canaryop-Decided-At: 2026-03-01T12:00:00Z
`
	if got := CommitMessage(promotion()); got != want {
		t.Errorf("CommitMessage:\n%s\nwant:\n%s", got, want)
	}
}

func TestCommitMessageKeptImageAndNoChecks(t *testing.T) {
	in := rollback()
	in.KeptImage = "ghcr.io/atze/app:v4"
	in.Checks = nil
	in.Query = ""
	in.Reason = "canary not available within 5m"
	want := `canaryapp default/canaryapp-sample: record :v3 failed, keep :v4

The canary of ghcr.io/atze/app:v3 was rolled back to ghcr.io/atze/app:v2.
Git already names the newer image ghcr.io/atze/app:v4, which is kept: this commit
only records the failed image.
Reason: canary not available within 5m

Canaryop-App: default/canaryapp-sample
Canaryop-Outcome: RolledBack
Canaryop-Image: ghcr.io/atze/app:v2
Canaryop-Failed-Image: ghcr.io/atze/app:v3
Canaryop-Kept-Image: ghcr.io/atze/app:v4
Canaryop-Decided-At: 2026-03-01T12:01:35Z
`
	if got := CommitMessage(in); got != want {
		t.Errorf("CommitMessage:\n%s\nwant:\n%s", got, want)
	}
}

func TestSubject(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want string
	}{
		{"rollback same repository", rollback(), "canaryapp default/canaryapp-sample: roll back to :v2, :v3 failed analysis"},
		{"promotion", promotion(), "canaryapp default/canaryapp-sample: promote :v2"},
		{"registry with port", Input{Namespace: "ns", Name: "a", Outcome: v1.OutcomeRolledBack,
			Image: "localhost:5000/app:v2", FailedImage: "localhost:5000/app:v3"},
			"canaryapp ns/a: roll back to :v2, :v3 failed"},
		{"different repositories", Input{Namespace: "ns", Name: "a", Outcome: v1.OutcomeRolledBack,
			Image: "docker.io/library/nginx:1.25", FailedImage: "ghcr.io/me/nginx:1.26",
			Checks: []v1.AnalysisCheck{{Verdict: v1.CheckFail}}},
			"canaryapp ns/a: roll back to docker.io/library/nginx:1.25, ghcr.io/me/nginx:1.26 failed analysis"},
		{"rollback without a failed image", Input{Namespace: "ns", Name: "a", Outcome: v1.OutcomeRolledBack, Image: "app:v2"},
			"canaryapp ns/a: roll back to :v2"},
		{"no tag", Input{Namespace: "ns", Name: "a", Outcome: v1.OutcomePromoted, Image: "localhost:5000/app"},
			"canaryapp ns/a: promote localhost:5000/app"},
		// A digest on its own starts a word with '@', which GitHub would
		// resolve as a mention of user "sha256": the full-width at keeps it
		// readable without pinging anyone.
		{"digest is shortened", Input{Namespace: "ns", Name: "a", Outcome: v1.OutcomePromoted,
			Image: "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
			"canaryapp ns/a: promote ＠sha256:0123456789ab"},
		{"tag and digest", Input{Namespace: "ns", Name: "a", Outcome: v1.OutcomeRolledBack,
			Image: "app:v2@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", FailedImage: "app:v3"},
			"canaryapp ns/a: roll back to :v2@sha256:aaaaaaaaaaaa, :v3 failed"},
		{"promotion kept newer image", Input{Namespace: "ns", Name: "a", Outcome: v1.OutcomePromoted,
			Image: "app:v2", KeptImage: "app:v4"}, "canaryapp ns/a: promoted :v2, keep :v4"},
		{"newline in name cannot add a line", Input{Namespace: "ns", Name: "a\nCanaryop-Outcome: Promoted", Outcome: v1.OutcomePromoted,
			Image: "app:v2"}, "canaryapp ns/a Canaryop-Outcome: Promoted: promote :v2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Subject(tt.in); got != tt.want {
				t.Errorf("Subject = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPullRequestRollback(t *testing.T) {
	wantTitle := "canaryapp default/canaryapp-sample: roll back to :v2, :v3 failed analysis"
	wantBody := "## Canary rolled back: `default/canaryapp-sample`\n" +
		"\n" +
		"The canary of `ghcr.io/atze/app:v3` failed and the cluster was rolled back to `ghcr.io/atze/app:v2` at 2026-03-01T12:01:35Z.\n" +
		"\n" +
		"**Why:** 1 failed check at weight 30%\n" +
		"\n" +
		"This pull request sets `spec.image` back to `ghcr.io/atze/app:v2` and records `ghcr.io/atze/app:v3` in `spec.failedImages`, so that the operator never canaries it again; remove the record to allow a retry.\n" +
		"\n" +
		"- **Merge** it so that Git matches the cluster: Argo CD then syncs the stable image.\n" +
		"- **Close** it unmerged and the cluster stays on the stable image; the failure is then recorded only in the CanaryApp's status, which a cluster rebuild loses.\n" +
		"\n" +
		"### Analysis\n" +
		"\n" +
		"Query:\n" +
		"\n" +
		"```promql\n" +
		"increase(istio_requests_total{response_code=~\"5.*\"}[20s]) > 2\n" +
		"```\n" +
		"\n" +
		"```text\n" +
		"value   ▁▂·█  0 … 7\n" +
		"weight  ▃▆██  10% → 30%\n" +
		"verdict ✓✓?✗  ✓ pass  ✗ fail  ? inconclusive\n" +
		"```\n" +
		"\n" +
		"| # | Time (UTC) | Weight | Value | Verdict | Note |\n" +
		"|--:|---|--:|---|---|---|\n" +
		"| 1 | 2026-03-01T12:00:00Z | 10% | empty | Pass |  |\n" +
		"| 2 | 2026-03-01T12:00:30Z | 20% | 1 | Pass |  |\n" +
		"| 3 | 2026-03-01T12:01:00Z | 30% | - | Inconclusive | prometheus: timeout |\n" +
		"| 4 | 2026-03-01T12:01:30Z | 30% | 7 | **Fail** |  |\n" +
		"\n" +
		"<sub>Opened by canaryop for `default/canaryapp-sample`.</sub>\n"
	title, body := PullRequest(rollback())
	if title != wantTitle {
		t.Errorf("title = %q, want %q", title, wantTitle)
	}
	if body != wantBody {
		t.Errorf("body:\n%s\nwant:\n%s", body, wantBody)
	}
}

func TestPullRequestPromotion(t *testing.T) {
	wantBody := "## Canary promoted: `default/canaryapp-sample`\n" +
		"\n" +
		"The canary of `ghcr.io/atze/app:v2` passed its analysis and was promoted at 2026-03-01T12:00:00Z.\n" +
		"\n" +
		"**Why:** all checks passed up to weight 50%\n" +
		"\n" +
		"This pull request makes `spec.image` in Git name `ghcr.io/atze/app:v2`, so that Git matches the cluster.\n" +
		"\n" +
		"### Analysis\n" +
		"\n" +
		"Query:\n" +
		"\n" +
		"```promql\n" +
		"up == 0\n" +
		"```\n" +
		"\n" +
		"```text\n" +
		"value   ▁▁  0 … 0\n" +
		"weight  ▂█  10% → 50%\n" +
		"verdict ✓✓  ✓ pass  ✗ fail  ? inconclusive\n" +
		"```\n" +
		"\n" +
		"| # | Time (UTC) | Weight | Value | Verdict | Note |\n" +
		"|--:|---|--:|---|---|---|\n" +
		"| 1 | 2026-03-01T12:00:00Z | 10% | empty | Pass |  |\n" +
		"| 2 | 2026-03-01T12:00:30Z | 50% | empty | Pass |  |\n" +
		"\n" +
		"<sub>Opened by canaryop for `default/canaryapp-sample`.</sub>\n"
	title, body := PullRequest(promotion())
	if title != "canaryapp default/canaryapp-sample: promote :v2" {
		t.Errorf("title = %q", title)
	}
	if body != wantBody {
		t.Errorf("body:\n%s\nwant:\n%s", body, wantBody)
	}
}

func TestChart(t *testing.T) {
	tests := []struct {
		name   string
		checks []v1.AnalysisCheck
		want   string
	}{
		{"rising error count", []v1.AnalysisCheck{
			check(0, 10, "0", v1.CheckPass), check(1, 20, "1", v1.CheckPass), check(2, 30, "2", v1.CheckPass),
			check(3, 40, "4", v1.CheckFail), check(4, 50, "7", v1.CheckFail),
		}, "value   ▁▂▃▅█  0 … 7\nweight  ▂▄▅▇█  10% → 50%\nverdict ✓✓✓✗✗  ✓ pass  ✗ fail  ? inconclusive\n"},
		{"no checks", nil, ""},
		{"only errors", []v1.AnalysisCheck{
			check(0, 10, "error", v1.CheckInconclusive), check(1, 10, "NaN", v1.CheckInconclusive),
		}, "value   ··  no numeric value\nweight  ██  10% → 10%\nverdict ??  ✓ pass  ✗ fail  ? inconclusive\n"},
		{"negative and fractional values", []v1.AnalysisCheck{
			check(0, 10, "-1", v1.CheckFail), check(1, 10, "0.5", v1.CheckFail), check(2, 10, "+Inf", v1.CheckFail),
		}, "value   ▁█·  -1 … 0.5\nweight  ███  10% → 10%\nverdict ✗✗✗  ✓ pass  ✗ fail  ? inconclusive\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Chart(tt.checks); got != tt.want {
				t.Errorf("Chart:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// hostile holds text that tries to break out of a table cell, a code span, a
// code block, or the single-line subject and trailers.
var hostile = []string{
	"a|b",
	"line1\nline2\r\nline3",
	"x \\| y",
	"``` \n## heading\n```",
	"`code`",
	"<img src=x onerror=alert(1)>",
	"[link](https://evil.example)",
	"\n\nCanaryop-Outcome: Promoted\nSigned-off-by: someone",
	"tab\there\u2028sep\x00nul",
	"\xff\xfe invalid utf8",
}

func TestHostileValuesCannotBreakTheTable(t *testing.T) {
	for _, h := range hostile {
		in := rollback()
		in.Reason = h
		in.Query = h
		in.Checks[0].Value = h
		in.Checks[1].Message = h
		in.Checks[2].Verdict = v1.CheckVerdict(h)
		in.Checks[3].Value = h + "|" + h
		assertWellFormed(t, in)
	}
}

// assertWellFormed checks the structure a reader and a tool rely on: one
// table row per check with exactly seven cell boundaries, a one-line
// subject, and a last paragraph holding exactly canaryop's trailers.
func assertWellFormed(t *testing.T, in Input) {
	t.Helper()
	title, body := PullRequest(in)
	if strings.ContainsAny(title, "\r\n") {
		t.Errorf("title has a line break: %q", title)
	}
	var rows int
	inFence := ""
	for _, l := range strings.Split(body, "\n") {
		if inFence != "" {
			if strings.TrimSpace(l) == inFence {
				inFence = ""
			}
			continue
		}
		if strings.HasPrefix(l, "```") {
			inFence = strings.TrimRight(l, "abcdefghijklmnopqrstuvwxyz")
			continue
		}
		if !strings.HasPrefix(l, "|") {
			if n := cellBoundaries(l); n != 0 {
				t.Errorf("unescaped pipe outside the table in line %q", l)
			}
			continue
		}
		rows++
		if n := cellBoundaries(l); n != 7 {
			t.Errorf("table row has %d cell boundaries, want 7: %q", n, l)
		}
		if strings.Contains(strings.ReplaceAll(l, "\\<", ""), "<") {
			t.Errorf("raw HTML in table row: %q", l)
		}
	}
	if inFence != "" {
		t.Errorf("code block not closed in body:\n%s", body)
	}
	if want := len(in.Checks) + 2; rows != want {
		t.Errorf("table has %d rows, want %d:\n%s", rows, want, body)
	}

	msg := CommitMessage(in)
	subject, _, _ := strings.Cut(msg, "\n")
	if subject != Subject(in) || subject != title {
		t.Errorf("subject %q, title %q differ", subject, title)
	}
	paras := strings.Split(strings.TrimRight(msg, "\n"), "\n\n")
	last := strings.Split(paras[len(paras)-1], "\n")
	want := Trailers(in)
	if len(last) != len(want) {
		t.Fatalf("last paragraph has %d lines, want %d trailers:\n%s", len(last), len(want), msg)
	}
	for i, l := range last {
		if l != want[i][0]+": "+want[i][1] {
			t.Errorf("trailer %d = %q, want %s: %s", i, l, want[i][0], want[i][1])
		}
	}
	for _, p := range paras[:len(paras)-1] {
		for _, l := range strings.Split(p, "\n") {
			if strings.HasPrefix(l, "Canaryop-") {
				t.Errorf("a value added a trailer-looking line %q:\n%s", l, msg)
			}
		}
	}
}

// cellBoundaries counts pipes not escaped by a backslash.
func cellBoundaries(l string) int {
	n, backslashes := 0, 0
	for _, r := range l {
		switch {
		case r == '\\':
			backslashes++
			continue
		case r == '|' && backslashes%2 == 0:
			n++
		}
		backslashes = 0
	}
	return n
}

func FuzzReport(f *testing.F) {
	for _, h := range hostile {
		f.Add(h, h, h)
	}
	f.Fuzz(func(t *testing.T, reason, value, message string) {
		in := rollback()
		in.Reason = reason
		in.Checks[1].Value = value
		in.Checks[2].Message = message
		in.Checks[3].Verdict = v1.CheckVerdict(value)
		assertWellFormed(t, in)
	})
}

// TestUntrustedTextIsNeutralised covers text that reaches people through
// GitHub rather than breaking the layout: bidi overrides that reorder what
// a reviewer reads (Trojan source), mentions that make the bot ping a team,
// and URLs that become links.
func TestUntrustedTextIsNeutralised(t *testing.T) {
	const (
		bidi    = "\u202e"
		mention = "@acme/security"
		url     = "https://x.example"
	)
	hostile := "x " + bidi + "evil" + bidi + " ask " + mention + " see " + url + " #1"
	in := rollback()
	in.Query = "up{a=\"" + hostile + "\"}\n# " + hostile
	in.Reason = hostile
	in.KeptImage = "ghcr.io/atze/app:v4" + hostile
	in.FailedImage = "ghcr.io/atze/app:v3" + hostile
	for i := range in.Checks {
		in.Checks[i].Message = hostile
	}
	in.Checks[1].Value = hostile
	in.Checks[2].Verdict = v1.CheckVerdict(hostile)

	title, body := PullRequest(in)
	for name, text := range map[string]string{"commit message": CommitMessage(in), "title": title, "body": body} {
		for _, raw := range []string{bidi, mention, url, "#1"} {
			if strings.Contains(text, raw) {
				t.Errorf("%s holds %q raw:\n%s", name, raw, text)
			}
		}
		for _, r := range text {
			if unicode.Is(unicode.Cf, r) {
				t.Errorf("%s holds the format character %U", name, r)
			}
		}
		if !strings.Contains(text, "＠acme/security") {
			t.Errorf("%s lost the defanged mention; a reader should still see it:\n%s", name, text)
		}
	}
	if !strings.Contains(body, "https\\[:\\]//x.example") || !strings.Contains(CommitMessage(in), "https[:]//x.example") {
		t.Errorf("URL not shown with a broken scheme:\n%s", body)
	}
	assertWellFormed(t, in)
}

func TestDigestsSurviveDefanging(t *testing.T) {
	in := rollback()
	in.Image = "ghcr.io/atze/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	msg := CommitMessage(in)
	if !strings.Contains(msg, "Canaryop-Image: "+in.Image+"\n") {
		t.Errorf("image digest changed in the trailer:\n%s", msg)
	}
	if _, body := PullRequest(in); !strings.Contains(body, "`"+in.Image+"`") {
		t.Errorf("image digest changed in the body:\n%s", body)
	}
}

func TestValuesAreCapped(t *testing.T) {
	huge := strings.Repeat("ü", 10_000)
	in := rollback()
	in.Namespace, in.Name = huge, huge
	in.Outcome = v1.Outcome(huge)
	in.Image, in.FailedImage, in.KeptImage = "app:"+huge, "app:"+huge, "app:"+huge
	in.Reason = huge
	in.Query = huge + "\n" + huge
	in.Checks = nil
	for i := range 1000 {
		c := check(i, 10, huge, v1.CheckVerdict(huge))
		c.Message = huge
		in.Checks = append(in.Checks, c)
	}
	for _, outcome := range []v1.Outcome{v1.OutcomeRolledBack, v1.OutcomePromoted, in.Outcome} {
		in.Outcome = outcome
		title, body := PullRequest(in)
		msg := CommitMessage(in)
		if n := utf8.RuneCountInString(title); n > maxSubject {
			t.Errorf("%.20s: title has %d runes, want at most %d", outcome, n, maxSubject)
		}
		// GitHub refuses a body over 65536 characters.
		if n := utf8.RuneCountInString(body); n > 65536 {
			t.Errorf("%.20s: body has %d runes", outcome, n)
		}
		if n := utf8.RuneCountInString(msg); n > 65536 {
			t.Errorf("%.20s: commit message has %d runes", outcome, n)
		}
		for name, text := range map[string]string{"title": title, "body": body, "commit message": msg} {
			if !utf8.ValidString(text) {
				t.Errorf("%.20s: %s is not valid UTF-8", outcome, name)
			}
		}
		if !strings.Contains(body, "970 older checks are not shown.") || !strings.Contains(body, "| 971 |") ||
			!strings.Contains(msg, "(970 older checks are not shown)") || !strings.Contains(msg, "\n  971 ") {
			t.Errorf("%.20s: only the newest %d checks should be shown, numbered as in the history", outcome, maxChecks)
		}
		for _, tr := range Trailers(in) {
			if n := utf8.RuneCountInString(tr[1]); n > max(maxApp, maxImage) {
				t.Errorf("trailer %s has %d runes", tr[0], n)
			}
		}
	}
}

func TestValidImageIsNotCut(t *testing.T) {
	in := promotion()
	in.Image = "registry.example.com/" + strings.Repeat("a", 512-len("registry.example.com/")-len(":v1")) + ":v1"
	if !strings.Contains(CommitMessage(in), "Canaryop-Image: "+in.Image+"\n") {
		t.Errorf("an image of spec.image's maximum length was cut")
	}
}
