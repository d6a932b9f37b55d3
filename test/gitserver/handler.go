package main

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"os"
	"path/filepath"
	"time"
)

// Config is what the server needs to serve the repositories of one folder.
type Config struct {
	// ProjectRoot is the folder holding the bare repositories; a request for
	// /<name>.git/... serves ProjectRoot/<name>.git.
	ProjectRoot string
	// User and Token are the only credentials accepted (HTTP basic auth).
	User  string
	Token string
}

// ErrInvalidConfig is returned by NewHandler for a Config it cannot serve.
var ErrInvalidConfig = errors.New("invalid gitserver config")

// NewHandler returns an http.Handler that checks basic auth and hands every
// authenticated request to `git http-backend`, with pushes (receive-pack)
// enabled and every repository under ProjectRoot exported.
func NewHandler(cfg Config, log *slog.Logger) (http.Handler, error) {
	if cfg.ProjectRoot == "" || cfg.User == "" || cfg.Token == "" {
		return nil, fmt.Errorf("%w: root, user and token are all required", ErrInvalidConfig)
	}
	root, err := filepath.Abs(cfg.ProjectRoot)
	if err != nil {
		return nil, fmt.Errorf("%w: root: %w", ErrInvalidConfig, err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%w: root %s is not a folder", ErrInvalidConfig, root)
	}
	git, err := lookGit()
	if err != nil {
		return nil, err
	}
	backend := &cgi.Handler{
		Path: git,
		Args: []string{"http-backend"},
		Root: "/",
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			// http-backend enables receive-pack on its own only when REMOTE_USER
			// is set; say it explicitly so pushes never depend on that detail.
			"REMOTE_USER=" + cfg.User,
			"GIT_CONFIG_COUNT=1",
			"GIT_CONFIG_KEY_0=http.receivepack",
			"GIT_CONFIG_VALUE_0=true",
		},
		// HOME keeps git from reading the invoking user's global config in a
		// surprising place; PATH is passed by the cgi package itself.
		InheritEnv: []string{"HOME"},
		Stderr:     os.Stderr,
	}
	return &authHandler{user: []byte(cfg.User), token: []byte(cfg.Token), next: backend, log: log}, nil
}

type authHandler struct {
	user, token []byte
	next        http.Handler
	log         *slog.Logger
}

func (h *authHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	if h.authorized(r) {
		h.next.ServeHTTP(rec, r)
	} else {
		rec.Header().Set("WWW-Authenticate", `Basic realm="gitserver"`)
		http.Error(rec, "authentication required", http.StatusUnauthorized)
	}
	// The query (service=git-upload-pack) is logged; headers never are, they hold the token.
	h.log.Info("request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery,
		"status", rec.status, "duration", time.Since(start).Round(time.Millisecond))
}

func (h *authHandler) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	// Compare both fields in constant time and combine the results, so neither
	// answer leaks through timing.
	userOK := subtle.ConstantTimeCompare([]byte(user), h.user)
	passOK := subtle.ConstantTimeCompare([]byte(pass), h.token)
	return userOK&passOK == 1
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Flush lets the CGI host stream pack data through the recorder.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
