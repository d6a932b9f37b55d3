// Package metrics runs a CanaryApp's analysis query against Prometheus and
// turns the answer into a verdict.
//
// The query says when a release is BAD, as in the original operator, for
// example
//
//	increase(istio_requests_total{destination_service_name="canaryapp-sample",response_code=~"5.*"}[20s]) > 2
//
// so any sample it returns is evidence against the canary:
//
//   - an instant vector with at least one sample that is not NaN is Fail.
//     The Value is the sample ("3"), or the highest sample when there are
//     several ("3.5 (2 series, max)"), and the Message says how many series
//     returned samples, never their labels.
//     +Inf and -Inf count as samples: a comparison filter such as "> 2"
//     kept them, so the query reported them as bad.
//   - an empty instant vector is Pass, with Value "empty".
//   - an instant vector whose samples are all NaN is Inconclusive: NaN is
//     what PromQL returns for 0/0 (a ratio over no traffic), so it says
//     nothing about the release. NaN samples beside real ones are ignored.
//   - a scalar is Fail when it is non-zero (±Inf included), Pass when it is
//     zero and Inconclusive when it is NaN.
//   - a range vector (matrix) or a string is Inconclusive: the query must
//     return an instant vector or a scalar.
//
// A query that could not run (HTTP error, Prometheus error, connection
// refused, timeout, unreadable answer) is Inconclusive with a short message.
// The CanaryApp's onQueryError policy decides what Inconclusive means; this
// package never decides that. Prometheus warnings and infos are ignored.
//
// The URL comes from a CanaryApp, whose author is not trusted: it may point
// at any service the operator can reach, or at a server of the author's
// own. So the provider
//
//   - refuses, before any connection, a URL outside the admin's AllowList
//     and a URL with userinfo, a query string, a fragment, percent-encoding
//     or dot-segments (each with a Reason);
//   - never follows a redirect;
//   - reads at most 4 MiB of an answer (WithMaxResponseBytes);
//   - bounds every query by MaxTimeout whatever the CanaryApp asks, and the
//     dial and the wait for response headers on their own;
//   - reports an answer that is not a Prometheus result by status code and
//     content type only, Prometheus' own errors by their errorType mapped
//     to fixed words, connection failures without resolver or address
//     detail, and a failing vector by its number of series and highest
//     value, never its labels. Results land in the CanaryApp's status and
//     events, where text from another team's server must not appear.
//
// Credentials never come from the CanaryApp: a Credentials lookup (admin
// Secrets, see package promauth) supplies them per URL and namespace.
package metrics

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

const (
	// DefaultTimeout bounds a query whose Timeout is zero.
	DefaultTimeout = 5 * time.Second
	// MaxTimeout bounds every query, whatever its Timeout: a CanaryApp's
	// check interval can be an hour, and a query that long would hold one
	// of the controller's few workers away from every other tenant.
	MaxTimeout = 30 * time.Second
	// DefaultMaxResponseBytes bounds the body of an answer. A real answer to
	// an analysis query is a few series; the bound keeps a hostile server
	// from filling the operator's memory.
	DefaultMaxResponseBytes = 4 << 20
)

// Reasons a Result carries when the provider refused a query or stopped
// reading its answer. They are machine-readable, for the Analysis
// condition's reason and status.checks[].reason. Other Inconclusive results
// have no Reason.
const (
	// ReasonURLNotAllowed: the URL is outside the admin's AllowList.
	ReasonURLNotAllowed = v1.ReasonPrometheusURLNotAllowed
	// ReasonURLHasCredentials: the URL has userinfo. Credentials belong in
	// an admin Secret, not in a spec that every reader of the CanaryApp and
	// its Git repository sees.
	ReasonURLHasCredentials = "PrometheusURLHasCredentials"
	// ReasonURLHasQuery: the URL has a query string or a fragment, which
	// could override a tenancy proxy's parameters.
	ReasonURLHasQuery = "PrometheusURLHasQuery"
	// ReasonURLInvalid: the URL cannot be parsed, is not http(s) with a
	// host, or has percent-encoding, dot-segments or empty segments.
	ReasonURLInvalid = "PrometheusURLInvalid"
	// ReasonResponseTooLarge: the answer exceeded the response size limit.
	ReasonResponseTooLarge = "ResponseTooLarge"
	// ReasonCredentialsUnavailable: the credentials for the URL could not
	// be read, or the admin's Secret for it is malformed.
	ReasonCredentialsUnavailable = "PrometheusCredentialsUnavailable"
)

// Provider runs one analysis query. It never returns an error: a query that
// could not run is an Inconclusive result with a message, so the caller has
// a single outcome to record.
type Provider interface {
	Check(ctx context.Context, q Query) Result
}

// Query is one analysis query.
type Query struct {
	// URL is the base URL of the Prometheus HTTP API, for example
	// http://prometheus.istio-system.svc:9090. A URL with userinfo, a query
	// string or a fragment is refused.
	URL string
	// Expr is the PromQL expression; it returns samples when the release is bad.
	Expr string
	// Timeout bounds the whole query, and is passed to Prometheus so it stops
	// evaluating when nobody waits for the answer. Zero or less means
	// DefaultTimeout; more than MaxTimeout means MaxTimeout.
	Timeout time.Duration
	// Namespace is the CanaryApp's namespace: the credential Secrets say
	// which namespaces may use them.
	Namespace string
}

// Result is the outcome of one query.
type Result struct {
	// Verdict is CheckPass, CheckFail or CheckInconclusive.
	Verdict v1.CheckVerdict
	// Value is the answer in short form: "empty", "0", "3",
	// "3.5 (2 series, max)", "NaN"; empty when the query could not run.
	Value string
	// Message explains an Inconclusive verdict, or says how many series a
	// failed one returned. It never contains credentials, and no text of the
	// server's answer beyond its status code and content type.
	Message string
	// Reason is one of the Reason constants when the provider refused the
	// query or its answer, and empty otherwise.
	Reason string
	// Samples is how many samples that are not NaN the answer had (a scalar
	// counts as one), and Max the highest of them: what a rule that judges
	// a value (package analysis) reads instead of Verdict.
	Samples int
	Max     float64
}

// Auth is how to reach one Prometheus, as the admin configured it. String
// and GoString never print a secret.
type Auth struct {
	// Source names where the Auth came from, such as the Secret
	// "canaryop-system/thanos"; messages may show it.
	Source string
	// Version changes whenever the credentials do (a Secret's
	// resourceVersion), so that a cached client never outlives them.
	Version string
	// BearerToken is sent as "Authorization: Bearer <token>". It excludes
	// Username and Password.
	BearerToken string
	// Username and Password are sent as basic auth.
	Username, Password string
	// CA is a PEM bundle of the certificate authorities to trust for an
	// https URL instead of the system's.
	CA []byte
	// InsecureSkipVerify turns off certificate verification.
	InsecureSkipVerify bool
}

// String implements fmt.Stringer without revealing any secret. Its
// receiver is a value so that printing an Auth, not only a *Auth, is safe.
func (a Auth) String() string {
	kind := "no credentials"
	switch {
	case a.BearerToken != "":
		kind = "bearer token"
	case a.Username != "" || a.Password != "":
		kind = "basic auth"
	}
	return fmt.Sprintf("%s from %s", kind, a.Source)
}

// GoString implements fmt.GoStringer without revealing any secret.
func (a Auth) GoString() string { return a.String() }

// Credentials finds the credentials for a query.
type Credentials interface {
	// Lookup returns the Auth for a query to rawURL from a CanaryApp in
	// namespace, or nil when the query needs none. Its errors never hold a
	// secret value.
	Lookup(ctx context.Context, namespace, rawURL string) (*Auth, error)
}
