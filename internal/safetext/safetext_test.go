package safetext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"a\u202eb\u2066c\u2067d\u2068e\u2069f", "a\uFFFDb\uFFFDc\uFFFDd\uFFFDe\uFFFDf"},
		{"zero\u200bwidth\u200djoin\ufeffbom\u00adshy", "zero\uFFFDwidth\uFFFDjoin\uFFFDbom\uFFFDshy"},
		{"tag\U000E0041s", "tag\uFFFDs"},
		{"hangul\u3164filler\u115f", "hangul\uFFFDfiller\uFFFD"},
		{"vs\ufe0f cgj\u034f", "vs\uFFFD cgj\uFFFD"},
		{"private\ue000 unassigned\U0010FFFF", "private\uFFFD unassigned\uFFFD"},
		{"blank\u2800braille", "blank\uFFFDbraille"},
		{"tab\tcr\rnul\x00nel\u0085ls\u2028ps\u2029nbsp\u00a0", "tab cr nul nel ls ps nbsp "},
		{"keep\nline feeds", "keep\nline feeds"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{"äöü ✓ 日本", "äöü ✓ 日本"},
	}
	for _, tt := range tests {
		if got := Clean(tt.in); got != tt.want {
			t.Errorf("Clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLine(t *testing.T) {
	if got := Line("  a\nb\r\nc\u202e  ", 0); got != "a b  c\uFFFD" {
		t.Errorf("Line = %q", got)
	}
	if got := Line("abcdef", 4); got != "abc…" {
		t.Errorf("Line cut = %q", got)
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 0, "abc"},
		{"abc", 3, "abc"},
		{"abcd", 3, "ab…"},
		{"abcd", 1, "…"},
		{"日本語テキスト", 4, "日本語…"},
		{"é́é́é́", 3, "é́…"}, // combining marks count as runes
	}
	for _, tt := range tests {
		got := Truncate(tt.in, tt.n)
		if got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q is not valid UTF-8", tt.in, tt.n, got)
		}
	}
}

func TestDefang(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ping @acme/security now", "ping ＠acme/security now"},
		{"@octocat", "＠octocat"},
		{"(@octocat)", "(＠octocat)"},
		{"mail me: someone@example.com", "mail me: someone＠example.com"},
		{"ghcr.io/atze/app@sha256:0123abcd", "ghcr.io/atze/app@sha256:0123abcd"},
		{"app:v2@sha256:aaaa", "app:v2@sha256:aaaa"},
		{"@sha256:0123abcd", "＠sha256:0123abcd"}, // a word of its own is a mention
		{"x[5m] @ 1609746000", "x[5m] @ 1609746000"},
		{"fixes #12 and org/repo#3", "fixes ＃12 and org/repo＃3"},
		{"# comment", "# comment"},
		{"see https://x.example/a and HTTP://Y.example", "see https[:]//x.example/a and HTTP[:]//Y.example"},
		{"<ftp://x> www.x.example WWW.y wwwx.z awww.b", "<ftp[:]//x> www[.]x.example WWW[.]y wwwx.z awww.b"},
		{`{url="https://x"}`, `{url="https[:]//x"}`},
		{"ratio: 0.5", "ratio: 0.5"},
	}
	for _, tt := range tests {
		if got := Defang(tt.in); got != tt.want {
			t.Errorf("Defang(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzDefang(f *testing.F) {
	for _, s := range []string{"@acme/security", "https://x.example", "www.x", "#1", "a@sha256:00", "\u202e@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Defang(Line(s, 0))
		for _, bad := range []string{"://", "\u202e", "\u200b"} {
			if strings.Contains(got, bad) {
				t.Errorf("Defang(Line(%q)) = %q still holds %q", s, got, bad)
			}
		}
		for i := strings.Index(got, "@"); i >= 0; i = strings.Index(got, "@") {
			rest := got[i+1:]
			before := got[:i]
			if startsAlnum(rest) && !(before != "" && isAlnum(rune(before[len(before)-1])) && digestAfterAt.MatchString(rest)) {
				t.Errorf("Defang(Line(%q)) = %q keeps a mention-shaped '@'", s, got)
				break
			}
			got = rest
		}
	})
}
