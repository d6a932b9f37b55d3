package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// fetchDepth is the history a fetch asks for: ChangedSince compares each of
// maxHistory first-parent commits with its parent, so it reads one more.
const fetchDepth = maxHistory + 1

// maxHaves bounds the ancestors of each local branch offered to the server
// during a fetch; the server needs only one common commit.
const maxHaves = 32

// fetch asks the remote for the given branches, downloads the objects the
// clone lacks, and points the clone's branches at the remote's tips. It
// returns the tips of the branches the remote has.
func (r *repo) fetch(ctx context.Context, s session, lim limits, names ...plumbing.ReferenceName) (map[plumbing.ReferenceName]plumbing.Hash, error) {
	sess, err := openSession(ctx, s.ep, func() (transport.UploadPackSession, error) {
		return s.tr.NewUploadPackSession(s.ep, s.auth)
	})
	if err != nil {
		return nil, classify("fetch", err)
	}
	defer closeSession(ctx, sess)
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return nil, classify("fetch", err)
	}
	tips, wants, err := r.wants(ar, names)
	if err != nil {
		return nil, err
	}
	if len(wants) > 0 {
		req, err := r.uploadRequest(ar, wants)
		if err != nil {
			return nil, err
		}
		if err := r.download(ctx, sess, req, lim); err != nil {
			if errors.Is(err, ErrRepoTooLarge) {
				// Remove what was fetched: the clone is over the
				// limit or holds a partial pack.
				r.drop()
			} else {
				r.removeTempPacks()
			}
			return nil, err
		}
	}
	if err := r.setBranches(tips, names); err != nil {
		return nil, err
	}
	return tips, nil
}

// wants reads the remote's tips of the named branches from its ref
// advertisement and lists the tips whose commits the clone lacks.
func (r *repo) wants(ar *packp.AdvRefs, names []plumbing.ReferenceName) (map[plumbing.ReferenceName]plumbing.Hash, []plumbing.Hash, error) {
	refs, err := ar.AllReferences()
	if err != nil {
		return nil, nil, fmt.Errorf("fetch: read advertised refs: %w", err)
	}
	tips := map[plumbing.ReferenceName]plumbing.Hash{}
	var wants []plumbing.Hash
	for _, name := range names {
		if _, done := tips[name]; done {
			continue
		}
		ref, err := refs.Reference(name)
		if err != nil {
			continue
		}
		tips[name] = ref.Hash()
		if _, err := r.store.EncodedObject(plumbing.CommitObject, ref.Hash()); err != nil {
			wants = append(wants, ref.Hash())
		}
	}
	return tips, wants, nil
}

// uploadRequest asks for wants, offering what the clone has and, where the
// server can, keeping the history shallow.
func (r *repo) uploadRequest(ar *packp.AdvRefs, wants []plumbing.Hash) (*packp.UploadPackRequest, error) {
	req := packp.NewUploadPackRequestFromCapabilities(ar.Capabilities)
	if ar.Capabilities.Supports(capability.NoProgress) {
		_ = req.Capabilities.Set(capability.NoProgress)
	}
	req.Wants = wants
	req.Haves = r.haves()
	if ar.Capabilities.Supports(capability.Shallow) {
		_ = req.Capabilities.Set(capability.Shallow)
		if len(req.Haves) == 0 {
			// A first clone brings only the history ChangedSince
			// can walk: older commits cost disk and time and are
			// never read. Later fetches ask for no depth (which
			// makes the server walk that history again each
			// time), as git fetch does; the history then grows
			// from this window.
			req.Depth = packp.DepthCommits(fetchDepth)
		}
		// The commits whose parents the clone lacks, so that the
		// server does not count on them.
		var err error
		if req.Shallows, err = r.store.Shallow(); err != nil {
			return nil, fmt.Errorf("fetch: read shallow commits: %w", err)
		}
	}
	return req, nil
}

// setBranches points the clone's branches at the remote's tips and removes
// those the remote does not have.
func (r *repo) setBranches(tips map[plumbing.ReferenceName]plumbing.Hash, names []plumbing.ReferenceName) error {
	for _, name := range names {
		if h, ok := tips[name]; ok {
			if err := r.store.SetReference(plumbing.NewHashReference(name, h)); err != nil {
				return fmt.Errorf("fetch: set %s: %w", name.Short(), err)
			}
		} else if err := r.store.RemoveReference(name); err != nil {
			return fmt.Errorf("fetch: remove %s: %w", name.Short(), err)
		}
	}
	return nil
}

// download receives the pack that answers req into the clone, cut off
// where it would break the limits, and records the shallow commits the
// server sent.
func (r *repo) download(ctx context.Context, sess transport.UploadPackSession, req *packp.UploadPackRequest, lim limits) (err error) {
	reader, err := sess.UploadPack(ctx, req)
	if errors.Is(err, transport.ErrEmptyUploadPackRequest) {
		return nil
	}
	if err != nil {
		return classify("fetch", err)
	}
	defer func() {
		if cerr := reader.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("fetch: %w", cerr)
		}
	}()
	var pack io.Reader = reader
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		pack = sideband.NewDemuxer(sideband.Sideband64k, reader)
	case req.Capabilities.Supports(capability.Sideband):
		pack = sideband.NewDemuxer(sideband.Sideband, reader)
	}
	// Measured now, not at the start of the Update: a retried push
	// fetches again, and each fetch adds a pack.
	lim.budget = lim.maxRepo - dirSize(r.path)
	guard := newPackGuard(pack, lim)
	err = packfile.UpdateObjectStorage(r.store, guard)
	if gerr := guard.close(); gerr != nil && errors.Is(gerr, ErrRepoTooLarge) {
		return fmt.Errorf("fetch: %w", gerr)
	}
	if err != nil {
		return fmt.Errorf("fetch: store pack: %w", err)
	}
	if len(reader.Shallows) > 0 {
		if err := r.addShallows(reader.Shallows); err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
	}
	return nil
}

// addShallows records the commits whose parents the clone lacks, so that
// the next fetch tells the server where the history stops.
func (r *repo) addShallows(hs []plumbing.Hash) error {
	have, err := r.store.Shallow()
	if err != nil {
		return fmt.Errorf("read shallow commits: %w", err)
	}
	for _, h := range hs {
		if !slices.Contains(have, h) {
			have = append(have, h)
		}
	}
	if err := r.store.SetShallow(have); err != nil {
		return fmt.Errorf("write shallow commits: %w", err)
	}
	return nil
}

// haves lists the local branch tips and some of their ancestors, so that the
// server sends only what is new.
func (r *repo) haves() []plumbing.Hash {
	seen := map[plumbing.Hash]bool{}
	iter, err := r.store.IterReferences()
	if err != nil {
		return nil
	}
	_ = iter.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() != plumbing.HashReference || !ref.Name().IsBranch() || seen[ref.Hash()] {
			return nil
		}
		c, err := object.GetCommit(r.store, ref.Hash())
		if err != nil {
			return nil
		}
		n := 0
		_ = object.NewCommitPreorderIter(c, seen, nil).ForEach(func(c *object.Commit) error {
			seen[c.Hash] = true
			if n++; n >= maxHaves {
				return storer.ErrStop
			}
			return nil
		})
		return nil
	})
	out := make([]plumbing.Hash, 0, len(seen))
	for h := range seen {
		out = append(out, h)
	}
	return out
}
