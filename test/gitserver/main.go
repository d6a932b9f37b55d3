// Command gitserver serves the bare Git repositories under one folder over Git's
// smart HTTP protocol with basic auth, for the local demo and the end-to-end
// suite (hack/stack/up.sh starts it). It is `git http-backend` behind net/http's
// CGI host: clone, fetch and push work with any Git client (git, go-git, Argo
// CD's repo server), and every request must carry the one user and token it was
// started with, as a Git hosting service would demand.
//
// It binds to loopback only. With --listen 127.0.0.1:0 the kernel picks a free
// port; the chosen base URL (http://127.0.0.1:PORT) is printed on stdout and, with
// --addr-file, written to that file once the server accepts connections, so a
// script can wait for the file and then use the URL.
//
// The token is read from GITSERVER_TOKEN (or --token, which shows up in ps and is
// meant for tests); it is never logged.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gitserver:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		listen   = flag.String("listen", "127.0.0.1:0", "loopback address to listen on; port 0 picks a free port")
		root     = flag.String("root", "", "folder holding the bare repositories (GIT_PROJECT_ROOT)")
		user     = flag.String("user", envOr("GITSERVER_USER", "canaryop"), "basic auth user name (env GITSERVER_USER)")
		token    = flag.String("token", os.Getenv("GITSERVER_TOKEN"), "basic auth password or token (prefer env GITSERVER_TOKEN)")
		addrFile = flag.String("addr-file", "", "write the base URL to this file once listening")
	)
	flag.Parse()

	cfg := Config{ProjectRoot: *root, User: *user, Token: *token}
	handler, err := NewHandler(cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("parse --listen: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %q: only loopback addresses are allowed", *listen)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	url := "http://" + ln.Addr().String()

	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	if *addrFile != "" {
		if err := writeFileAtomic(*addrFile, url+"\n"); err != nil {
			_ = srv.Close()
			return err
		}
	}
	fmt.Println(url)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// writeFileAtomic writes through a temporary file and a rename so that a reader
// polling for the file never sees it half written.
func writeFileAtomic(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".addr-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(content); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// lookGit finds the git binary; http-backend is one of its subcommands.
func lookGit() (string, error) {
	path, err := exec.LookPath("git")
	if err != nil {
		return "", fmt.Errorf("git is needed to serve repositories: %w", err)
	}
	return path, nil
}
