// Package testhostile holds the hostile peers and inputs the tenant
// isolation tests aim at the operator, one definition each: a server that
// never answers and the YAML alias bomb of the December security review.
package testhostile

import (
	"fmt"
	"net"
	"sync"
	"testing"
)

// Tarpit listens on 127.0.0.1, accepts every connection and never answers
// or closes it: the worst a remote can do to a client without a deadline.
// It returns host:port; everything is closed when the test ends.
func Tarpit(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

// AliasBomb is a CanaryApp manifest of about 450 bytes whose nine levels of
// YAML aliases stand for 9^9 scalars once something expands them (a
// kustomize render does).
func AliasBomb(name, image string) string {
	return fmt.Sprintf(`apiVersion: canary.atze.io/v1
kind: CanaryApp
metadata:
  name: %s
spec:
  image: %s
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`, name, image)
}
