package stack

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Repo is a working clone of the demo Git repository, used the way a person
// releases: edit a file, commit, push. It runs the git CLI; the credentials
// go to git through the environment (an http.extraHeader), never on a
// command line or in the clone's config.
type Repo struct {
	URL    string
	Branch string
	// Dir is the working clone.
	Dir string

	auth string
	// mu serializes git commands: the timeline and the flow share the clone.
	mu sync.Mutex
}

// Commit is one commit of the branch.
type Commit struct {
	SHA     string
	Author  string
	Subject string
	Body    string
}

// Short is the abbreviated SHA.
func (c Commit) Short() string {
	if len(c.SHA) > 7 {
		return c.SHA[:7]
	}
	return c.SHA
}

// NewRepo clones the stack's repository into dir (which must not exist yet).
func NewRepo(ctx context.Context, env Env, dir string) (*Repo, error) {
	return NewRepoAt(ctx, env, env.Get("GIT_URL"), dir)
}

// NewRepoAt clones another repository of the stack's Git server (see
// Env.RepoURL) into dir.
func NewRepoAt(ctx context.Context, env Env, url, dir string) (*Repo, error) {
	r := &Repo{
		URL:    url,
		Branch: env.Get("GIT_BRANCH"),
		Dir:    dir,
		auth:   "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(env.Get("GIT_USER")+":"+env.Get("GIT_TOKEN"))),
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	if _, err := r.git(ctx, filepath.Dir(dir), "clone", "-q", "-b", r.Branch, r.URL, dir); err != nil {
		return nil, err
	}
	return r, nil
}

// git runs git in dir with a config of its own (the user's is not read).
func (r *Repo) git(ctx context.Context, dir string, args ...string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=demo user", "GIT_AUTHOR_EMAIL=demo@canaryop.invalid",
		"GIT_COMMITTER_NAME=demo user", "GIT_COMMITTER_EMAIL=demo@canaryop.invalid",
		"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader", "GIT_CONFIG_VALUE_0="+r.auth,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Sync fetches the branch and resets the clone to it.
func (r *Repo) Sync(ctx context.Context) error {
	if _, err := r.git(ctx, r.Dir, "fetch", "-q", "origin", r.Branch); err != nil {
		return err
	}
	_, err := r.git(ctx, r.Dir, "reset", "-q", "--hard", "origin/"+r.Branch)
	return err
}

// Change commits what edit does to the clone (paths relative to the
// repository root) on top of the newest commit of the branch and pushes it.
// When somebody else (the operator) pushed in between, it starts over from
// their commit, a few times.
func (r *Repo) Change(ctx context.Context, message string, edit func(root string) error) (Commit, error) {
	var lastErr error
	for range 4 {
		if err := r.Sync(ctx); err != nil {
			return Commit{}, err
		}
		if err := edit(r.Dir); err != nil {
			return Commit{}, fmt.Errorf("editing the clone: %w", err)
		}
		if _, err := r.git(ctx, r.Dir, "add", "-A"); err != nil {
			return Commit{}, err
		}
		if out, _ := r.git(ctx, r.Dir, "status", "--porcelain"); strings.TrimSpace(out) == "" {
			return Commit{}, fmt.Errorf("commit %q changes nothing", message)
		}
		if _, err := r.git(ctx, r.Dir, "commit", "-q", "-m", message); err != nil {
			return Commit{}, err
		}
		_, err := r.git(ctx, r.Dir, "push", "-q", "origin", "HEAD:refs/heads/"+r.Branch)
		if err == nil {
			return r.Head(ctx)
		}
		lastErr = err
	}
	return Commit{}, fmt.Errorf("pushing %q: %w", message, lastErr)
}

// Head fetches and returns the newest commit of the branch.
func (r *Repo) Head(ctx context.Context) (Commit, error) {
	cs, err := r.Log(ctx, 1)
	if err != nil {
		return Commit{}, err
	}
	if len(cs) == 0 {
		return Commit{}, errors.New("the branch has no commits")
	}
	return cs[0], nil
}

// Log fetches and returns the newest n commits of the branch, newest first.
func (r *Repo) Log(ctx context.Context, n int) ([]Commit, error) {
	if _, err := r.git(ctx, r.Dir, "fetch", "-q", "origin", r.Branch); err != nil {
		return nil, err
	}
	return r.log(ctx, fmt.Sprintf("-%d", n), "origin/"+r.Branch)
}

// Show returns the fetched commit sha (as Log does, without fetching).
func (r *Repo) Show(ctx context.Context, sha string) (Commit, error) {
	if _, err := r.git(ctx, r.Dir, "cat-file", "-e", sha+"^{commit}"); err != nil {
		if _, err := r.git(ctx, r.Dir, "fetch", "-q", "origin", r.Branch); err != nil {
			return Commit{}, err
		}
	}
	cs, err := r.log(ctx, "-1", sha)
	if err != nil {
		return Commit{}, err
	}
	if len(cs) == 0 {
		return Commit{}, fmt.Errorf("no commit %s", sha)
	}
	return cs[0], nil
}

func (r *Repo) log(ctx context.Context, args ...string) ([]Commit, error) {
	const sep, end = "\x1f", "\x1e"
	out, err := r.git(ctx, r.Dir, append([]string{"log", "--format=%H" + sep + "%an" + sep + "%s" + sep + "%b" + end}, args...)...)
	if err != nil {
		return nil, err
	}
	var cs []Commit
	for rec := range strings.SplitSeq(out, end) {
		rec = strings.TrimLeft(rec, "\n")
		if rec == "" {
			continue
		}
		f := strings.SplitN(rec, sep, 4)
		if len(f) != 4 {
			return nil, fmt.Errorf("unexpected git log record %q", rec)
		}
		cs = append(cs, Commit{SHA: f[0], Author: f[1], Subject: f[2], Body: strings.TrimSpace(f[3])})
	}
	return cs, nil
}

// ReadFile fetches and returns a file of the branch's newest commit.
func (r *Repo) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if _, err := r.git(ctx, r.Dir, "fetch", "-q", "origin", r.Branch); err != nil {
		return nil, err
	}
	out, err := r.git(ctx, r.Dir, "show", "origin/"+r.Branch+":"+path)
	if err != nil {
		return nil, err
	}
	return []byte(out), nil
}

// Refs returns every ref the server advertises (branches, tags, HEAD) with
// the commit it points to, as a client sees them.
func (r *Repo) Refs(ctx context.Context) (map[string]string, error) {
	out, err := r.git(ctx, r.Dir, "ls-remote", "origin")
	if err != nil {
		return nil, err
	}
	refs := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		sha, ref, ok := strings.Cut(line, "\t")
		if !ok {
			return nil, fmt.Errorf("unexpected git ls-remote line %q", line)
		}
		refs[ref] = sha
	}
	return refs, nil
}
