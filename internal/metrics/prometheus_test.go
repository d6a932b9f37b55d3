package metrics

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

const (
	testExpr = `increase(istio_requests_total{destination_service_name="canaryapp-sample",response_code=~"5.*"}[20s]) > 2`
	// testTime is what the Prometheus API receives for testClock.
	testTime = "1700000000.5"
)

func testClock() time.Time { return time.Unix(1700000000, 500_000_000) }

// received is what the fake Prometheus saw of one request.
type received struct {
	method, path         string
	query, time, timeout string
	user, password       string
	hasAuth              bool
}

// fakePrometheus speaks the /api/v1/query part of the Prometheus HTTP API:
// it accepts the GET and the POST (form) forms and answers with respond.
type fakePrometheus struct {
	*httptest.Server
	getOnly bool // answer POST with 405, like a Prometheus behind a GET-only proxy
	respond http.HandlerFunc

	mu   sync.Mutex
	seen []received
}

func newFakePrometheus(t testing.TB, respond http.HandlerFunc) *fakePrometheus {
	t.Helper()
	f := &fakePrometheus{respond: respond}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakePrometheus) serve(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/api/v1/query") {
		http.NotFound(w, r)
		return
	}
	if f.getOnly && r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		writeAPIError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	user, password, hasAuth := r.BasicAuth()
	f.mu.Lock()
	f.seen = append(f.seen, received{
		method: r.Method, path: r.URL.Path,
		query: r.Form.Get("query"), time: r.Form.Get("time"), timeout: r.Form.Get("timeout"),
		user: user, password: password, hasAuth: hasAuth,
	})
	f.mu.Unlock()
	f.respond(w, r)
}

func (f *fakePrometheus) requests() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.seen...)
}

// withUser returns the server URL with basic-auth credentials in it.
func (f *fakePrometheus) withUser() string {
	u, _ := url.Parse(f.URL)
	u.User = url.UserPassword("user", "secret")
	return u.String()
}

func success(resultType, result string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":%q,"result":%s}}`, resultType, result)
	}
}

func writeAPIError(w http.ResponseWriter, code int, errorType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"status":"error","errorType":%q,"error":%q}`, errorType, msg)
}

func apiError(code int, errorType, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { writeAPIError(w, code, errorType, msg) }
}

func raw(code int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

func TestCheckAgainstPrometheusAPI(t *testing.T) {
	tests := []struct {
		name    string
		respond http.HandlerFunc
		verdict v1.CheckVerdict
		value   string
		message []string // substrings the message must contain
		notIn   []string // substrings it must not contain: text of the answer
	}{
		{
			name:    "one bad series fails",
			respond: success("vector", `[{"metric":{"destination_service_name":"canaryapp-sample","response_code":"503"},"value":[1700000000.5,"3"]}]`),
			verdict: v1.CheckFail, value: "3",
			message: []string{"1 series", "highest value 3"},
			notIn:   []string{"503", "canaryapp-sample"},
		},
		{
			name: "several bad series fail with the highest value",
			respond: success("vector", `[{"metric":{"response_code":"500"},"value":[1700000000.5,"2.5"]},`+
				`{"metric":{"response_code":"503"},"value":[1700000000.5,"3.5"]}]`),
			verdict: v1.CheckFail, value: "3.5 (2 series, max)",
			message: []string{"2 series", "highest value 3.5"},
			notIn:   []string{"response_code"},
		},
		{
			name:    "empty vector passes",
			respond: success("vector", `[]`),
			verdict: v1.CheckPass, value: "empty",
		},
		{
			name: "warnings do not change the verdict",
			respond: raw(http.StatusOK, "application/json",
				`{"status":"success","data":{"resultType":"vector","result":[]},"warnings":["PromQL info: metric might not be a counter"]}`),
			verdict: v1.CheckPass, value: "empty",
		},
		{
			name:    "only NaN samples are inconclusive",
			respond: success("vector", `[{"metric":{},"value":[1700000000.5,"NaN"]}]`),
			verdict: v1.CheckInconclusive, value: "NaN",
			message: []string{"only NaN"},
		},
		{
			name:    "+Inf sample fails",
			respond: success("vector", `[{"metric":{},"value":[1700000000.5,"+Inf"]}]`),
			verdict: v1.CheckFail, value: "+Inf",
		},
		{
			name:    "scalar zero passes",
			respond: success("scalar", `[1700000000.5,"0"]`),
			verdict: v1.CheckPass, value: "0",
		},
		{
			name:    "scalar non-zero fails",
			respond: success("scalar", `[1700000000.5,"2"]`),
			verdict: v1.CheckFail, value: "2",
		},
		{
			name:    "scalar NaN is inconclusive",
			respond: success("scalar", `[1700000000.5,"NaN"]`),
			verdict: v1.CheckInconclusive, value: "NaN",
			message: []string{"NaN"},
		},
		{
			name:    "matrix is inconclusive",
			respond: success("matrix", `[{"metric":{},"values":[[1700000000,"1"],[1700000010,"4"]]}]`),
			verdict: v1.CheckInconclusive,
			message: []string{"range vector", "must return an instant vector or a scalar"},
		},
		{
			name:    "string is inconclusive",
			respond: success("string", `[1700000000.5,"hello"]`),
			verdict: v1.CheckInconclusive,
			message: []string{"string", "must return an instant vector or a scalar"},
		},
		{
			name:    "bad_data carries the Prometheus error",
			respond: apiError(http.StatusBadRequest, "bad_data", `invalid parameter "query": 1:9: parse error: unexpected "}"`),
			verdict: v1.CheckInconclusive,
			message: []string{"rejected the query (bad_data)", "invalid"},
			notIn:   []string{"parse error"},
		},
		{
			name:    "execution error carries the Prometheus error",
			respond: apiError(http.StatusUnprocessableEntity, "execution", "found duplicate series for the match group"),
			verdict: v1.CheckInconclusive,
			message: []string{"(execution)", "failed while it was evaluated"},
			notIn:   []string{"duplicate"},
		},
		{
			name:    "503 timeout carries the Prometheus error",
			respond: apiError(http.StatusServiceUnavailable, "timeout", "query timed out in expression evaluation"),
			verdict: v1.CheckInconclusive,
			message: []string{"server error: 503", "(timeout)", "timed out"},
			notIn:   []string{"expression evaluation"},
		},
		{
			name:    "500 with a text body",
			respond: raw(http.StatusInternalServerError, "text/plain", "internal error\nsomething broke\n"),
			verdict: v1.CheckInconclusive,
			message: []string{"server error: 500 (text/plain)"},
			notIn:   []string{"internal error", "broke"},
		},
		{
			name:    "503 without a body",
			respond: raw(http.StatusServiceUnavailable, "text/plain", ""),
			verdict: v1.CheckInconclusive,
			message: []string{"returned server error: 503 (text/plain)"},
		},
		{
			name:    "404 from a wrong path prefix",
			respond: raw(http.StatusNotFound, "text/plain", "404 page not found"),
			verdict: v1.CheckInconclusive,
			message: []string{"client error: 404 (text/plain)"},
			notIn:   []string{"page not found"},
		},
		{
			name:    "status error with 200",
			respond: raw(http.StatusOK, "application/json", `{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}`),
			verdict: v1.CheckInconclusive,
			message: []string{"rejected the query (execution)"},
			notIn:   []string{"many-to-many"},
		},
		{
			name:    "garbage body",
			respond: raw(http.StatusOK, "text/html", "<html>this is not Prometheus</html>"),
			verdict: v1.CheckInconclusive,
			message: []string{"unreadable answer (200, text/html)"},
			notIn:   []string{"not Prometheus"},
		},
		{
			name:    "truncated JSON",
			respond: raw(http.StatusOK, "application/json", `{"status":"success","data":{"resultType":"vector","result":[{"metric":`),
			verdict: v1.CheckInconclusive,
			message: []string{"unreadable answer"},
		},
		{
			name:    "a proxy echoing the credentials is not shown",
			respond: raw(http.StatusBadGateway, "text/plain", "upstream refused user:secret@prometheus and password secret"),
			verdict: v1.CheckInconclusive,
			message: []string{"server error: 502 (text/plain)"},
			notIn:   []string{"upstream"},
		},
		{
			name:    "a JSON error of an unknown type is not shown",
			respond: apiError(http.StatusBadRequest, "token=SECRET-ABC", "internal-admin-api build=7f3a"),
			verdict: v1.CheckInconclusive,
			message: []string{"rejected the query (unknown)"},
			notIn:   []string{"SECRET", "7f3a"},
		},
		{
			name:    "an unknown result type is not shown",
			respond: success("kube_secret_info", `[]`),
			verdict: v1.CheckInconclusive,
			message: []string{"unknown result type"},
			notIn:   []string{"kube_secret"},
		},
	}
	for _, tt := range tests {
		// auth=true sends basic auth that an admin Secret provides, the
		// only way credentials reach a query now.
		for _, auth := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/auth=%t", tt.name, auth), func(t *testing.T) {
				srv := newFakePrometheus(t, tt.respond)
				opts := []Option{WithClock(testClock)}
				if auth {
					opts = append(opts, WithCredentials(staticCredentials{auth: &Auth{Source: "test", Username: "user", Password: "secret"}}))
				}
				p := NewPrometheus(opts...)

				got := p.Check(t.Context(), Query{URL: srv.URL, Expr: testExpr})
				t.Logf("%+v", got)

				if got.Verdict != tt.verdict || got.Value != tt.value {
					t.Fatalf("Check() = %+v, want verdict %s value %q", got, tt.verdict, tt.value)
				}
				for _, want := range tt.message {
					if !strings.Contains(got.Message, want) {
						t.Errorf("message %q does not contain %q", got.Message, want)
					}
				}
				for _, never := range tt.notIn {
					if strings.Contains(got.Message, never) {
						t.Errorf("message %q shows %q from the answer", got.Message, never)
					}
				}
				if got.Verdict == v1.CheckInconclusive && !strings.Contains(got.Message, srv.URL) &&
					!strings.Contains(got.Message, "must return") && got.Value != "NaN" {
					t.Errorf("message %q does not name the server %s", got.Message, srv.URL)
				}
				if got.Reason != "" {
					t.Errorf("reason = %q, want none for an answer the provider read", got.Reason)
				}
				assertNoCredentials(t, got)

				reqs := srv.requests()
				if len(reqs) != 1 {
					t.Fatalf("server saw %d requests, want 1", len(reqs))
				}
				r := reqs[0]
				if r.method != http.MethodPost || r.path != "/api/v1/query" {
					t.Errorf("request = %s %s, want POST /api/v1/query", r.method, r.path)
				}
				if r.query != testExpr || r.time != testTime || r.timeout != "5s" {
					t.Errorf("request params query=%q time=%q timeout=%q, want %q, %q, 5s", r.query, r.time, r.timeout, testExpr, testTime)
				}
				if r.hasAuth != auth || (auth && (r.user != "user" || r.password != "secret")) {
					t.Errorf("basic auth = %t %q/%q, want %t user/secret", r.hasAuth, r.user, r.password, auth)
				}
			})
		}
	}
}

// staticCredentials answers every lookup with auth, or err.
type staticCredentials struct {
	auth *Auth
	err  error
}

func (c staticCredentials) Lookup(context.Context, string, string) (*Auth, error) {
	return c.auth, c.err
}

func assertNoCredentials(t *testing.T, r Result) {
	t.Helper()
	for _, s := range []string{r.Message, r.Value} {
		if strings.Contains(s, "secret") || strings.Contains(s, "user:") || strings.Contains(s, "user@") {
			t.Errorf("result leaks credentials: %+v", r)
		}
	}
}

func TestCheckFallsBackToGET(t *testing.T) {
	srv := newFakePrometheus(t, success("vector", `[]`))
	srv.getOnly = true
	p := NewPrometheus(WithClock(testClock))

	got := p.Check(t.Context(), Query{URL: srv.URL, Expr: testExpr})

	if got.Verdict != v1.CheckPass {
		t.Fatalf("Check() = %+v, want Pass", got)
	}
	reqs := srv.requests()
	if len(reqs) != 1 || reqs[0].method != http.MethodGet {
		t.Fatalf("server answered %+v, want one GET after the refused POST", reqs)
	}
	if reqs[0].query != testExpr || reqs[0].time != testTime {
		t.Errorf("GET params query=%q time=%q, want %q and %q", reqs[0].query, reqs[0].time, testExpr, testTime)
	}
}

func TestCheckKeepsThePathPrefix(t *testing.T) {
	srv := newFakePrometheus(t, success("vector", `[]`))
	p := NewPrometheus()

	got := p.Check(t.Context(), Query{URL: srv.URL + "/prometheus/", Expr: "up == 0"})

	reqs := srv.requests()
	if got.Verdict != v1.CheckPass || len(reqs) != 1 || reqs[0].path != "/prometheus/api/v1/query" {
		t.Fatalf("Check() = %+v with requests %+v, want Pass from /prometheus/api/v1/query", got, reqs)
	}
}

// slowPrometheus answers only when the client gives up.
func slowPrometheus(t *testing.T) *fakePrometheus {
	release := make(chan struct{})
	srv := newFakePrometheus(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	return srv
}

func TestCheckTimesOut(t *testing.T) {
	srv := slowPrometheus(t)
	p := NewPrometheus(WithClock(testClock))

	got := p.Check(t.Context(), Query{URL: srv.URL, Expr: testExpr, Timeout: 50 * time.Millisecond})
	t.Logf("%+v", got)

	if got.Verdict != v1.CheckInconclusive || !strings.Contains(got.Message, "did not answer within 50ms") ||
		!strings.Contains(got.Message, srv.URL) {
		t.Fatalf("Check() = %+v, want Inconclusive: %s did not answer within 50ms", got, srv.URL)
	}
	assertNoCredentials(t, got)
	if reqs := srv.requests(); len(reqs) != 1 || reqs[0].timeout != "50ms" {
		t.Errorf("requests = %+v, want one with timeout=50ms", reqs)
	}
}

func TestCheckHonoursCallerContext(t *testing.T) {
	srv := slowPrometheus(t)
	p := NewPrometheus()

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	got := p.Check(ctx, Query{URL: srv.URL, Expr: testExpr, Timeout: time.Hour})

	if got.Verdict != v1.CheckInconclusive || !strings.Contains(got.Message, "stopped: context canceled") {
		t.Fatalf("Check() = %+v, want Inconclusive because the caller cancelled", got)
	}
}

func TestCheckConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	p := NewPrometheus()

	got := p.Check(t.Context(), Query{URL: "http://" + addr + "/", Expr: testExpr})
	t.Logf("%+v", got)

	want := "cannot reach Prometheus at http://" + addr + ": connection failed"
	if got.Verdict != v1.CheckInconclusive || got.Message != want {
		t.Fatalf("Check() = %+v, want Inconclusive: %s", got, want)
	}
}

func TestCheckRejectsInvalidURLs(t *testing.T) {
	for u, reason := range map[string]string{
		"":                                    ReasonURLInvalid,
		"prometheus:9090":                     ReasonURLInvalid,
		"ftp://user:secret@prometheus:9090":   ReasonURLInvalid,
		"http://user:secret@[::1":             ReasonURLInvalid,
		"http://user:secret@":                 ReasonURLInvalid,
		"http://user:sec ret@prometheus:9090": ReasonURLInvalid,
		"http://user:secret@prometheus:9090":  ReasonURLHasCredentials,
		"http://prometheus:9090/?x=secret":    ReasonURLHasQuery,
	} {
		t.Run(u, func(t *testing.T) {
			got := NewPrometheus().Check(t.Context(), Query{URL: u, Expr: testExpr})
			t.Logf("%+v", got)
			if got.Verdict != v1.CheckInconclusive || got.Reason != reason {
				t.Fatalf("Check(%q) = %+v, want Inconclusive with reason %s", u, got, reason)
			}
			if reason == ReasonURLInvalid && !strings.Contains(got.Message, "invalid Prometheus URL") {
				t.Errorf("message = %q, want it to say invalid Prometheus URL", got.Message)
			}
			if strings.Contains(got.Message, "secret") || strings.Contains(got.Message, "sec ret") {
				t.Errorf("message leaks credentials: %q", got.Message)
			}
		})
	}
}

func mustEndpoint(t *testing.T, raw string) endpoint {
	t.Helper()
	e, err := parseEndpoint(raw)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestClientsAreCachedPerURLAndCredentials(t *testing.T) {
	p := NewPrometheus()
	client := func(raw string, auth *Auth) *http.Client {
		t.Helper()
		c, err := p.client(mustEndpoint(t, raw), auth)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a1 := client("http://a:9090", nil)
	if a2 := client("http://A:9090/", nil); a1 != a2 {
		t.Error("two spellings of one URL got different clients")
	}
	if b := client("http://b:9090", nil); a1 == b {
		t.Error("different URLs share a client")
	}
	v1 := client("http://a:9090", &Auth{Source: "ns/s", Version: "1", BearerToken: "t1"})
	if v1 == a1 {
		t.Error("a client with credentials is shared with one without")
	}
	if again := client("http://a:9090", &Auth{Source: "ns/s", Version: "1", BearerToken: "t1"}); again != v1 {
		t.Error("the same Secret version got a new client")
	}
	if v2 := client("http://a:9090", &Auth{Source: "ns/s", Version: "2", BearerToken: "t2"}); v2 == v1 {
		t.Error("a rotated Secret kept the old client")
	}
	if other := client("http://a:9090", &Auth{Source: "ns/s", Version: "1", BearerToken: "t3"}); other == v1 {
		t.Error("other credentials with the same Source and Version share a client")
	}

	for i := range 2 * maxClients {
		client(fmt.Sprintf("http://p%d:9090", i), nil)
	}
	if n := len(p.clients); n > maxClients {
		t.Errorf("cache holds %d clients, want at most %d", n, maxClients)
	}
}

// TestCheckConcurrently runs checks in parallel against one provider; with
// -race it proves the client cache is safe for concurrent use.
func TestCheckConcurrently(t *testing.T) {
	srv := newFakePrometheus(t, success("vector", `[{"metric":{},"value":[1700000000.5,"3"]}]`))
	other := newFakePrometheus(t, success("vector", `[]`))
	p := NewPrometheus()

	const workers = 16
	results := make(chan Result, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { results <- p.Check(t.Context(), Query{URL: srv.URL, Expr: testExpr}) })
		wg.Go(func() { results <- p.Check(t.Context(), Query{URL: other.URL, Expr: testExpr}) })
	}
	wg.Wait()
	close(results)

	count := map[v1.CheckVerdict]int{}
	for r := range results {
		count[r.Verdict]++
	}
	if count[v1.CheckFail] != workers || count[v1.CheckPass] != workers {
		t.Errorf("verdicts = %v, want %d Fail and %d Pass", count, workers, workers)
	}
	if n := len(p.clients); n != 2 {
		t.Errorf("cache holds %d clients, want 2", n)
	}
}

func BenchmarkCheck(b *testing.B) {
	srv := newFakePrometheus(b, success("vector",
		`[{"metric":{"destination_service_name":"canaryapp-sample","response_code":"503"},"value":[1700000000.5,"3"]}]`))
	p := NewPrometheus()
	q := Query{URL: srv.URL, Expr: testExpr}
	ctx := b.Context()

	b.ReportAllocs()
	for b.Loop() {
		if r := p.Check(ctx, q); r.Verdict != v1.CheckFail {
			b.Fatalf("Check() = %+v, want Fail", r)
		}
	}
}
