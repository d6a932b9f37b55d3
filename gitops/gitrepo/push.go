package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// errMoved: the branch is no longer where the commit was built.
var errMoved = errors.New("branch moved")

// push sends the new objects and asks the remote to move target from old
// (zero: create it) to the new commit. The remote applies the update only if
// target still points at old.
func (r *repo) push(ctx context.Context, s session, target plumbing.ReferenceName, old plumbing.Hash, p plan) error {
	sess, err := openSession(ctx, s.ep, func() (transport.ReceivePackSession, error) {
		return s.tr.NewReceivePackSession(s.ep, s.auth)
	})
	if err != nil {
		return classify("push", err)
	}
	defer closeSession(ctx, sess)
	caps, err := pushCapabilities(ctx, sess, s.ep, target, old)
	if err != nil {
		return err
	}
	var pack bytes.Buffer
	// Window 0: no deltas, so the pack never needs ofs-delta support.
	enc := packfile.NewEncoder(&pack, p.objects, false)
	if _, err := enc.Encode(p.hashes, 0); err != nil {
		return fmt.Errorf("push: encode pack: %w", err)
	}
	req := packp.NewReferenceUpdateRequest()
	// Side-band keeps a hook's messages out of the status report.
	req.Capabilities = caps
	req.Commands = []*packp.Command{{Name: target, Old: old, New: p.commit}}
	req.Packfile = io.NopCloser(&pack)
	rs, err := sess.ReceivePack(ctx, req)
	if err := statusError(rs); err != nil {
		return err
	}
	if err != nil {
		return classify("push", err)
	}
	return nil
}

// pushCapabilities chooses the capabilities of a push. Over SSH it reads
// the ref advertisement first and returns errMoved when target is no longer
// at old, which saves sending a pack the server would refuse.
func pushCapabilities(ctx context.Context, sess transport.ReceivePackSession, ep *transport.Endpoint, target plumbing.ReferenceName, old plumbing.Hash) (*capability.List, error) {
	caps := capability.NewList()
	if ep.Protocol == "http" || ep.Protocol == "https" {
		// Smart HTTP is stateless: the push needs no ref advertisement
		// first, which saves a round trip and a server process. Every Git
		// server since 1.6 speaks these; the old value in the command
		// is still checked by the server under the ref lock.
		_ = caps.Set(capability.ReportStatus)
		_ = caps.Set(capability.Sideband64k)
		return caps, nil
	}
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return nil, classify("push", err)
	}
	refs, err := ar.AllReferences()
	if err != nil {
		return nil, fmt.Errorf("push: read advertised refs: %w", err)
	}
	current := plumbing.ZeroHash
	if ref, err := refs.Reference(target); err == nil {
		current = ref.Hash()
	}
	if current != old {
		return nil, errMoved
	}
	for _, c := range []capability.Capability{capability.ReportStatus, capability.Sideband64k, capability.Sideband} {
		if ar.Capabilities.Supports(c) && !(c == capability.Sideband && caps.Supports(capability.Sideband64k)) {
			_ = caps.Set(c)
		}
	}
	return caps, nil
}

// statusError is the remote's report of a push as an error: a pack it could
// not unpack, or a refused ref update. nil when the report says ok (or there
// is none).
func statusError(rs *packp.ReportStatus) error {
	if rs == nil {
		return nil
	}
	if rs.UnpackStatus != "" && rs.UnpackStatus != "ok" {
		return errors.New("push: the remote could not unpack the pack")
	}
	for _, cs := range rs.CommandStatuses {
		if cs.Status != "ok" {
			return &RejectedError{Ref: cs.ReferenceName.Short(), Reason: rejection(cs.Status)}
		}
	}
	return nil
}

// adopt stores the pushed objects in the clone and moves its branch, so the
// next fetch need not download what we wrote.
func (r *repo) adopt(target plumbing.ReferenceName, p plan) error {
	for _, h := range p.hashes {
		obj, err := p.objects.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return fmt.Errorf("adopt pushed objects: %w", err)
		}
		if _, err := r.store.SetEncodedObject(obj); err != nil {
			return fmt.Errorf("adopt pushed objects: %w", err)
		}
	}
	if err := r.store.SetReference(plumbing.NewHashReference(target, p.commit)); err != nil {
		return fmt.Errorf("adopt pushed commit: %w", err)
	}
	return nil
}

// rejection names why a remote refused a ref update in fixed words: the
// remote's own text (a hook's output, say) is another system's answer and
// never goes into status, events or commits.
func rejection(status string) string {
	s := strings.ToLower(status)
	switch {
	case strings.Contains(s, "protected"):
		return "the branch is protected"
	case strings.Contains(s, "hook"):
		return "a server-side hook declined the push"
	case strings.Contains(s, "non-fast-forward"), strings.Contains(s, "fetch first"), strings.Contains(s, "stale info"):
		return "the branch moved (not a fast-forward)"
	case strings.Contains(s, "permission"), strings.Contains(s, "denied"), strings.Contains(s, "forbidden"):
		return "permission denied"
	}
	return "refused by the remote"
}
