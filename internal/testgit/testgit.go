// Package testgit runs the git CLI for tests the same way everywhere: a
// fixed author and committer, no system or user configuration, no prompts.
// Tests use the real git CLI as "another person" writing to a repository.
package testgit

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Env is the environment of a git command run as the given author.
func Env(name, email string) []string {
	return append(os.Environ(),
		"GIT_AUTHOR_NAME="+name, "GIT_AUTHOR_EMAIL="+email,
		"GIT_COMMITTER_NAME="+name, "GIT_COMMITTER_EMAIL="+email,
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+os.TempDir(), "GIT_TERMINAL_PROMPT=0")
}

// Command returns `name args...` in dir with Env for the given author.
func Command(dir, author, email, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = Env(author, email)
	return cmd
}

// Run runs git in dir as "Person <p@example.com>" and returns its combined
// output; it fails the test when git fails.
func Run(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := Command(dir, "Person", "p@example.com", "git", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
