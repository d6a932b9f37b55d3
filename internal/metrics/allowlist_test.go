package metrics

import (
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in        string
		canonical string // "" when the URL is refused
		display   string
		reason    string
	}{
		{in: "http://prometheus.istio-system.svc:9090", canonical: "http://prometheus.istio-system.svc:9090", display: "http://prometheus.istio-system.svc:9090"},
		{in: "HTTP://Prom.Example.COM/", canonical: "http://prom.example.com:80", display: "http://prom.example.com"},
		{in: "https://prom.example.com", canonical: "https://prom.example.com:443", display: "https://prom.example.com"},
		{in: "https://prom:0443/x", canonical: "https://prom:443/x", display: "https://prom:0443/x"},
		{in: "http://prom:/", canonical: "http://prom:80", display: "http://prom:"},
		{in: "http://[::1]:9090/prom/", canonical: "http://[::1]:9090/prom", display: "http://[::1]:9090/prom"},
		{in: "http://[::FFFF:7f00:1]/", canonical: "http://[::ffff:7f00:1]:80", display: "http://[::ffff:7f00:1]"},
		{in: "http://127.0.0.1:9090/a/b;c=d/e", canonical: "http://127.0.0.1:9090/a/b;c=d/e", display: "http://127.0.0.1:9090/a/b;c=d/e"},

		{in: "", reason: ReasonURLInvalid},
		{in: "   ", reason: ReasonURLInvalid},
		{in: "prometheus:9090", reason: ReasonURLInvalid},
		{in: "ftp://prom:9090", reason: ReasonURLInvalid},
		{in: "http://", reason: ReasonURLInvalid},
		{in: "http:prom", reason: ReasonURLInvalid},
		{in: "//prom:9090", reason: ReasonURLInvalid},
		{in: "http://user:secret@prom:9090", reason: ReasonURLHasCredentials},
		{in: "http://user@prom:9090", reason: ReasonURLHasCredentials},
		{in: "http://@prom:9090", reason: ReasonURLHasCredentials},
		{in: "http://prom:9090/?namespace=team-b", reason: ReasonURLHasQuery},
		{in: "http://prom:9090/?", reason: ReasonURLHasQuery},
		{in: "http://prom:9090/#x", reason: ReasonURLHasQuery},
		{in: "http://prom:9090/#", reason: ReasonURLHasQuery},
		{in: "http://prom:9090/team-a/../team-b", reason: ReasonURLInvalid},
		{in: "http://prom:9090/team-a/..", reason: ReasonURLInvalid},
		{in: "http://prom:9090/./x", reason: ReasonURLInvalid},
		{in: "http://prom:9090/team-a/%2e%2e/team-b", reason: ReasonURLInvalid},
		{in: "http://prom:9090/team-a%2fx", reason: ReasonURLInvalid},
		{in: "http://pr%6fm:9090/", reason: ReasonURLInvalid},
		{in: "http://prom:9090/a//b", reason: ReasonURLInvalid},
		{in: "http://prom:9090//", reason: ReasonURLInvalid},
		{in: `http://prom:9090/a\..\b`, reason: ReasonURLInvalid},
		{in: "http://prom:9090/a b", reason: ReasonURLInvalid},
		{in: "http://prom:9090/é", reason: ReasonURLInvalid},
		{in: "http://prøm:9090/", reason: ReasonURLInvalid},
		{in: "http://prom:0/", reason: ReasonURLInvalid},
		{in: "http://prom:65536/", reason: ReasonURLInvalid},
		{in: "http://prom:x/", reason: ReasonURLInvalid},
		{in: "http://[fe80::1%25eth0]/", reason: ReasonURLInvalid},
		{in: "http://[127.0.0.1]/", reason: ReasonURLInvalid},
		{in: "http://prom:9090/\x00", reason: ReasonURLInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := parseEndpoint(tt.in)
			if tt.reason != "" {
				uerr, ok := errors.AsType[*URLError](err)
				if !ok || uerr.Reason != tt.reason {
					t.Fatalf("parseEndpoint(%q) = %v, %v; want a URLError with reason %s", tt.in, e, err, tt.reason)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseEndpoint(%q): %v", tt.in, err)
			}
			if e.String() != tt.canonical || e.display() != tt.display {
				t.Errorf("parseEndpoint(%q) = %s shown as %s, want %s shown as %s", tt.in, e, e.display(), tt.canonical, tt.display)
			}
		})
	}
}

func TestAllowListAdmit(t *testing.T) {
	list, err := ParseAllowList(" http://prometheus.istio-system.svc:9090 , https://thanos.example.com/tenant-a/,,http://[::1]:9090/")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url    string
		reason string // "" means admitted
	}{
		{"http://prometheus.istio-system.svc:9090", ""},
		{"http://prometheus.istio-system.svc:9090/", ""},
		{"http://PROMETHEUS.istio-system.svc:9090/prom", ""},
		{"https://thanos.example.com/tenant-a", ""},
		{"https://thanos.example.com:443/tenant-a/", ""},
		{"https://THANOS.example.com/tenant-a/prometheus", ""},
		{"http://[::1]:9090", ""},

		{"https://thanos.example.com/tenant-ab", ReasonURLNotAllowed},
		{"https://thanos.example.com/tenant-b", ReasonURLNotAllowed},
		{"https://thanos.example.com/", ReasonURLNotAllowed},
		{"https://thanos.example.com/tenant", ReasonURLNotAllowed},
		{"http://thanos.example.com/tenant-a", ReasonURLNotAllowed},       // scheme
		{"https://thanos.example.com:8443/tenant-a", ReasonURLNotAllowed}, // port
		{"http://prometheus.istio-system.svc:9091", ReasonURLNotAllowed},
		{"http://prometheus.istio-system.svc", ReasonURLNotAllowed}, // port 80
		{"http://prometheus.istio-system.svc.evil.com:9090", ReasonURLNotAllowed},
		{"http://evil.com/prometheus.istio-system.svc:9090", ReasonURLNotAllowed},
		{"http://evil.com/http://prometheus.istio-system.svc:9090", ReasonURLInvalid},
		{"http://169.254.169.254/", ReasonURLNotAllowed},
		{"http://127.0.0.1:9090/", ReasonURLNotAllowed},
		{"https://thanos.example.com/tenant-a/../tenant-b", ReasonURLInvalid},
		{"https://thanos.example.com/tenant-a/%2e%2e/tenant-b", ReasonURLInvalid},
		{"https://thanos.example.com/tenant-a?tenant=b", ReasonURLHasQuery},
		{"https://user:pw@thanos.example.com/tenant-a", ReasonURLHasCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := list.Admit(tt.url)
			if got := list.Allowed(tt.url); got != (tt.reason == "") {
				t.Errorf("Allowed(%q) = %t, want %t", tt.url, got, tt.reason == "")
			}
			if tt.reason == "" {
				if err != nil {
					t.Errorf("Admit(%q) = %v, want nil", tt.url, err)
				}
				return
			}
			uerr, ok := errors.AsType[*URLError](err)
			if !ok || uerr.Reason != tt.reason {
				t.Fatalf("Admit(%q) = %v, want reason %s", tt.url, err, tt.reason)
			}
			if tt.reason == ReasonURLNotAllowed && strings.Contains(err.Error(), "thanos") && !strings.Contains(tt.url, "thanos") {
				t.Errorf("message %q shows the allow-list", err)
			}
		})
	}

	var empty AllowList
	if !empty.Allowed("http://127.0.0.1:1234") || !empty.Allowed("http://169.254.169.254/") {
		t.Error("an empty list refuses a valid URL")
	}
	if empty.Allowed("http://u:p@127.0.0.1:1234") || empty.Allowed("http://127.0.0.1:1234/?x=1") {
		t.Error("an empty list admits a URL with credentials or a query")
	}
}

func TestParseAllowList(t *testing.T) {
	tests := []struct {
		in      string
		want    string // String() of the list
		wantErr string
	}{
		{in: "", want: ""},
		{in: " , ", want: ""},
		{in: "http://a:9090", want: "http://a:9090"},
		{in: "http://A:9090/x/,https://b", want: "http://a:9090/x,https://b:443"},
		{in: "http://a:9090/x,", want: "http://a:9090/x"},
		{in: "http://a:9090,b:9090", wantErr: "entry 2"},
		{in: "http://admin:hunter2@a:9090", wantErr: "credentials"},
		{in: "http://a:9090/?tenant=x", wantErr: "query"},
		{in: "http://a:9090/x/../y", wantErr: "segments"},
		{in: "http://a:9090/%78", wantErr: "percent"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAllowList(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseAllowList(%q) = %v, %v; want an error with %q", tt.in, got, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want {
				t.Errorf("ParseAllowList(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}

	// As a flag.Value, repeated flags add up.
	var a AllowList
	if err := a.Set("http://a:9090"); err != nil {
		t.Fatal(err)
	}
	if err := a.Set("http://b:9090/x"); err != nil {
		t.Fatal(err)
	}
	if a.Len() != 2 || !a.Allowed("http://b:9090/x/y") || a.Allowed("http://c:9090") {
		t.Errorf("after two Set calls the list is %q", a)
	}
	if err := a.Set("http://c:9090/?x"); err == nil || a.Len() != 2 {
		t.Errorf("Set of an invalid prefix = %v and the list is %q; want an error and no change", err, a)
	}
}

func TestPrefixCovers(t *testing.T) {
	p, err := ParsePrefix("https://Thanos.example.com/tenant-a/")
	if err != nil {
		t.Fatal(err)
	}
	for u, want := range map[string]bool{
		"https://thanos.example.com/tenant-a":     true,
		"https://thanos.example.com/tenant-a/x/y": true,
		"https://thanos.example.com/tenant-ab":    false,
		"https://thanos.example.com/tenant-a?x=1": false,
		"not a url": false,
	} {
		if got := p.Covers(u); got != want {
			t.Errorf("%s covers %q = %t, want %t", p, u, got, want)
		}
	}
}

// FuzzAllowList checks the matcher against the request the HTTP client
// really sends: whenever a URL is admitted under a prefix, the path of the
// query request, once cleaned the way servers and proxies clean paths, is
// still under the prefix's path on the prefix's host and port, and carries
// no query string of the author's.
func FuzzAllowList(f *testing.F) {
	for _, seed := range [][2]string{
		{"https://thanos.example.com/tenant-a", "https://thanos.example.com/tenant-a/prom"},
		{"https://thanos.example.com/tenant-a", "https://thanos.example.com/tenant-a/../tenant-b"},
		{"https://thanos.example.com/tenant-a", "https://thanos.example.com/tenant-a/%2e%2e/tenant-b"},
		{"https://thanos.example.com/tenant-a", "https://thanos.example.com/tenant-ab"},
		{"https://thanos.example.com/tenant-a", "https://thanos.example.com/tenant-a?tenant=b"},
		{"https://thanos.example.com/tenant-a", "https://THANOS.example.com:443/tenant-a/"},
		{"http://prom:9090", "http://prom:9090//evil.com/"},
		{"http://prom:9090", "http://prom:9090@evil.com/"},
		{"http://prom:9090", "http://evil.com#@prom:9090/"},
		{"http://prom:9090", `http://prom:9090\@evil.com/`},
		{"http://[::1]:9090/p", "http://[::1]:9090/p/q"},
		{"http://a/b", "http://a/b/./c"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, prefix, raw string) {
		p, err := ParsePrefix(prefix)
		if err != nil {
			return
		}
		// The canonical form parses to itself.
		if again, err := ParsePrefix(p.String()); err != nil || again.String() != p.String() {
			t.Fatalf("prefix %q: canonical %q parses to %v, %v", prefix, p, again, err)
		}
		list := AllowList{prefixes: []Prefix{p}}
		if list.Allowed(raw) != p.Covers(raw) {
			t.Fatalf("Allowed and Covers disagree on %q under %q", raw, p)
		}
		if !list.Allowed(raw) {
			return
		}
		e, err := parseEndpoint(raw)
		if err != nil {
			t.Fatalf("%q admitted but does not parse: %v", raw, err)
		}
		sent, err := url.Parse(e.apiURL())
		if err != nil {
			t.Fatalf("%q admitted but its request URL %q does not parse: %v", raw, e.apiURL(), err)
		}
		if sent.User != nil || sent.RawQuery != "" || sent.Fragment != "" {
			t.Fatalf("%q admitted but the request URL %q has userinfo, a query or a fragment", raw, sent)
		}
		if strings.ToLower(sent.Host) != e.hostport {
			t.Fatalf("%q admitted but the request goes to %q, not %q", raw, sent.Host, e.hostport)
		}
		orig, err := url.Parse(raw)
		if err != nil || !strings.EqualFold(orig.Host, sent.Host) {
			t.Fatalf("%q admitted but the request host %q differs from the URL's", raw, sent.Host)
		}
		cleaned := path.Clean(sent.Path)
		if cleaned != sent.Path {
			t.Fatalf("%q admitted but a server would clean its request path %q to %q", raw, sent.Path, cleaned)
		}
		if pp := p.e.path; pp != "" && !strings.HasPrefix(cleaned, pp+"/") {
			t.Fatalf("%q admitted under %q but the request path is %q", raw, p, cleaned)
		}
	})
}
