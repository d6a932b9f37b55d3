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
//     several ("3.5 (2 series, max)"), and the Message names that series.
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
// Messages name the Prometheus server by scheme, host and path only: the
// userinfo, query and fragment of the URL never appear in a Result, because
// a prometheusURL may carry basic-auth credentials and Results end up in the
// CanaryApp status and in events.
package metrics

import (
	"context"
	"time"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// DefaultTimeout bounds a query whose Timeout is zero.
const DefaultTimeout = 5 * time.Second

// Provider runs one analysis query. It never returns an error: a query that
// could not run is an Inconclusive result with a message, so the caller has
// a single outcome to record.
type Provider interface {
	Check(ctx context.Context, q Query) Result
}

// Query is one analysis query.
type Query struct {
	// URL is the base URL of the Prometheus HTTP API, for example
	// http://prometheus.istio-system.svc:9090. Userinfo in the URL is sent
	// as basic auth.
	URL string
	// Expr is the PromQL expression; it returns samples when the release is bad.
	Expr string
	// Timeout bounds the whole query, and is passed to Prometheus so it stops
	// evaluating when nobody waits for the answer. Zero or less means
	// DefaultTimeout.
	Timeout time.Duration
}

// Result is the outcome of one query.
type Result struct {
	// Verdict is CheckPass, CheckFail or CheckInconclusive.
	Verdict v1.CheckVerdict
	// Value is the answer in short form: "empty", "0", "3",
	// "3.5 (2 series, max)", "NaN"; empty when the query could not run.
	Value string
	// Message explains an Inconclusive verdict, or names the worst series of
	// a failed one. It never contains credentials.
	Message string
}
