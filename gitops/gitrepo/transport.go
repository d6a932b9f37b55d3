package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// Timeouts of the connections a Cache opens. They bound the phases that a
// context alone does not cover well (a dial or TLS handshake to a host that
// drops packets, a server that accepts a request and never answers); the
// Update's deadline bounds the whole.
const (
	dialTimeout           = 10 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	responseHeaderTimeout = 60 * time.Second
)

// newHTTPTransport returns the go-git HTTP(S) transport of one Cache. It is
// handed to each session directly instead of being installed with
// client.InstallProtocol, so no other go-git user in the process is changed.
// The go-git default uses http.DefaultTransport, which has no response
// header timeout: a server that accepts and never answers holds the caller
// for as long as its context allows, which without a deadline is forever.
func newHTTPTransport() transport.Transport {
	rt := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}
	// No http.Client.Timeout: a large first clone may rightly take longer
	// than any fixed bound; the Update's context ends it instead.
	return githttp.NewClient(&http.Client{Transport: rt})
}

// sshAuth adds a dial timeout to go-git's SSH public key auth. go-git's SSH
// transport dials with the ClientConfig the auth method returns, and a
// config without a Timeout dials for as long as the kernel tries.
type sshAuth struct {
	*gitssh.PublicKeys
	timeout time.Duration
}

func (a *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	cfg, err := a.PublicKeys.ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = a.timeout
	return cfg, nil
}

// transportFor picks the transport of an endpoint: the Cache's own HTTP
// client, or go-git's SSH client (whose dial timeout comes with the auth).
func (c *Cache) transportFor(ep *transport.Endpoint) (transport.Transport, error) {
	switch ep.Protocol {
	case "http", "https":
		return c.http, nil
	case "ssh":
		return gitssh.DefaultClient, nil
	}
	return nil, fmt.Errorf("%w: unsupported protocol %q", ErrInvalidRequest, ep.Protocol)
}

// openSession opens a go-git session under ctx. An HTTP session is only a
// struct, but an SSH session dials and runs the SSH handshake before go-git
// sees a context, and the handshake has no deadline: a server that accepts
// the connection and never sends its banner would hold the Update forever.
// So SSH sessions are opened in a goroutine; when ctx ends first, the Update
// goes on without it, and the session, should it still open, is closed.
func openSession[S interface{ Close() error }](ctx context.Context, ep *transport.Endpoint, open func() (S, error)) (S, error) {
	if ep.Protocol != "ssh" {
		return open()
	}
	type result struct {
		s   S
		err error
	}
	// Unbuffered: a result is either taken by the Update or closed by the
	// goroutine, never left in a buffer with nobody to close it.
	done := make(chan result)
	abandoned := make(chan struct{})
	go func() {
		s, err := open()
		select {
		case done <- result{s, err}:
		case <-abandoned:
			if err == nil {
				_ = s.Close()
			}
		}
	}()
	select {
	case r := <-done:
		return r.s, r.err
	case <-ctx.Done():
		close(abandoned)
		// The goroutine may be offering its result right now.
		select {
		case r := <-done:
			if r.err == nil {
				_ = r.s.Close()
			}
		default:
		}
		var zero S
		return zero, ctx.Err()
	}
}

// closeSession closes a session. After the context ended, an SSH session's
// Close may write to a server that stopped reading, so it is closed in the
// background then.
func closeSession(ctx context.Context, s interface{ Close() error }) {
	if ctx.Err() != nil {
		go func() { _ = s.Close() }()
		return
	}
	_ = s.Close()
}

// timedOut reports whether err is a deadline: the Update's own, the
// caller's, or a timeout of the HTTP or SSH connection.
func timedOut(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// session is what one Update needs to talk to the remote.
type session struct {
	tr   transport.Transport
	ep   *transport.Endpoint
	auth transport.AuthMethod
}

// session resolves what the Update of url needs to talk to the remote: the
// endpoint, the auth method for it, and the transport.
func (c *Cache) session(url string, a Auth) (session, error) {
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return session{}, fmt.Errorf("%w: parse repository URL: %v", ErrInvalidRequest, err)
	}
	auth, err := a.method(ep, filepath.Join(c.opts.Dir, "ssh"))
	if err != nil {
		return session{}, err
	}
	tr, err := c.transportFor(ep)
	if err != nil {
		return session{}, err
	}
	return session{tr: tr, ep: ep, auth: auth}, nil
}
