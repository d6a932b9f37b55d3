package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestParseOptions(t *testing.T) {
	o, err := ParseOptions(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Apps, []string{"canaryapp-sample"}) || o.Namespace != "default" || o.RPS != 20 ||
		o.ErrorPathRatio != 0.2 || !slices.Equal(o.FailingVersions, []string{"v3"}) || o.PollInterval != 500*time.Millisecond {
		t.Errorf("defaults: %+v", o)
	}

	o, err = ParseOptions([]string{"--app", "a,b", "--app=c", "--failing-versions", "v4", "--rps", "5",
		"--error-path-ratio", "0", "--listen", "127.0.0.1:9464", "--duration", "1m", "--namespace", "demo"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Apps, []string{"a", "b", "c"}) || !slices.Equal(o.FailingVersions, []string{"v4"}) ||
		o.RPS != 5 || o.ErrorPathRatio != 0 || o.Listen != "127.0.0.1:9464" || o.Duration != time.Minute || o.Namespace != "demo" {
		t.Errorf("parsed: %+v", o)
	}

	for _, args := range [][]string{
		{"--listen", "0.0.0.0:9464"},
		{"--listen", ":9464"},
		{"--listen", "10.0.0.1:9464"},
		{"--rps", "0"},
		{"--error-path-ratio", "1.5"},
		{"--app", ""},
		{"--poll-interval", "0s"},
		{"extra"},
	} {
		if _, err := ParseOptions(args, io.Discard); err == nil {
			t.Errorf("ParseOptions(%q) accepted", args)
		}
	}
	for _, listen := range []string{"localhost:0", "[::1]:0", "127.0.0.2:1"} {
		if _, err := ParseOptions([]string{"--listen", listen}, io.Discard); err != nil {
			t.Errorf("--listen %s refused: %v", listen, err)
		}
	}
}

// TestRunServesMetricsOfTheLiveSplit runs the whole program against a fake
// API server client: it must write its address, serve counters for the
// traffic it makes, and stop when its context ends.
func TestRunServesMetricsOfTheLiveSplit(t *testing.T) {
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		weighted(0, 100),
		deployment(app, "atzedevries/go-status-code-server:v2", 2),
		deployment(app+"-canary", "atzedevries/go-status-code-server:v3", 1),
	).Build()

	addrFile := filepath.Join(t.TempDir(), "addr")
	o, err := ParseOptions([]string{"--addr-file", addrFile, "--rps", "200", "--error-path-ratio", "0.5",
		"--poll-interval", "20ms", "--tick", "10ms"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o, c) }()

	var addr string
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(addrFile); err == nil {
			addr = strings.TrimSpace(string(b))
			if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				body = string(raw)
				if strings.Contains(body, `response_code="500"`) {
					break
				}
			}
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("address file holds %q, want a 127.0.0.1 address", addr)
	}
	if !strings.Contains(body, `destination_version="v3"`) || !strings.Contains(body, `response_code="500"`) {
		t.Fatalf("no v3 errors served while all traffic goes to the v3 canary:\n%s", body)
	}
	if strings.Contains(body, `destination_version="v2"`) {
		t.Errorf("the v2 primary at weight 0 got traffic:\n%s", body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop after its context ended")
	}
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("metrics still served after Run returned")
	}
}

func TestRunRefusesABusyAddress(t *testing.T) {
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	addrFile := filepath.Join(t.TempDir(), "addr")
	o, _ := ParseOptions([]string{"--addr-file", addrFile}, io.Discard)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o, c) }()
	var addr string
	for deadline := time.Now().Add(30 * time.Second); addr == ""; {
		if time.Now().After(deadline) {
			t.Fatal("no address file after 30s")
		}
		b, _ := os.ReadFile(addrFile)
		addr = strings.TrimSpace(string(b))
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	defer func() { cancel(); <-done }()

	o2, _ := ParseOptions([]string{"--listen", addr}, io.Discard)
	err = Run(t.Context(), o2, c)
	if err == nil || !strings.Contains(err.Error(), "listening on") {
		t.Errorf("second Run on %s: err = %v, want a listen error", addr, err)
	}
}
