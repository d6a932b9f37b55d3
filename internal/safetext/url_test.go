package safetext

import (
	"regexp"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		// One URL.
		{"https://user:s3cret@github.com/acme/apps.git", "https://github.com/acme/apps.git"},
		{"https://ghp_TOKEN@github.com/o/r", "https://github.com/o/r"},
		{"https://x-access-token:ghp_TOKEN@github.com", "https://github.com"},
		{"http://@host/x", "http://host/x"},
		{"HTTPS://u:p@Host:8443/x?y=1", "HTTPS://Host:8443/x?y=1"},
		{"https://u:p@bad host/x", "https://bad host/x"}, // unparsable: still cut
		{"https://u:p%zz@h/x", "https://h/x"},            // bad escape: still cut
		{"https://a@b@host/x", "https://host/x"},         // the last '@' ends the user info
		{"ssh://git@ssh.github.com:443/o/r.git", "ssh://ssh.github.com:443/o/r.git"},
		{"ssh://git:s3cret@host/o/r", "ssh://host/o/r"},
		{"git+ssh://tok@host/o/r", "git+ssh://host/o/r"},
		{"git@github.com:o/r.git", "github.com:o/r.git"},
		{"ghp_TOKEN@github.com", "github.com"},
		{"https://github.com/o/r", "https://github.com/o/r"},
		{"https://github.com/o/r@v1", "https://github.com/o/r@v1"}, // '@' in the path
		{"github.com:o/r@v1", "github.com:o/r@v1"},
		{"", ""},
		// Messages quoting URLs.
		{`fetch "https://u:tok3n@h/x": boom`, `fetch "https://h/x": boom`},
		{"resources: https://u:tok3n@h/x: failed (see https://v:p@k)", "resources: https://h/x: failed (see https://k)"},
		{"a://x@https://u:tok3n@h/x", "a://https://h/x"},
		{"tok@a://u@h/x", "a://h/x"},
		{"push to git@host:o/r failed", "push to host:o/r failed"},
		{"image ghcr.io/acme/app@sha256:" + hex64 + " is not allowed", "image ghcr.io/acme/app@sha256:" + hex64 + " is not allowed"},
		{"image app@sha256:" + hex64, "image sha256:" + hex64}, // reads as user@host:path
		{"git@host:deadbeefdeadbeefdeadbeefdeadbeef/x", "host:deadbeefdeadbeefdeadbeefdeadbeef/x"},
		{"by (git@host:o/r), <me@example.com>; ok", "by (host:o/r), <example.com>; ok"},
		{"no url at all: none", "no url at all: none"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

var hex64 = strings.Repeat("0123456789abcdef", 4)

var secretRe = regexp.MustCompile(`^[A-Za-z0-9_]{3,}$`)

// FuzzRedactURL checks that a password, token or login in a URL or an
// scp-like address never survives, whatever text follows it, and that
// redacting again changes nothing.
func FuzzRedactURL(f *testing.F) {
	for _, seed := range [][3]string{
		{"", "tok3n", "/x"},
		{"fetch '", "ghp_abc", "' failed"},
		{"a://x@", "s3cret", "@y/z"},
		{"ssh", "pw1", ""},
		{"\"", "pass", "\" "},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, before, secret, after string) {
		if !secretRe.MatchString(secret) || strings.Contains(before+after, secret) {
			t.Skip()
		}
		for _, u := range []string{"https://user:" + secret + "@host", "https://" + secret + "@host", "ssh://" + secret + "@host", secret + "@host:o/r"} {
			s := before + " " + u + after
			got := RedactURL(s)
			if strings.Contains(got, secret+"@") {
				t.Fatalf("RedactURL(%q) = %q keeps the secret", s, got)
			}
			if again := RedactURL(got); again != got {
				t.Fatalf("RedactURL(%q) = %q, but again %q", s, got, again)
			}
		}
	})
}
