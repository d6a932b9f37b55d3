package gitrepo

import (
	"errors"
	"fmt"
	"slices"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// journal is a FileSystem that remembers what each write replaced, so that
// the writes of one edit of a batch can be undone when that edit fails and
// the edits after it see the files as they were. It supports the writes an
// edit makes to files (WriteFile, Create, RemoveAll of a file, Mkdir,
// MkdirAll); removing a directory is refused, since it could not be undone.
type journal struct {
	filesys.FileSystem
	// prior holds, for every path written, what it held before the first
	// write: its bytes, or that it did not exist.
	prior map[string]priorState
	order []string
}

type priorState struct {
	existed bool
	dir     bool
	data    []byte
}

var errJournalRemoveDir = errors.New("removing a directory is not supported in a batched edit")

func newJournal(fs filesys.FileSystem) *journal {
	return &journal{FileSystem: fs, prior: map[string]priorState{}}
}

// remember records what p holds before its first write.
func (j *journal) remember(p string) error {
	p = abs(p)
	if _, ok := j.prior[p]; ok {
		return nil
	}
	var st priorState
	switch {
	case j.FileSystem.IsDir(p):
		st = priorState{existed: true, dir: true}
	case j.FileSystem.Exists(p):
		data, err := j.FileSystem.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read %s before writing it: %w", p, err)
		}
		st = priorState{existed: true, data: data}
	}
	j.prior[p] = st
	j.order = append(j.order, p)
	return nil
}

func (j *journal) WriteFile(p string, data []byte) error {
	if err := j.remember(p); err != nil {
		return err
	}
	return j.FileSystem.WriteFile(p, data)
}

func (j *journal) Create(p string) (filesys.File, error) {
	if err := j.remember(p); err != nil {
		return nil, err
	}
	return j.FileSystem.Create(p)
}

func (j *journal) Mkdir(p string) error {
	if err := j.remember(p); err != nil {
		return err
	}
	return j.FileSystem.Mkdir(p)
}

func (j *journal) MkdirAll(p string) error {
	// Every missing parent is remembered, outermost first, so that the
	// undo removes them innermost first.
	var missing []string
	for d := abs(p); d != "/" && !j.FileSystem.Exists(d); d = parentDir(d) {
		missing = append(missing, d)
	}
	slices.Reverse(missing)
	for _, d := range missing {
		if err := j.remember(d); err != nil {
			return err
		}
	}
	return j.FileSystem.MkdirAll(p)
}

func (j *journal) RemoveAll(p string) error {
	if j.FileSystem.IsDir(p) {
		return fmt.Errorf("%w: %s", errJournalRemoveDir, p)
	}
	if err := j.remember(p); err != nil {
		return err
	}
	return j.FileSystem.RemoveAll(p)
}

// undo puts back what the writes replaced, newest first.
func (j *journal) undo() error {
	var errs []error
	for _, p := range slices.Backward(j.order) {
		st := j.prior[p]
		switch {
		case !st.existed:
			errs = append(errs, j.FileSystem.RemoveAll(p))
		case !st.dir:
			errs = append(errs, j.FileSystem.WriteFile(p, st.data))
		}
	}
	return errors.Join(errs...)
}

// changed reports whether a written path now holds something else than
// before.
func (j *journal) changed() bool {
	for _, p := range j.order {
		st := j.prior[p]
		if st.dir {
			continue
		}
		exists := j.FileSystem.Exists(p) && !j.FileSystem.IsDir(p)
		if exists != st.existed {
			return true
		}
		if !exists {
			continue
		}
		data, err := j.FileSystem.ReadFile(p)
		if err != nil || string(data) != string(st.data) {
			return true
		}
	}
	return false
}

func parentDir(p string) string {
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "/"
}
