package promauth

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/metrics"
)

const (
	operatorNS = "canaryop-system"
	planted    = "tok-PLANTED-9f3a"
)

func secret(ns, name string, labelled bool, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	if labelled {
		s.Labels = map[string]string{LabelKey: "true"}
	}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func newClient(t *testing.T, funcs *interceptor.Funcs, secrets ...*corev1.Secret) client.WithWatch {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(scheme)
	for _, s := range secrets {
		b = b.WithObjects(s)
	}
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	return b.Build()
}

func store(t *testing.T, secrets ...*corev1.Secret) *Store {
	t.Helper()
	return New(newClient(t, nil, secrets...), operatorNS)
}

func TestLookupChoosesTheSecret(t *testing.T) {
	s := store(t,
		secret(operatorNS, "thanos", true, map[string]string{"url": "https://thanos.example.com", "bearerToken": "all-tenants"}),
		secret(operatorNS, "thanos-a", true, map[string]string{"url": "https://Thanos.example.com:443/tenant-a/", "bearerToken": "tenant-a", "namespaces": "team-a, team-a-*"}),
		secret(operatorNS, "thanos-a-zz", true, map[string]string{"url": "https://thanos.example.com/tenant-a", "bearerToken": "same-url-later-name", "namespaces": "team-a"}),
		secret(operatorNS, "thanos-b", true, map[string]string{"url": "https://thanos.example.com/tenant-b", "bearerToken": "tenant-b", "namespaces": "team-b"}),
		secret(operatorNS, "nobody", true, map[string]string{"url": "https://thanos.example.com/tenant-c", "bearerToken": "nobody", "namespaces": " , "}),
		secret(operatorNS, "prom", true, map[string]string{"url": "http://prometheus.istio-system.svc:9090", "username": "reader", "password": "pw\n"}),
		secret(operatorNS, "bad-url", true, map[string]string{"url": "https://thanos.example.com/tenant-a/../", "bearerToken": "bad-url"}),
		secret(operatorNS, "no-url", true, map[string]string{"bearerToken": "no-url"}),
		secret(operatorNS, "unlabelled", false, map[string]string{"url": "https://thanos.example.com/tenant-a/x", "bearerToken": "unlabelled"}),
		secret("team-a", "own", true, map[string]string{"url": "https://thanos.example.com/tenant-a/x", "bearerToken": "tenant-owned"}),
	)
	tests := []struct {
		namespace, url string
		token, user    string // the Auth's; both "" with source "" means none
		source         string
	}{
		{"team-a", "https://thanos.example.com/tenant-a", "tenant-a", "", operatorNS + "/thanos-a"},
		{"team-a-payments", "https://thanos.example.com/tenant-a/x", "tenant-a", "", operatorNS + "/thanos-a"},
		{"team-b", "https://thanos.example.com/tenant-a", "all-tenants", "", operatorNS + "/thanos"}, // thanos-a does not serve team-b
		{"team-b", "https://thanos.example.com/tenant-b", "tenant-b", "", operatorNS + "/thanos-b"},
		{"team-a", "https://thanos.example.com/tenant-ab", "all-tenants", "", operatorNS + "/thanos"}, // not at a segment boundary
		{"team-c", "https://thanos.example.com/tenant-c", "all-tenants", "", operatorNS + "/thanos"},  // a blank namespaces serves none
		{"", "https://thanos.example.com/tenant-a", "all-tenants", "", operatorNS + "/thanos"},
		{"team-a", "http://prometheus.istio-system.svc:9090/", "", "reader", operatorNS + "/prom"},
		{"team-a", "http://thanos.example.com/tenant-a", "", "", ""}, // scheme
		{"team-a", "https://thanos.example.com:8443/tenant-a", "", "", ""},
		{"team-a", "https://thanos.example.com/tenant-a?tenant=b", "", "", ""},
		{"team-a", "https://other.example.com/", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.namespace+" "+tt.url, func(t *testing.T) {
			a, err := s.Lookup(t.Context(), tt.namespace, tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if tt.source == "" {
				if a != nil {
					t.Fatalf("Lookup = %v, want none", a)
				}
				return
			}
			if a == nil || a.Source != tt.source || a.BearerToken != tt.token || a.Username != tt.user {
				t.Fatalf("Lookup = %#v, want %s with token %q user %q", a, tt.source, tt.token, tt.user)
			}
			if a.Version == "" {
				t.Error("Version is empty, want the Secret's resourceVersion")
			}
			if tt.user != "" && a.Password != "pw" {
				t.Errorf("password = %q, want it trimmed to pw", a.Password)
			}
		})
	}
}

func TestLookupRejectsMalformedSecrets(t *testing.T) {
	tests := map[string]map[string]string{
		"token and password": {"bearerToken": planted, "username": "u", "password": planted},
		"token and username": {"bearerToken": planted, "username": "u"},
		"bad ca.crt":         {"ca.crt": "-----BEGIN CERTIFICATE-----\n" + planted + "\n-----END CERTIFICATE-----\n"},
		"bad skip verify":    {"insecureSkipVerify": "yes-" + planted},
		"bad glob":           {"namespaces": "team-[" + planted, "bearerToken": planted},
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			data["url"] = "https://thanos.example.com/tenant-a"
			s := store(t, secret(operatorNS, "broken", true, data))
			a, err := s.Lookup(t.Context(), "team-a", "https://thanos.example.com/tenant-a/x")
			t.Log(err)
			if !errors.Is(err, ErrInvalidCredentials) || !strings.Contains(err.Error(), operatorNS+"/broken") {
				t.Fatalf("Lookup = %v, %v; want ErrInvalidCredentials naming the Secret", a, err)
			}
			if strings.Contains(err.Error(), planted) {
				t.Errorf("error %q shows a value of the Secret", err)
			}
		})
	}
}

func TestLookupParsesTLSKeys(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	s := store(t,
		secret(operatorNS, "a-ca", true, map[string]string{"url": "https://a.example.com", "ca.crt": ca}),
		secret(operatorNS, "b-skip", true, map[string]string{"url": "https://b.example.com", "insecureSkipVerify": " TRUE\n"}),
		secret(operatorNS, "c-blank", true, map[string]string{"url": "https://c.example.com", "ca.crt": "\n", "insecureSkipVerify": "false"}),
	)
	for u, want := range map[string]struct {
		ca   bool
		skip bool
	}{
		"https://a.example.com": {ca: true},
		"https://b.example.com": {skip: true},
		"https://c.example.com": {},
	} {
		a, err := s.Lookup(t.Context(), "team-a", u)
		if err != nil || a == nil {
			t.Fatalf("Lookup(%s) = %v, %v", u, a, err)
		}
		if (len(a.CA) > 0) != want.ca || a.InsecureSkipVerify != want.skip {
			t.Errorf("Lookup(%s): CA %d bytes, insecureSkipVerify %t; want CA %t, skip %t", u, len(a.CA), a.InsecureSkipVerify, want.ca, want.skip)
		}
	}
}

func TestLookupListsOnlyTheOperatorNamespace(t *testing.T) {
	var listed []string
	funcs := &interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		o := &client.ListOptions{}
		o.ApplyOptions(opts)
		listed = append(listed, fmt.Sprintf("%s %s", o.Namespace, o.LabelSelector))
		return c.List(ctx, list, opts...)
	}}
	s := New(newClient(t, funcs), operatorNS)
	if _, err := s.Lookup(t.Context(), "team-a", "http://prom:9090"); err != nil {
		t.Fatal(err)
	}
	if want := operatorNS + " " + LabelKey + "=true"; len(listed) != 1 || listed[0] != want {
		t.Errorf("listed %q, want one list of %q", listed, want)
	}

	failing := &interceptor.Funcs{List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
		return errors.New("apiserver unavailable")
	}}
	_, err := New(newClient(t, failing), operatorNS).Lookup(t.Context(), "team-a", "http://prom:9090")
	if err == nil || !strings.Contains(err.Error(), "apiserver unavailable") {
		t.Errorf("Lookup with a failing reader = %v, want its error", err)
	}
}

// End to end: the provider sends the Secret's token to the server the
// Secret covers, and nothing of it reaches the Result.
func TestProviderUsesTheSecret(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+planted {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"got ` + r.Header.Get("Authorization") + `"}`))
			return
		}
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	}))
	defer srv.Close()
	sec := secret(operatorNS, "prom", true, map[string]string{"url": srv.URL + "/team-a", "bearerToken": planted, "namespaces": "team-a"})
	c := newClient(t, nil, sec)
	p := metrics.NewPrometheus(metrics.WithCredentials(New(c, operatorNS)))

	res := p.Check(t.Context(), metrics.Query{URL: srv.URL + "/team-a", Expr: "up", Namespace: "team-a"})
	if res.Verdict != v1.CheckPass || got.Load() != "Bearer "+planted {
		t.Fatalf("Check() = %+v, server got %q; want Pass with the Secret's token", res, got.Load())
	}

	// Another namespace's app gets no token for the same URL.
	res = p.Check(t.Context(), metrics.Query{URL: srv.URL + "/team-a", Expr: "up", Namespace: "team-b"})
	t.Logf("%+v", res)
	if res.Verdict != v1.CheckInconclusive || got.Load() != "" {
		t.Errorf("Check() from team-b = %+v, server got %q; want Inconclusive without a token", res, got.Load())
	}

	// A rotated token is used on the next check (new resourceVersion).
	sec.Data["bearerToken"] = []byte(planted + "-rotated")
	if err := c.Update(t.Context(), sec); err != nil {
		t.Fatal(err)
	}
	res = p.Check(t.Context(), metrics.Query{URL: srv.URL + "/team-a", Expr: "up", Namespace: "team-a"})
	t.Logf("%+v", res)
	if got.Load() != "Bearer "+planted+"-rotated" {
		t.Errorf("after rotation the server got %q, want the new token", got.Load())
	}
	if strings.Contains(res.Message, planted) || strings.Contains(res.Value, planted) {
		t.Errorf("result %+v shows the token", res)
	}

	// A malformed Secret stops the check with a reason, and no request.
	sec.Data["username"] = []byte("u")
	if err := c.Update(t.Context(), sec); err != nil {
		t.Fatal(err)
	}
	got.Store("none")
	res = p.Check(t.Context(), metrics.Query{URL: srv.URL + "/team-a", Expr: "up", Namespace: "team-a"})
	t.Logf("%+v", res)
	if res.Reason != metrics.ReasonCredentialsUnavailable || got.Load() != "none" || strings.Contains(res.Message, planted) {
		t.Errorf("Check() with a malformed Secret = %+v (server got %q), want %s and no request", res, got.Load(), metrics.ReasonCredentialsUnavailable)
	}
}
