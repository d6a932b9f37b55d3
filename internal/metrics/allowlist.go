package metrics

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// URLError says why a Prometheus URL was refused before any request was
// sent. Reason is one of ReasonURLNotAllowed, ReasonURLHasCredentials,
// ReasonURLHasQuery and ReasonURLInvalid. The message names the URL by
// scheme, host and path only.
type URLError struct {
	Reason string
	msg    string
}

func (e *URLError) Error() string { return e.msg }

func urlError(reason, format string, args ...any) *URLError {
	return &URLError{Reason: reason, msg: fmt.Sprintf(format, args...)}
}

// endpoint is a Prometheus base URL that passed the strict parse: http or
// https, a host, no userinfo, query, fragment, percent-encoding, dot-segments
// or empty path segments. Its fields are canonical so that two spellings of
// the same server compare equal, which the allow-list and the credential
// Secrets rely on.
type endpoint struct {
	scheme string // "http" or "https"
	host   string // lower case; an IPv6 address keeps its brackets
	port   string // always explicit: 80 and 443 are filled in
	path   string // "" or "/a/b": no trailing slash
	// hostport is the authority as it is dialled and shown: lower case,
	// the port as written (possibly none).
	hostport string
}

// String is the canonical form scheme://host:port/path.
func (e endpoint) String() string {
	return e.scheme + "://" + e.host + ":" + e.port + e.path
}

// display is how messages name the server: as the author wrote it, minus
// nothing (the strict parse refused anything that could hold a secret).
func (e endpoint) display() string { return e.scheme + "://" + e.hostport + e.path }

// apiURL is the URL of the instant-query endpoint below the base path.
func (e endpoint) apiURL() string { return e.display() + "/api/v1/query" }

// under reports whether e is at or below the prefix p: same scheme, host and
// port, and p's path is a prefix of e's at a segment boundary, so that
// /prom covers /prom and /prom/x but not /prometheus.
func (e endpoint) under(p endpoint) bool {
	if e.scheme != p.scheme || e.host != p.host || e.port != p.port {
		return false
	}
	return p.path == "" || e.path == p.path || strings.HasPrefix(e.path, p.path+"/")
}

// parseEndpoint parses rawURL strictly. The checks are what make prefix
// matching sound: the HTTP client joins and cleans the path it sends, so a
// dot-segment or an encoded slash would reach a server outside the prefix
// that the text of the URL seems to name.
func parseEndpoint(rawURL string) (endpoint, error) {
	if strings.TrimSpace(rawURL) == "" {
		return endpoint{}, urlError(ReasonURLInvalid, "invalid Prometheus URL: it is empty")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse quotes the whole URL, userinfo included; keep its reason.
		if uerr, ok := errors.AsType[*url.Error](err); ok {
			err = uerr.Err
		}
		return endpoint{}, urlError(ReasonURLInvalid, "invalid Prometheus URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return endpoint{}, urlError(ReasonURLInvalid, "invalid Prometheus URL: want http:// or https:// with a host")
	}
	if u.Opaque != "" || u.Host == "" {
		return endpoint{}, urlError(ReasonURLInvalid, "invalid Prometheus URL: want http:// or https:// with a host")
	}
	// Refused before anything else so that no later message can quote
	// them. The redacted URL is not built yet, so none of these name it.
	if u.User != nil {
		return endpoint{}, urlError(ReasonURLHasCredentials,
			"the Prometheus URL must not contain credentials: the operator's admin provides them in a Secret")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(rawURL, "#") {
		// A query string would reach Prometheus, or a tenancy proxy in front
		// of it, beside the operator's own parameters.
		return endpoint{}, urlError(ReasonURLHasQuery, "the Prometheus URL must not have a query string or a fragment")
	}
	if strings.Contains(rawURL, "%") {
		return endpoint{}, urlError(ReasonURLInvalid, "invalid Prometheus URL: percent-encoding is not allowed")
	}

	e := endpoint{scheme: u.Scheme, hostport: strings.ToLower(u.Host)}
	host := strings.ToLower(u.Hostname())
	if strings.HasPrefix(u.Host, "[") {
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.Is6() {
			return endpoint{}, urlError(ReasonURLInvalid, "invalid Prometheus URL: bad IPv6 address")
		}
		e.host = "[" + host + "]"
	} else {
		if !validHostname(host) {
			return endpoint{}, urlError(ReasonURLInvalid, "invalid Prometheus URL: the host may hold only letters, digits, '-', '_' and '.'")
		}
		e.host = host
	}
	switch port := u.Port(); port {
	case "":
		e.port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	default:
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return endpoint{}, urlError(ReasonURLInvalid, "invalid Prometheus URL: bad port")
		}
		e.port = strconv.Itoa(n)
	}

	p := u.Path
	if p != "" && u.EscapedPath() != p {
		// A character that needs escaping (space, backslash, non-ASCII):
		// servers disagree on what it means.
		return endpoint{}, urlError(ReasonURLInvalid, "invalid Prometheus URL: the path holds characters that need escaping")
	}
	if p != "" {
		segments := strings.Split(strings.TrimPrefix(p, "/"), "/")
		for i, s := range segments {
			switch {
			case s == "." || s == "..":
				return endpoint{}, urlError(ReasonURLInvalid, "invalid Prometheus URL: the path must not contain . or .. segments")
			case s == "" && i < len(segments)-1:
				return endpoint{}, urlError(ReasonURLInvalid, "invalid Prometheus URL: the path must not contain empty segments (//)")
			}
		}
	}
	e.path = strings.TrimSuffix(p, "/")
	return e, nil
}

func validHostname(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Prefix is one admin-given Prometheus URL prefix: a scheme, host, port and
// path. It covers a URL with the same scheme, host (case-insensitive) and
// port (80 and 443 made explicit) whose path starts with the prefix's path
// at a segment boundary.
type Prefix struct{ e endpoint }

// ParsePrefix parses a prefix with the same strict rules as a Prometheus
// URL: no userinfo, query, fragment, percent-encoding or dot-segments.
func ParsePrefix(s string) (Prefix, error) {
	e, err := parseEndpoint(strings.TrimSpace(s))
	if err != nil {
		// s is not quoted: an admin who put a password in it would find
		// it in the operator's log.
		return Prefix{}, fmt.Errorf("Prometheus URL prefix: %w", err)
	}
	return Prefix{e: e}, nil
}

// String is the prefix in canonical form, scheme://host:port/path.
func (p Prefix) String() string { return p.e.String() }

// Covers reports whether rawURL is a valid Prometheus URL under p.
func (p Prefix) Covers(rawURL string) bool {
	e, err := parseEndpoint(rawURL)
	return err == nil && e.under(p.e)
}

// AllowList is the admin's list of Prometheus URL prefixes that CanaryApps
// may query. The zero value is empty and allows every valid URL: that keeps
// single-team installs and the demo working without configuration. It
// implements flag.Value, for --prometheus-allowed-urls.
type AllowList struct{ prefixes []Prefix }

// ParseAllowList parses a comma-separated list of prefixes, such as
// "http://prometheus.istio-system.svc:9090,https://thanos.example.com/tenant-a".
// Blank entries are ignored; an invalid entry is an error.
func ParseAllowList(s string) (AllowList, error) {
	var a AllowList
	for i, item := range strings.Split(s, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		p, err := ParsePrefix(item)
		if err != nil {
			return AllowList{}, fmt.Errorf("entry %d: %w", i+1, err)
		}
		a.prefixes = append(a.prefixes, p)
	}
	return a, nil
}

// Set implements flag.Value: it adds the prefixes in s, so the flag may be
// given more than once.
func (a *AllowList) Set(s string) error {
	more, err := ParseAllowList(s)
	if err != nil {
		return err
	}
	a.prefixes = append(a.prefixes, more.prefixes...)
	return nil
}

// String implements flag.Value: the prefixes in canonical form, comma-separated.
func (a AllowList) String() string {
	s := make([]string, len(a.prefixes))
	for i, p := range a.prefixes {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// Len is the number of prefixes; 0 means every valid URL is allowed.
func (a AllowList) Len() int { return len(a.prefixes) }

// Admit returns nil when rawURL is a valid Prometheus URL covered by the
// list (any valid URL when the list is empty), and a *URLError saying why
// not otherwise. The controller can call it before Check to report the
// reason without a query.
func (a AllowList) Admit(rawURL string) error {
	e, err := parseEndpoint(rawURL)
	if err != nil {
		return err
	}
	return a.admit(e)
}

// Allowed reports whether Admit accepts rawURL.
func (a AllowList) Allowed(rawURL string) bool { return a.Admit(rawURL) == nil }

func (a AllowList) admit(e endpoint) error {
	if len(a.prefixes) == 0 {
		return nil
	}
	for _, p := range a.prefixes {
		if e.under(p.e) {
			return nil
		}
	}
	// The list itself is not shown: it is the admin's map of internal
	// services, and the author needs only to know whom to ask.
	return urlError(ReasonURLNotAllowed, "Prometheus at %s is not in the operator's allowed Prometheus URLs; ask the operator's admin", e.display())
}
