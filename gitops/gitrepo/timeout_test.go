package gitrepo

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/atzedevries/canaryop/internal/testhostile"

	"golang.org/x/crypto/ssh"
)

// tarpit is a stuck or hostile Git server: it accepts and never writes.
func tarpit(t *testing.T) string { return testhostile.Tarpit(t) }

// updateWithin runs an Update and fails the test when it has not returned
// within bound. It returns the Update's error.
func updateWithin(t *testing.T, ctx context.Context, c *Cache, req UpdateRequest, bound time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := c.Update(ctx, req)
		done <- err
	}()
	select {
	case err := <-done:
		t.Logf("Update returned: %v", err)
		return err
	case <-time.After(bound):
		t.Fatalf("Update of %s has not returned after %s", req.URL, bound)
		return nil
	}
}

// TestUpdateTimesOut points Updates at servers that accept and never answer:
// each returns a timeout error, with no deadline on the caller's context.
func TestUpdateTimesOut(t *testing.T) {
	const bound = 5 * time.Second
	req := func(url string, auth Auth) UpdateRequest {
		return UpdateRequest{URL: url, Branch: "main", Auth: auth, Author: author, Edit: setImage("ghcr.io/acme/web:v2")}
	}

	t.Run("http server that never answers", func(t *testing.T) {
		c := newCache(t, Options{Timeout: 300 * time.Millisecond})
		err := updateWithin(t, context.Background(), c, req("http://"+tarpit(t)+"/acme/apps.git", Auth{Username: testUser, Password: testToken}), bound)
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrTimeout and context.DeadlineExceeded", err)
		}
	})

	t.Run("caller deadline shorter than Timeout", func(t *testing.T) {
		c := newCache(t, Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if err := updateWithin(t, ctx, c, req("http://"+tarpit(t)+"/acme/apps.git", Auth{}), bound); !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
	})

	t.Run("http server that stops mid-answer", func(t *testing.T) {
		// Headers and the start of a ref advertisement, then nothing: the
		// response header timeout does not apply, the deadline must.
		stop := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
			_, _ = fmt.Fprint(w, "001e# service=git-upload-pack\n0000")
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-stop:
			}
		}))
		t.Cleanup(func() { close(stop); srv.Close() })
		c := newCache(t, Options{Timeout: 300 * time.Millisecond})
		if err := updateWithin(t, context.Background(), c, req(srv.URL+"/acme/apps.git", Auth{}), bound); !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
	})

	t.Run("ssh server that never sends its banner", func(t *testing.T) {
		// go-git runs the SSH handshake without a context; the Update must
		// not wait for it.
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		block, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			t.Fatal(err)
		}
		addr := tarpit(t)
		host, port, _ := net.SplitHostPort(addr)
		hostPub, _, _ := ed25519.GenerateKey(rand.Reader)
		hostKey, _ := ssh.NewPublicKey(hostPub)
		knownHosts := fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(hostKey))
		c := newCache(t, Options{Timeout: 300 * time.Millisecond})
		err = updateWithin(t, context.Background(), c, req("ssh://git@"+addr+"/acme/apps.git",
			Auth{SSHPrivateKey: pemEncode(block), KnownHosts: []byte(knownHosts)}), bound)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
	})

	t.Run("waiting for a busy repository ends with the caller's deadline", func(t *testing.T) {
		c := newCache(t, Options{})
		r := req("http://"+tarpit(t)+"/acme/apps.git", Auth{})
		busy := c.repo(SanitizeURL(r.URL))
		if !busy.tryAcquire() {
			t.Fatal("repository locked")
		}
		defer busy.release()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if err := updateWithin(t, ctx, c, r, bound); !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
	})

	t.Run("lock released after a timeout", func(t *testing.T) {
		// A timed-out Update must not keep the next one of the same
		// repository waiting.
		c := newCache(t, Options{Timeout: 200 * time.Millisecond})
		r := req("http://"+tarpit(t)+"/acme/apps.git", Auth{})
		for range 2 {
			if err := updateWithin(t, context.Background(), c, r, bound); !errors.Is(err, ErrTimeout) {
				t.Fatalf("err = %v, want ErrTimeout", err)
			}
		}
	})
}
