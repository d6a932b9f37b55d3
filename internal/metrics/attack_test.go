package metrics

// The attacks of the security review (H2, H4, L3) as tests: each one passed
// as a proof of concept against the provider before it was hardened, and
// fails there as a test. They use only NewPrometheus and Check, so they
// also run against that older code.

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// countingServer is an httptest server on 127.0.0.1 that counts requests.
type countingServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newCountingServer(t *testing.T, h http.HandlerFunc) *countingServer {
	t.Helper()
	s := &countingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func mustNotContain(t *testing.T, r Result, never ...string) {
	t.Helper()
	for _, s := range never {
		if strings.Contains(r.Message, s) || strings.Contains(r.Value, s) {
			t.Errorf("result %+v shows %q", r, s)
		}
	}
}

// A redirect from the author's server would send the operator's request to
// any internal URL; it is reported, never followed.
func TestAttackRedirectIsNotFollowed(t *testing.T) {
	internal := newCountingServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("internal-admin-api: token=SECRET-ABC-123"))
	})
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			attacker := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, internal.URL+"/admin/v1/config?x=1", code)
			})

			res := NewPrometheus().Check(t.Context(), Query{URL: attacker.URL, Expr: "up", Timeout: 2 * time.Second})
			t.Logf("%+v", res)

			if n := internal.hits.Load(); n != 0 {
				t.Errorf("the redirect target got %d requests, want 0", n)
			}
			if res.Verdict != v1.CheckInconclusive || !strings.Contains(res.Message, strconv.Itoa(code)) ||
				!strings.Contains(res.Message, "redirect") {
				t.Errorf("Check() = %+v, want Inconclusive naming the redirect and %d", res, code)
			}
			mustNotContain(t, res, internal.URL, "/admin", "SECRET")
		})
	}
}

// The body of an answer that is not Prometheus' (an internal service's
// error page) never reaches the message: only its status and content type.
func TestAttackErrorBodyIsNotReflected(t *testing.T) {
	for _, code := range []int{http.StatusOK, http.StatusUnauthorized, http.StatusNotFound, http.StatusInternalServerError, http.StatusBadGateway} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			srv := newCountingServer(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(code)
				_, _ = w.Write([]byte("internal-admin-api: token=SECRET-ABC-123 user=root build=7f3a"))
			})

			res := NewPrometheus().Check(t.Context(), Query{URL: srv.URL, Expr: "up", Timeout: 2 * time.Second})
			t.Logf("%+v", res)

			if res.Verdict != v1.CheckInconclusive || !strings.Contains(res.Message, strconv.Itoa(code)) ||
				!strings.Contains(res.Message, "text/plain") {
				t.Errorf("Check() = %+v, want Inconclusive with status %d and text/plain", res, code)
			}
			mustNotContain(t, res, "internal-admin-api", "SECRET", "root", "7f3a", "charset")
		})
	}
}

// Prometheus-shaped JSON errors come from whatever server the URL names:
// their errorType is mapped to fixed words and their text is dropped.
func TestAttackPrometheusErrorTextIsNotReflected(t *testing.T) {
	for _, code := range []int{http.StatusOK, http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusServiceUnavailable} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			srv := newCountingServer(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(code)
				_, _ = w.Write([]byte(`{"status":"error","errorType":"execution","error":"db-admin-password=SECRET-ABC-123"}`))
			})

			res := NewPrometheus().Check(t.Context(), Query{URL: srv.URL, Expr: "up", Timeout: 2 * time.Second})
			t.Logf("%+v", res)

			if res.Verdict != v1.CheckInconclusive || !strings.Contains(res.Message, "(execution)") {
				t.Errorf("Check() = %+v, want Inconclusive naming the execution error", res)
			}
			mustNotContain(t, res, "SECRET", "db-admin")
		})
	}
}

// Series labels are another team's data when the URL points at their
// Prometheus: a failed check gives the count and the value only.
func TestAttackSeriesLabelsAreNotReflected(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[` +
			`{"metric":{"__name__":"kube_secret_info","namespace":"team-b","secret":"db-admin-password"},"value":[1,"1"]},` +
			`{"metric":{"__name__":"kube_secret_info","namespace":"team-b","secret":"api-token"},"value":[1,"2"]}]}}`))
	})

	res := NewPrometheus().Check(t.Context(), Query{URL: srv.URL, Expr: "kube_secret_info", Timeout: 2 * time.Second})
	t.Logf("%+v", res)

	if res.Verdict != v1.CheckFail || res.Value != "2 (2 series, max)" || !strings.Contains(res.Message, "2 series") {
		t.Errorf("Check() = %+v, want Fail with value 2 (2 series, max) and the series count", res)
	}
	mustNotContain(t, res, "kube_secret_info", "team-b", "db-admin-password", "api-token", "namespace")
}

// A 100 MiB answer is cut at 4 MiB without buffering it, whether it
// declares its length or streams chunks.
func TestAttackLargeBodyIsCut(t *testing.T) {
	const size = 100 << 20
	for _, declared := range []bool{false, true} {
		t.Run("declared="+strconv.FormatBool(declared), func(t *testing.T) {
			srv := newCountingServer(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if declared {
					w.Header().Set("Content-Length", strconv.Itoa(size))
				}
				chunk := bytes.Repeat([]byte(" "), 1<<20)
				for range size >> 20 {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			})

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			res := NewPrometheus().Check(t.Context(), Query{URL: srv.URL, Expr: "up", Timeout: 20 * time.Second})
			runtime.ReadMemStats(&after)
			delta := after.TotalAlloc - before.TotalAlloc
			t.Logf("%+v; TotalAlloc delta %d KiB", res, delta>>10)

			if res.Verdict != v1.CheckInconclusive || res.Reason != "ResponseTooLarge" ||
				!strings.Contains(res.Message, "response exceeds 4 MiB") {
				t.Errorf("Check() = %+v, want Inconclusive ResponseTooLarge: response exceeds 4 MiB", res)
			}
			// The test server's own writes are counted too; the bound is
			// what matters: the unbounded client allocated about 4x the body.
			if delta > 16<<20 {
				t.Errorf("TotalAlloc grew by %d MiB, want under 16 MiB", delta>>20)
			}
		})
	}
}

// A query string in the URL would reach a tenancy proxy (prom-label-proxy's
// ?namespace=) beside the operator's parameters; so would a fragment's
// trick. Neither is sent.
func TestAttackQueryStringIsRefused(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	})
	for _, u := range []string{srv.URL + "/tenant?namespace=team-b", srv.URL + "/tenant?", srv.URL + "/tenant#namespace=team-b"} {
		t.Run(u, func(t *testing.T) {
			res := NewPrometheus().Check(t.Context(), Query{URL: u, Expr: "up", Timeout: 2 * time.Second})
			t.Logf("%+v", res)
			if res.Verdict != v1.CheckInconclusive || res.Reason != "PrometheusURLHasQuery" {
				t.Errorf("Check() = %+v, want Inconclusive PrometheusURLHasQuery", res)
			}
		})
	}
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

// Credentials in the spec are in Git, in etcd and in every `get
// canaryapps`: refused, with a pointer to the admin's Secrets.
func TestAttackCredentialsInURLAreRefused(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	})
	u, _ := url.Parse(srv.URL)
	u.User = url.UserPassword("admin", "hunter2")

	res := NewPrometheus().Check(t.Context(), Query{URL: u.String(), Expr: "up", Timeout: 2 * time.Second})
	t.Logf("%+v", res)

	if res.Verdict != v1.CheckInconclusive || res.Reason != "PrometheusURLHasCredentials" || !strings.Contains(res.Message, "Secret") {
		t.Errorf("Check() = %+v, want Inconclusive PrometheusURLHasCredentials pointing at a Secret", res)
	}
	mustNotContain(t, res, "hunter2", "admin:")
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

// A dial error names the resolver and the address: a port scanner's
// readout. The message keeps the URL only.
func TestAttackDialErrorHidesDetail(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()

	res := NewPrometheus().Check(t.Context(), Query{URL: "http://" + addr, Expr: "up", Timeout: 2 * time.Second})
	t.Logf("%+v", res)

	if res.Verdict != v1.CheckInconclusive || !strings.HasSuffix(res.Message, ": connection failed") {
		t.Errorf("Check() = %+v, want Inconclusive ending in: connection failed", res)
	}
	mustNotContain(t, res, "dial", "refused", "connect:")
}

// A CanaryApp's check interval can be an hour; the query's deadline, and
// the timeout Prometheus is told, stay at 30s.
func TestAttackTimeoutIsCapped(t *testing.T) {
	var timeout atomic.Value
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		timeout.Store(r.Form.Get("timeout"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	})

	res := NewPrometheus().Check(t.Context(), Query{URL: srv.URL, Expr: "up", Timeout: time.Hour})

	if res.Verdict != v1.CheckPass || timeout.Load() != "30s" {
		t.Errorf("Check() = %+v with timeout=%v sent, want Pass with timeout=30s", res, timeout.Load())
	}
}
