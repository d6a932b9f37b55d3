package gitrepo

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/skeema/knownhosts"

	"github.com/atzedevries/canaryop/internal/safetext"
)

// Auth holds the credentials for one repository: an HTTPS user name and
// password (or token), or an SSH private key with the known_hosts lines that
// pin the server's host key. Its String and GoString never print a secret, so
// an Auth that ends up in a log line or an error message leaks nothing.
type Auth struct {
	// Username is the HTTPS user name. Empty with a Password set means "git",
	// which token-based hosts (GitHub, GitLab, Gitea) accept.
	Username string
	// Password is the HTTPS password or access token.
	Password string
	// SSHPrivateKey is a PEM (or OpenSSH) encoded private key.
	SSHPrivateKey []byte
	// SSHPassphrase decrypts SSHPrivateKey when it is encrypted.
	SSHPassphrase string
	// KnownHosts holds known_hosts lines for the SSH server. It is required
	// with SSH: host keys are never accepted blindly.
	KnownHosts []byte
}

// String implements fmt.Stringer without revealing any secret.
func (a Auth) String() string {
	switch {
	case len(a.SSHPrivateKey) > 0:
		return "gitrepo.Auth{ssh key: <redacted>}"
	case a.Password != "":
		return "gitrepo.Auth{username: " + a.Username + ", password: <redacted>}"
	default:
		return "gitrepo.Auth{none}"
	}
}

// GoString implements fmt.GoStringer (the %#v verb) without revealing any
// secret.
func (a Auth) GoString() string { return a.String() }

// secrets lists the strings that must never appear in an error message.
func (a Auth) secrets() []string {
	var out []string
	if a.Password != "" {
		out = append(out, a.Password)
	}
	if a.SSHPassphrase != "" {
		out = append(out, a.SSHPassphrase)
	}
	if len(a.SSHPrivateKey) > 0 {
		out = append(out, string(a.SSHPrivateKey))
	}
	return out
}

// isSSH reports whether the URL is served over SSH: ssh:// or scp-like
// user@host:path.
func isSSH(rawURL string) bool {
	if strings.HasPrefix(rawURL, "ssh://") {
		return true
	}
	return !strings.Contains(rawURL, "://") && strings.Contains(rawURL, "@") && strings.Contains(rawURL, ":")
}

// method returns the go-git transport auth for the endpoint. knownHostsDir is
// where the known_hosts lines are written, because the known_hosts parser
// reads files only.
func (a Auth) method(ep *transport.Endpoint, knownHostsDir string) (transport.AuthMethod, error) {
	switch ep.Protocol {
	case "http", "https":
		if a.Password == "" && a.Username == "" {
			return nil, nil
		}
		user := a.Username
		if user == "" {
			user = "git"
		}
		return &githttp.BasicAuth{Username: user, Password: a.Password}, nil
	case "ssh":
		if len(a.SSHPrivateKey) == 0 {
			return nil, fmt.Errorf("%w: an SSH URL needs an SSH private key", ErrAuth)
		}
		if len(a.KnownHosts) == 0 {
			return nil, fmt.Errorf("%w: an SSH URL needs known_hosts lines for the server", ErrAuth)
		}
		user := ep.User
		if user == "" {
			user = "git"
		}
		keys, err := gitssh.NewPublicKeys(user, a.SSHPrivateKey, a.SSHPassphrase)
		if err != nil {
			// The parser's message names the key type, never the key.
			return nil, fmt.Errorf("%w: parse SSH private key: %v", ErrAuth, err)
		}
		file, err := writeKnownHosts(knownHostsDir, a.KnownHosts)
		if err != nil {
			return nil, err
		}
		db, err := knownhosts.NewDB(file)
		if err != nil {
			return nil, fmt.Errorf("%w: parse known_hosts: %v", ErrAuth, err)
		}
		port := ep.Port
		if port == 0 {
			port = 22
		}
		hostPort := net.JoinHostPort(ep.Host, fmt.Sprint(port))
		keys.HostKeyCallback = db.HostKeyCallback()
		// Offer only the host key algorithms that known_hosts can verify,
		// else the server may present a key type we hold no line for.
		keys.HostKeyAlgorithms = db.HostKeyAlgorithms(hostPort)
		return &sshAuth{PublicKeys: keys, timeout: dialTimeout}, nil
	default:
		return nil, fmt.Errorf("%w: unsupported protocol %q", ErrInvalidRequest, ep.Protocol)
	}
}

// writeKnownHosts stores known_hosts lines in a file named after their
// content, so concurrent writers of the same lines never race.
func writeKnownHosts(dir string, lines []byte) (string, error) {
	sum := sha256.Sum256(lines)
	path := filepath.Join(dir, "known_hosts-"+hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create known_hosts dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "known_hosts-*.tmp")
	if err != nil {
		return "", fmt.Errorf("write known_hosts: %w", err)
	}
	if _, err := tmp.Write(lines); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return "", fmt.Errorf("write known_hosts: %w", err)
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmp.Name())
		return "", fmt.Errorf("write known_hosts: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("write known_hosts: %w", err)
	}
	return path, nil
}

// SanitizeURL is the address of a repository without its credentials: the
// key of its clone, the URL fetched and pushed, what credentials are matched
// on. It drops the user info of a URL (an https://TOKEN@host user name is a
// token) but keeps the login of an ssh:// URL and of an scp-like address
// (git@host:path), which are part of the address and no secret. To show a
// URL, or a message quoting one, use safetext.RedactURL, which drops those
// too.
func SanitizeURL(rawURL string) string {
	if !strings.Contains(rawURL, "://") {
		return rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// Not a URL to fetch from; whatever it holds, cut it.
		return safetext.RedactURL(rawURL)
	}
	if u.Scheme == "ssh" && u.User != nil {
		if _, hasPassword := u.User.Password(); !hasPassword {
			return u.String()
		}
		u.User = url.User(u.User.Username())
		return u.String()
	}
	u.User = nil
	return u.String()
}

// urlSecrets returns the password held in a URL's user info, if any.
func urlSecrets(rawURL string) []string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return nil
	}
	var out []string
	if p, ok := u.User.Password(); ok && p != "" {
		out = append(out, p, url.QueryEscape(p), url.PathEscape(p))
	}
	if u.Scheme != "ssh" && u.User.Username() != "" {
		// An https://TOKEN@host URL carries the token as the user name.
		out = append(out, u.User.Username())
	}
	return out
}

// redactedError carries a message with every secret cut out. It does not
// unwrap to the original error, whose text may hold a secret, but it still
// answers errors.Is for every error in the original chain, and errors.As
// for those whose own text holds no secret.
type redactedError struct {
	msg     string
	orig    error
	secrets []string
}

func (e *redactedError) Error() string { return e.msg }

// GoString keeps %#v from printing the fields, which hold the secrets.
func (e *redactedError) GoString() string { return fmt.Sprintf("gitrepo.redactedError{%q}", e.msg) }

// Is reports whether the original error matches target, so that typed
// errors survive redaction without exposing the original message.
func (e *redactedError) Is(target error) bool { return errors.Is(e.orig, target) }

// As fills target from the original chain, but only with an error whose
// message is already clean: handing out one that quotes a secret would undo
// the redaction for any caller that prints what it got. The manifest
// layer's typed errors (and this package's RejectedError) hold no secret
// and so stay reachable; a typed error that quotes a token is not found.
func (e *redactedError) As(target any) bool {
	if !errors.As(e.orig, target) {
		return false
	}
	v := reflect.ValueOf(target).Elem()
	if found, ok := v.Interface().(error); ok && found != nil {
		if msg := found.Error(); redactString(msg, e.secrets...) != msg {
			v.SetZero()
			return false
		}
	}
	return true
}

// redact returns err with every secret (and every URL's user info) replaced
// by "***". It returns nil for nil. Redacting twice is harmless.
func redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := redactString(err.Error(), secrets...)
	return &redactedError{msg: msg, orig: err, secrets: secrets}
}

func redactString(msg string, secrets ...string) string {
	for _, s := range secrets {
		if len(s) < 3 {
			// Replacing a one- or two-character secret would mangle the
			// message; such a secret is never accepted as a credential.
			continue
		}
		msg = strings.ReplaceAll(msg, s, "***")
	}
	return safetext.RedactURL(msg)
}
