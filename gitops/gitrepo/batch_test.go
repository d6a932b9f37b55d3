package gitrepo

import (
	"context"
	"errors"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// writes returns an edit that writes files and commits with msg.
func writes(msg string, files map[string]string) Edit {
	return func(fsys filesys.FileSystem, _ History) (EditResult, error) {
		for name, content := range files {
			if err := fsys.MkdirAll(parentDir(abs(name))); err != nil {
				return EditResult{}, err
			}
			if err := fsys.WriteFile(name, []byte(content)); err != nil {
				return EditResult{}, err
			}
		}
		return EditResult{Message: msg, Value: msg}, nil
	}
}

func TestUpdateBatchKeepsEachEditApart(t *testing.T) {
	g := newGitServer(t)
	w := g.seed("team/apps.git", map[string]string{"a.txt": "a0\n", "keep.txt": "k\n"})
	c := newCache(t, Options{})
	failing := func(fsys filesys.FileSystem, h History) (EditResult, error) {
		// Writes, then fails: its writes must not reach the commit.
		if _, err := writes("x", map[string]string{"a.txt": "broken\n", "new/dir/b.txt": "b\n"})(fsys, h); err != nil {
			return EditResult{}, err
		}
		return EditResult{}, errors.New("compare-and-swap refused with token " + testToken)
	}
	panicking := func(fsys filesys.FileSystem, _ History) (EditResult, error) {
		_ = fsys.WriteFile("keep.txt", []byte("lost\n"))
		panic("edit bug")
	}
	edits := []Edit{
		writes("first", map[string]string{"a.txt": "a1\n"}),
		failing,
		panicking,
		writes("same", map[string]string{"keep.txt": "k\n"}), // changes nothing
		writes("second", map[string]string{"c/c.txt": "c\n"}),
	}
	combine := func(msgs []string) string { return "batch\n\n" + strings.Join(msgs, "\n") }
	res, err := c.UpdateBatch(context.Background(), UpdateRequest{URL: g.url("team/apps.git"), Branch: "main", Auth: g.auth(), Author: author}, edits, combine)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(edits) {
		t.Fatalf("%d results", len(res))
	}
	if !res[0].Commit.Created || !res[4].Commit.Created || res[0].Commit.SHA != res[4].Commit.SHA || res[0].Commit.Edit.Value != "first" || res[4].Commit.Edit.Value != "second" {
		t.Fatalf("committed edits: %+v / %+v", res[0], res[4])
	}
	if res[3].Err != nil || res[3].Commit.Created || res[3].Commit.SHA != res[0].Commit.SHA {
		t.Fatalf("unchanged edit: %+v", res[3])
	}
	if !errors.Is(res[1].Err, ErrEdit) || strings.Contains(res[1].Err.Error(), testToken) {
		t.Fatalf("failed edit: %v", res[1].Err)
	}
	if !errors.Is(res[2].Err, ErrPanic) {
		t.Fatalf("panicked edit: %v", res[2].Err)
	}
	if log := w.log("main"); len(log) != 2 || log[0] != "batch" {
		t.Fatalf("log %v", log)
	}
	if got := w.show("origin/main:a.txt"); got != "a1\n" {
		t.Fatalf("a.txt %q", got)
	}
	if got := w.show("origin/main:keep.txt"); got != "k\n" {
		t.Fatalf("keep.txt %q", got)
	}
	if tryRun(w.dir, "git", "cat-file", "-e", "origin/main:new/dir/b.txt") == nil {
		t.Fatal("the failed edit's file was committed")
	}
	if got := w.show("origin/main:c/c.txt"); got != "c\n" {
		t.Fatalf("c.txt %q", got)
	}
	if msg := w.show("origin/main"); !strings.Contains(msg, "first") || !strings.Contains(msg, "second") || strings.Contains(msg, "same") {
		t.Fatalf("message %s", msg)
	}
}

func TestUpdateBatchOfOneIsAnUpdate(t *testing.T) {
	g := newGitServer(t)
	w := g.seed("team/apps.git", map[string]string{"a.txt": "a0\n"})
	c := newCache(t, Options{})
	combine := func([]string) string { t.Fatal("combine called for one message"); return "" }
	res, err := c.UpdateBatch(context.Background(), UpdateRequest{URL: g.url("team/apps.git"), Branch: "main", Auth: g.auth(), Author: author},
		[]Edit{writes("only", map[string]string{"a.txt": "a1\n"})}, combine)
	if err != nil || res[0].Err != nil || !res[0].Commit.Created {
		t.Fatalf("%v %+v", err, res)
	}
	if log := w.log("main"); log[0] != "only" {
		t.Fatalf("log %v", log)
	}
}
