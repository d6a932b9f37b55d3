package stack

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Env is the stack's env file ($E2E_DIR/env), written last by up.sh.
type Env struct {
	// Root is the project checkout (where go.mod and bin/ are).
	Root string
	// Vars holds every KEY=value line.
	Vars map[string]string
}

// Get returns the value of key, "" when absent.
func (e Env) Get(key string) string { return e.Vars[key] }

// Dir is E2E_DIR, LogsDir E2E_LOGS_DIR.
func (e Env) Dir() string     { return e.Vars["E2E_DIR"] }
func (e Env) LogsDir() string { return e.Vars["E2E_LOGS_DIR"] }

// Kubectl is the kubectl binary of the stack.
func (e Env) Kubectl() string { return e.Vars["KUBECTL"] }

// RepoURL is the clone URL of the Git server's repository name, one of
// GIT_EXTRA_REPOS (up.sh creates them); an error names the missing one.
func (e Env) RepoURL(name string) (string, error) {
	for r := range strings.SplitSeq(e.Vars["GIT_EXTRA_REPOS"], ",") {
		if r == name {
			return e.Vars["GIT_SERVER_URL"] + "/" + name + ".git", nil
		}
	}
	return "", fmt.Errorf("the stack's Git server has no repository %s (GIT_EXTRA_REPOS=%q; hack/e2e.sh starts the stack with it)", name, e.Vars["GIT_EXTRA_REPOS"])
}

// required keys: a file without them was not written by up.sh.
var required = []string{
	"E2E_DIR", "E2E_LOGS_DIR", "KUBECONFIG", "KUBECTL", "PROM_URL", "PROM_TARGETS_DIR",
	"GIT_SERVER_URL", "GIT_URL", "GIT_BRANCH", "GIT_USER", "GIT_TOKEN",
	"ARGOCD_NS", "ARGOCD_CLUSTER_SERVER",
}

// ErrNoStack: the env file is missing, so the stack is not up.
var ErrNoStack = errors.New("the local stack is not up (no env file; run hack/stack/up.sh)")

// LoadEnv reads the env file: $E2E_ENV if set, else .e2e/env of the project
// checkout that holds the working directory.
func LoadEnv() (Env, error) {
	root, err := ProjectRoot()
	if err != nil {
		return Env{}, err
	}
	path := os.Getenv("E2E_ENV")
	if path == "" {
		dir := os.Getenv("E2E_DIR")
		if dir == "" {
			dir = filepath.Join(root, ".e2e")
		}
		path = filepath.Join(dir, "env")
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Env{}, fmt.Errorf("%w: %s", ErrNoStack, path)
		}
		return Env{}, fmt.Errorf("reading the stack env: %w", err)
	}
	defer f.Close()
	env := Env{Root: root, Vars: map[string]string{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return Env{}, fmt.Errorf("%s: line without '=': %q", path, k)
		}
		env.Vars[k] = v
	}
	if err := sc.Err(); err != nil {
		return Env{}, fmt.Errorf("reading %s: %w", path, err)
	}
	var missing []string
	for _, k := range required {
		if env.Vars[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return Env{}, fmt.Errorf("%s lacks %s", path, strings.Join(missing, ", "))
	}
	return env, nil
}

// ProjectRoot finds the checkout: the nearest folder above the working
// directory with a go.mod of this module.
func ProjectRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/atzedevries/canaryop\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the canaryop checkout (no go.mod of github.com/atzedevries/canaryop above the working directory)")
		}
		dir = parent
	}
}
