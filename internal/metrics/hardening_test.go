package metrics

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atzedevries/canaryop/internal/testhostile"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

const emptyVector = `{"status":"success","data":{"resultType":"vector","result":[]}}`

func emptyVectorHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(emptyVector))
}

// countingDialer counts dials and then dials for real.
type countingDialer struct{ n atomic.Int64 }

func (d *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.n.Add(1)
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

func TestURLOutsideAllowListIsNotDialled(t *testing.T) {
	allowed := newCountingServer(t, emptyVectorHandler)
	other := newCountingServer(t, emptyVectorHandler)
	list, err := ParseAllowList(allowed.URL + "/prom")
	if err != nil {
		t.Fatal(err)
	}
	var dials countingDialer
	creds := &recordingCredentials{}
	p := NewPrometheus(WithAllowList(list), WithDialContext(dials.DialContext), WithCredentials(creds))

	for _, u := range []string{
		other.URL,                   // another port
		allowed.URL,                 // above the prefix
		allowed.URL + "/prometheus", // not at a segment boundary
		allowed.URL + "/prom/../x",  // dot-segments
		"http://169.254.169.254/",   // cloud metadata
		"http://localhost" + allowed.URL[len("http://127.0.0.1"):] + "/prom", // another spelling of the host
	} {
		res := p.Check(t.Context(), Query{URL: u, Expr: "up"})
		t.Logf("%s: %+v", u, res)
		if res.Verdict != v1.CheckInconclusive || res.Reason == "" {
			t.Errorf("Check(%s) = %+v, want Inconclusive with a reason", u, res)
		}
	}
	if n := dials.n.Load(); n != 0 {
		t.Errorf("refused URLs caused %d dials, want 0", n)
	}
	if n := len(creds.calls()); n != 0 {
		t.Errorf("refused URLs caused %d credential lookups, want 0", n)
	}
	if res := p.Check(t.Context(), Query{URL: other.URL, Expr: "up"}); res.Reason != v1.ReasonPrometheusURLNotAllowed {
		t.Errorf("reason = %q, want %s", res.Reason, v1.ReasonPrometheusURLNotAllowed)
	}

	// The counter counts: an allowed URL dials once.
	if res := p.Check(t.Context(), Query{URL: allowed.URL + "/prom/", Expr: "up"}); res.Verdict != v1.CheckPass {
		t.Fatalf("Check(allowed) = %+v, want Pass", res)
	}
	if n := dials.n.Load(); n != 1 {
		t.Errorf("the allowed URL caused %d dials, want 1", n)
	}
	if other.hits.Load() != 0 || allowed.hits.Load() != 1 {
		t.Errorf("hits: other %d, allowed %d; want 0 and 1", other.hits.Load(), allowed.hits.Load())
	}
}

// A resolver error names the host it looked up and the DNS server; neither
// appears.
func TestDialErrorsHideResolverDetail(t *testing.T) {
	for name, dialErr := range map[string]error{
		"no such host": &net.DNSError{Err: "no such host", Name: "internal-db.corp", Server: "10.0.0.10:53", IsNotFound: true},
		"dns timeout":  &net.DNSError{Err: "i/o timeout", Name: "internal-db.corp", Server: "10.0.0.10:53", IsTimeout: true},
		"refused":      &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5432}, Err: errors.New("connect: connection refused")},
	} {
		t.Run(name, func(t *testing.T) {
			dial := func(context.Context, string, string) (net.Conn, error) { return nil, dialErr }
			res := NewPrometheus(WithDialContext(dial)).Check(t.Context(), Query{URL: "http://prom.example:9090", Expr: "up"})
			t.Logf("%+v", res)

			want := "connection failed"
			if dialErr.(net.Error).Timeout() {
				want = "timed out"
			}
			if res.Verdict != v1.CheckInconclusive || res.Message != "cannot reach Prometheus at http://prom.example:9090: "+want {
				t.Errorf("Check() = %+v, want Inconclusive: cannot reach Prometheus at http://prom.example:9090: %s", res, want)
			}
			mustNotContain(t, res, "internal-db", "10.0.0.10", "10.1.2.3", "5432", "no such host", "refused")
		})
	}
}

func TestDialHasItsOwnTimeout(t *testing.T) {
	var deadline time.Duration
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		if d, ok := ctx.Deadline(); ok {
			deadline = time.Until(d)
		}
		return nil, errors.New("refused by the test")
	}
	NewPrometheus(WithDialContext(dial)).Check(t.Context(), Query{URL: "http://prom.example:9090", Expr: "up", Timeout: time.Hour})
	if deadline <= 0 || deadline > dialTimeout {
		t.Errorf("the dial had %s left, want a deadline within %s", deadline, dialTimeout)
	}
}

// tarpit is a Prometheus that accepts connections and never answers.
func tarpit(t *testing.T) string { return "http://" + testhostile.Tarpit(t) }

func TestNeverAnsweringServerTimesOut(t *testing.T) {
	u := tarpit(t)
	start := time.Now()
	res := NewPrometheus().Check(t.Context(), Query{URL: u, Expr: "up", Timeout: 200 * time.Millisecond})
	elapsed := time.Since(start)
	t.Logf("%+v after %s", res, elapsed)

	if res.Verdict != v1.CheckInconclusive || !strings.Contains(res.Message, "did not answer within 200ms") {
		t.Errorf("Check() = %+v, want Inconclusive: did not answer within 200ms", res)
	}
	if elapsed > 10*time.Second {
		t.Errorf("Check() took %s, want it bounded by the 200ms timeout", elapsed)
	}
}

func TestResponseHeaderTimeout(t *testing.T) {
	u := tarpit(t)
	p := NewPrometheus(WithResponseHeaderTimeout(100 * time.Millisecond))
	start := time.Now()
	res := p.Check(t.Context(), Query{URL: u, Expr: "up", Timeout: 20 * time.Second})
	elapsed := time.Since(start)
	t.Logf("%+v after %s", res, elapsed)

	if res.Verdict != v1.CheckInconclusive || !strings.Contains(res.Message, "sent no response headers within 100ms") {
		t.Errorf("Check() = %+v, want Inconclusive: sent no response headers within 100ms", res)
	}
	if elapsed > 10*time.Second {
		t.Errorf("Check() took %s, want it bounded by the 100ms header timeout", elapsed)
	}
}

func TestQueryTimeout(t *testing.T) {
	for asked, want := range map[time.Duration]time.Duration{
		0:                            DefaultTimeout,
		-time.Second:                 DefaultTimeout,
		50 * time.Millisecond:        50 * time.Millisecond,
		10 * time.Second:             10 * time.Second,
		MaxTimeout:                   MaxTimeout,
		MaxTimeout + time.Nanosecond: MaxTimeout,
		time.Hour:                    MaxTimeout,
	} {
		if got := queryTimeout(asked); got != want {
			t.Errorf("queryTimeout(%s) = %s, want %s", asked, got, want)
		}
	}
}

func TestMaxResponseBytes(t *testing.T) {
	small := `{"status":"success","data":{"resultType":"vector","result":[]}}`
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/big/api/v1/query" {
			_, _ = w.Write([]byte(small + strings.Repeat(" ", 2048)))
			return
		}
		_, _ = w.Write([]byte(small))
	})
	p := NewPrometheus(WithMaxResponseBytes(int64(len(small))))

	if res := p.Check(t.Context(), Query{URL: srv.URL, Expr: "up"}); res.Verdict != v1.CheckPass {
		t.Errorf("an answer of exactly the limit: %+v, want Pass", res)
	}
	res := p.Check(t.Context(), Query{URL: srv.URL + "/big", Expr: "up"})
	if res.Reason != ReasonResponseTooLarge || !strings.HasSuffix(res.Message, "response exceeds 63 bytes") {
		t.Errorf("an answer over the limit: %+v, want ResponseTooLarge: response exceeds 63 bytes", res)
	}
	if got := formatSize(1 << 10); got != "1 KiB" {
		t.Errorf("formatSize(1024) = %q", got)
	}
}

// recordingCredentials hands out auth and records what it was asked.
type recordingCredentials struct {
	mu   sync.Mutex
	auth *Auth
	err  error
	seen [][2]string
}

func (c *recordingCredentials) Lookup(_ context.Context, namespace, rawURL string) (*Auth, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, [2]string{namespace, rawURL})
	return c.auth, c.err
}

func (c *recordingCredentials) calls() [][2]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][2]string(nil), c.seen...)
}

func (c *recordingCredentials) set(a *Auth) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.auth = a
}

func TestCredentialsComeFromTheLookup(t *testing.T) {
	const token = "tok-3f9a-very-secret"
	var gotAuth atomic.Value
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		gotAuth.Store(r.Header.Get("Authorization"))
		if r.Header.Get("Authorization") != "Bearer "+token {
			// A server that echoes what it got, as some proxies do.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"bad credentials ` + r.Header.Get("Authorization") + `"}`))
			return
		}
		emptyVectorHandler(w, r)
	})
	creds := &recordingCredentials{auth: &Auth{Source: "canaryop-system/prom", Version: "1", BearerToken: token}}
	p := NewPrometheus(WithCredentials(creds))

	res := p.Check(t.Context(), Query{URL: srv.URL + "/prom", Expr: "up", Namespace: "team-a"})
	if res.Verdict != v1.CheckPass || gotAuth.Load() != "Bearer "+token {
		t.Fatalf("Check() = %+v with Authorization %q, want Pass with the bearer token", res, gotAuth.Load())
	}
	if calls := creds.calls(); len(calls) != 1 || calls[0] != [2]string{"team-a", srv.URL + "/prom"} {
		t.Errorf("lookups = %v, want one for team-a and the URL", calls)
	}

	// A rotated Secret (new resourceVersion) is used at once.
	creds.set(&Auth{Source: "canaryop-system/prom", Version: "2", BearerToken: token + "-old-and-wrong"})
	res = p.Check(t.Context(), Query{URL: srv.URL + "/prom", Expr: "up", Namespace: "team-a"})
	t.Logf("%+v", res)
	if got, _ := gotAuth.Load().(string); !strings.HasSuffix(got, "-old-and-wrong") {
		t.Errorf("after rotation the server got %q, want the new token", got)
	}
	if res.Verdict != v1.CheckInconclusive || !strings.Contains(res.Message, "returned client error: 401 (bad_data)") {
		t.Errorf("Check() = %+v, want Inconclusive: returned client error: 401 (bad_data)", res)
	}
	mustNotContain(t, res, "tok-3f9a", "secret", "Bearer")
}

func TestBasicAuthFromTheLookup(t *testing.T) {
	var user, pass atomic.Value
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		user.Store(u)
		pass.Store(p)
		emptyVectorHandler(w, r)
	})
	p := NewPrometheus(WithCredentials(&recordingCredentials{auth: &Auth{Source: "s", Username: "reader", Password: "pw-very-secret"}}))
	if res := p.Check(t.Context(), Query{URL: srv.URL, Expr: "up"}); res.Verdict != v1.CheckPass || user.Load() != "reader" || pass.Load() != "pw-very-secret" {
		t.Errorf("Check() = %+v, server saw %v/%v; want Pass with reader/pw-very-secret", res, user.Load(), pass.Load())
	}
}

func TestCredentialsLookupFailureSendsNothing(t *testing.T) {
	srv := newCountingServer(t, emptyVectorHandler)
	var dials countingDialer
	p := NewPrometheus(WithDialContext(dials.DialContext),
		WithCredentials(&recordingCredentials{err: errors.New("secret canaryop-system/prom: needs a url")}))

	res := p.Check(t.Context(), Query{URL: srv.URL, Expr: "up"})
	t.Logf("%+v", res)
	if res.Verdict != v1.CheckInconclusive || res.Reason != ReasonCredentialsUnavailable || !strings.Contains(res.Message, "needs a url") {
		t.Errorf("Check() = %+v, want Inconclusive %s with the lookup's reason", res, ReasonCredentialsUnavailable)
	}
	if dials.n.Load() != 0 || srv.hits.Load() != 0 {
		t.Errorf("%d dials and %d requests, want none", dials.n.Load(), srv.hits.Load())
	}
}

func TestMalformedAuthIsRefused(t *testing.T) {
	srv := newCountingServer(t, emptyVectorHandler)
	for name, auth := range map[string]*Auth{
		"token and password": {Source: "ns/both", BearerToken: "tok-secret", Username: "u", Password: "pw-secret"},
		"bad CA":             {Source: "ns/ca", CA: []byte("not a certificate: ca-secret")},
	} {
		t.Run(name, func(t *testing.T) {
			res := NewPrometheus(WithCredentials(&recordingCredentials{auth: auth})).Check(t.Context(), Query{URL: srv.URL, Expr: "up"})
			t.Logf("%+v", res)
			if res.Verdict != v1.CheckInconclusive || res.Reason != ReasonCredentialsUnavailable || !strings.Contains(res.Message, auth.Source) {
				t.Errorf("Check() = %+v, want Inconclusive %s naming %s", res, ReasonCredentialsUnavailable, auth.Source)
			}
			mustNotContain(t, res, "secret")
		})
	}
	if srv.hits.Load() != 0 {
		t.Errorf("server got %d requests, want 0", srv.hits.Load())
	}
}

func TestTLSWithTheSecretsCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(emptyVectorHandler))
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	tests := []struct {
		name    string
		auth    *Auth
		verdict v1.CheckVerdict
		message string
	}{
		{"system roots do not know the test CA", nil, v1.CheckInconclusive, "cannot reach Prometheus at " + srv.URL + ": TLS handshake failed"},
		{"the Secret's ca.crt", &Auth{Source: "s", CA: ca}, v1.CheckPass, ""},
		{"insecureSkipVerify", &Auth{Source: "s", InsecureSkipVerify: true}, v1.CheckPass, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPrometheus(WithCredentials(&recordingCredentials{auth: tt.auth}))
			res := p.Check(t.Context(), Query{URL: srv.URL, Expr: "up"})
			t.Logf("%+v", res)
			if res.Verdict != tt.verdict || res.Message != tt.message {
				t.Errorf("Check() = %+v, want %s %q", res, tt.verdict, tt.message)
			}
		})
	}
}

func TestAuthStringHidesSecrets(t *testing.T) {
	a := &Auth{Source: "canaryop-system/prom", Version: "7", BearerToken: "tok-secret", CA: []byte("ca")}
	basic := Auth{Source: "x", Username: "u", Password: "pw-secret"}
	for _, s := range []string{
		fmt.Sprint(a), fmt.Sprintf("%+v", a), fmt.Sprintf("%#v", a), fmt.Sprintf("%v", *a), fmt.Sprintf("%+v", basic),
	} {
		if strings.Contains(s, "secret") {
			t.Errorf("Auth prints as %q", s)
		}
	}
	if got := fmt.Sprint(a); got != "bearer token from canaryop-system/prom" {
		t.Errorf("Auth prints as %q", got)
	}
	if got := basic.String(); got != "basic auth from x" {
		t.Errorf("Auth prints as %q", got)
	}
}

// blockingCredentials waits for its context, like a lookup against an API
// server that does not answer.
type blockingCredentials struct{}

func (blockingCredentials) Lookup(ctx context.Context, _, _ string) (*Auth, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestCredentialsLookupIsBoundedByTheQueryTimeout(t *testing.T) {
	start := time.Now()
	res := NewPrometheus(WithCredentials(blockingCredentials{})).Check(t.Context(),
		Query{URL: "http://prom.example:9090", Expr: "up", Timeout: 100 * time.Millisecond})
	elapsed := time.Since(start)
	t.Logf("%+v after %s", res, elapsed)
	if res.Reason != ReasonCredentialsUnavailable || elapsed > 10*time.Second {
		t.Errorf("Check() = %+v after %s, want %s within the 100ms timeout", res, elapsed, ReasonCredentialsUnavailable)
	}
}
