// Package manifest edits the CanaryApp manifest in a Git work tree so that
// it records a canary's outcome: the image Git must name, and the images
// that failed (spec.failedImages). It works on a kyaml FileSystem, so the
// caller can back it by disk or by an in-memory copy of a Git tree.
//
// Edits are surgical. Documents are parsed with kyaml and located by group,
// kind, name and namespace; the change is written as a byte patch at the
// parsed node's position, so comments, key order, quoting and formatting
// outside the edited scalar and the inserted lines stay byte for byte.
// Where YAML is shaped so that a patch is not provably safe (flow style,
// block or multi-line scalars, anchors, tags) the file is re-encoded with
// kyaml instead, which keeps comments and key order but may normalise
// indentation.
//
// When the folder has a kustomization, the image is changed in its images:
// entry for the image's repository if there is one (kustomize then needs
// a configurations: file that declares spec/image of kind CanaryApp an
// image field), and the result is rendered with krusty in memory. Apply
// always renders the edited tree and checks that the CanaryApp carries
// exactly the intended image and record before it writes anything: on any
// error the FileSystem is left untouched.
//
// The repository is not trusted: many teams share one operator, and a
// CanaryApp's author chooses the path. So a document without
// metadata.namespace is the app's only when the caller proves the namespace
// it is applied in (Target.DefaultNamespace); a render reads within size
// limits and never loads anything from the network; and errors and results
// never quote what the repository says, except image references.
package manifest

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/safetext"
)

// Target identifies the CanaryApp document.
type Target struct {
	Group, Kind, Name string
	// Namespace is the app's namespace; empty matches documents in any
	// namespace (never a document without one, see DefaultNamespace).
	Namespace string
	// DefaultNamespace is the namespace a document without
	// metadata.namespace is applied in, as the caller has verified it: Argo
	// CD's destination namespace for the path, or the admin's policy. Such
	// a document is the target only when DefaultNamespace is Namespace.
	// Empty means it never is: anyone can write a namespace-less document
	// of the same name, so without proof it may be another team's.
	DefaultNamespace string
}

// ForApp returns the Target of the CanaryApp namespace/name. It matches no
// document without metadata.namespace; see WithDefaultNamespace.
func ForApp(namespace, name string) Target {
	return Target{Group: v1.GroupVersion.Group, Kind: "CanaryApp", Name: name, Namespace: namespace}
}

// WithDefaultNamespace returns t with DefaultNamespace set to ns.
func (t Target) WithDefaultNamespace(ns string) Target {
	t.DefaultNamespace = ns
	return t
}

// Change is what the manifest must say after Apply.
type Change struct {
	// Image is the image the CanaryApp must name after the change.
	Image string
	// ExpectImages makes the image change a compare-and-swap: the image is
	// changed only if the manifest currently names one of these. Empty
	// means always.
	ExpectImages []string
	// FailedImage is appended to spec.failedImages unless an entry for
	// that image is there already.
	FailedImage *v1.FailedImage
	// AllowImage is removed from spec.failedImages (a retry). An empty
	// Image leaves the image as it is.
	AllowImage string
	// ApprovedImage is set as spec.approvedImage (an approval request).
	ApprovedImage string
}

// Result says what Apply did.
type Result struct {
	// Files are the files changed (paths as used on the FileSystem: path
	// joined with the file's name), with their new content written.
	Files []string
	// PreviousImage is the image the manifest named before: an image
	// reference (v1.ImagePattern), or empty when the manifest named none.
	PreviousImage string
	// ImageChanged is true when the image was changed.
	ImageChanged bool
	// ImageSkipped is true when the compare-and-swap failed: the manifest
	// names an image not in ExpectImages (a person committed a newer one),
	// which was kept; only the failed record was written.
	ImageSkipped bool
	// RecordAdded is true when FailedImage was added.
	RecordAdded bool
	// RecordRemoved is true when AllowImage's record was removed.
	RecordRemoved bool
	// ApprovalSet is true when spec.approvedImage was set.
	ApprovalSet bool
}

// Rendered is what the CanaryApp says once rendered.
type Rendered struct {
	Image         string
	FailedImages  []string
	ApprovedImage string
}

// Sentinel errors; match them with errors.Is. Every error Apply and Render
// return is an *Error wrapping one of them.
var (
	ErrPathNotFound   = errors.New("path not found")
	ErrParse          = errors.New("unparseable YAML")
	ErrNoDocument     = errors.New("no matching document")
	ErrAmbiguous      = errors.New("more than one matching document")
	ErrNotEditable    = errors.New("cannot edit the manifest under this path")
	ErrInvalidChange  = errors.New("invalid change")
	ErrRender         = errors.New("render failed")
	ErrRenderMismatch = errors.New("rendered manifest differs from the intended change")

	// ErrNamespaceNotProven is an ErrNoDocument: the only documents with
	// the target's name have no metadata.namespace, and the Target has no
	// DefaultNamespace that would place them in the app's namespace.
	ErrNamespaceNotProven = fmt.Errorf("%w: the document has no metadata.namespace and the app's namespace is not proven", ErrNoDocument)
	// ErrRemoteReference is an ErrRender: a kustomization names a file or
	// folder kustomize would fetch from the network, or a Helm chart.
	ErrRemoteReference = fmt.Errorf("%w: remote reference not allowed", ErrRender)
	// ErrTooLarge is an ErrParse: a file is over 1 MiB, its YAML stands
	// for over 100000 nodes once aliases are expanded, or the render reads
	// over 16 MiB.
	ErrTooLarge = fmt.Errorf("%w: over the size limits", ErrParse)
)

// Error is a failure to read, edit or render a manifest. Its text reaches
// the app's status and events, which the app's author reads, while the
// repository may hold other teams' files: it names files under the path
// Render or Apply was given and never quotes what a file says, other than
// image references.
type Error struct {
	// Kind is one of the sentinel errors.
	Kind error
	// Path is the file or folder concerned: under the path given, or that
	// path itself.
	Path string
	// Detail says what was found, for a person.
	Detail string
	// Err is the underlying cause, if any: an error of this package or of
	// the FileSystem, never a YAML or kustomize message.
	Err error
}

// Lengths at which the parts of an Error's text are cut.
const (
	maxPathChars   = 512
	maxDetailChars = 1024
)

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("manifest: ")
	if e.Path != "" {
		b.WriteString(safetext.Truncate(e.Path, maxPathChars) + ": ")
	}
	b.WriteString(e.Kind.Error())
	if e.Detail != "" {
		b.WriteString(": " + safetext.Truncate(e.Detail, maxDetailChars))
	}
	if e.Err != nil {
		b.WriteString(": " + safetext.Truncate(e.Err.Error(), maxDetailChars))
	}
	return b.String()
}

func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Limits of the API (api/v1) that an edit must respect, or the API server
// rejects the manifest Argo CD applies.
const (
	maxReasonChars = 1024
	maxFailed      = 100
	maxImageChars  = 512
)

var imageRe = regexp.MustCompile(v1.ImagePattern)

// isImage says whether s is an image reference the API accepts in
// spec.image. Only such values of a manifest are ever reported.
func isImage(s string) bool {
	return len(s) <= maxImageChars && imageRe.MatchString(s)
}

func (c Change) validate() error {
	bad := func(what, img string) error {
		return &Error{Kind: ErrInvalidChange, Detail: fmt.Sprintf("%s %q is not an image reference", what, safetext.Truncate(img, 100))}
	}
	if c.Image != "" && !isImage(c.Image) {
		return bad("image", c.Image)
	}
	if c.Image == "" && c.AllowImage == "" && c.ApprovedImage == "" {
		return bad("image", c.Image)
	}
	if c.ApprovedImage != "" && !isImage(c.ApprovedImage) {
		return bad("approved image", c.ApprovedImage)
	}
	if c.AllowImage != "" && !isImage(c.AllowImage) {
		return bad("allowed image", c.AllowImage)
	}
	if c.FailedImage != nil && !isImage(c.FailedImage.Image) {
		return bad("failed image", c.FailedImage.Image)
	}
	return nil
}

// tree is the manifest under a path: either plain YAML files, or a
// kustomization with the files it pulls in from under the path.
type tree struct {
	path string
	kust *sourceFile   // nil without a kustomization
	dir  string        // the kustomization's folder
	docs []*sourceFile // files that may hold the CanaryApp document
}

// load reads the manifest at p. With a kustomization, every kustomization it
// reaches is checked for remote references first, so that kustomize, which
// runs later, loads nothing from the network.
func load(fsys *budgetFS, p string) (*tree, error) {
	if !fsys.Exists(p) {
		return nil, &Error{Kind: ErrPathNotFound, Path: p}
	}
	t := &tree{path: p}
	if !fsys.IsDir(p) {
		f, err := readSource(fsys, p)
		if err != nil {
			return nil, err
		}
		t.docs = []*sourceFile{f}
		return t, nil
	}
	switch kps := kustomizationFiles(fsys, p); len(kps) {
	case 0:
	case 1:
		k, err := readSource(fsys, kps[0])
		if err != nil {
			return nil, err
		}
		t.kust, t.dir = k, p
		t.docs, err = walkKustomizations(fsys, p, k)
		return t, err
	default:
		return nil, &Error{Kind: ErrRender, Path: p, Detail: "the folder holds more than one kustomization file"}
	}
	names, err := folderFiles(fsys, p)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		f, err := readSource(fsys, n)
		if err != nil {
			return nil, err
		}
		t.docs = append(t.docs, f)
	}
	return t, nil
}

// render returns the CanaryApp as it will be applied, and the documents
// under the path it may come from: exactly one without a kustomization;
// with one, none when it comes from a base outside the path.
func (tr *tree) render(fsys *budgetFS, t Target) (Rendered, []document, error) {
	if tr.kust == nil {
		d, err := oneDocument(findDocuments(tr.docs, t), t, tr.path, len(tr.docs), namespaceLess(tr.docs, t))
		if err != nil {
			return Rendered{}, nil, err
		}
		r := stateOf(d.root)
		if err := checkImage(r, d.file.path); err != nil {
			return Rendered{}, nil, err
		}
		return r, []document{d}, nil
	}
	app, err := renderKustomization(fsys, tr.dir, t)
	if err != nil {
		return Rendered{}, nil, err
	}
	if err := checkImage(app.Rendered, tr.dir); err != nil {
		return Rendered{}, nil, err
	}
	return app.Rendered, sourceCandidates(tr.docs, t, app), nil
}

// checkImage refuses a CanaryApp whose spec.image is not an image
// reference. The API server would refuse that manifest too, and its value
// may be anything kustomize put there, a fetched secret included (a
// replacement from a generated ConfigMap): it must never be reported.
func checkImage(r Rendered, where string) error {
	if r.Image != "" && !isImage(r.Image) {
		return &Error{Kind: ErrNotEditable, Path: where, Detail: "the manifest's spec.image is not an image reference"}
	}
	return nil
}

// source picks the one document to edit.
func (tr *tree) source(docs []document, t Target, why string) (document, error) {
	switch len(docs) {
	case 1:
		return docs[0], nil
	case 0:
		return document{}, &Error{Kind: ErrNotEditable, Path: tr.path,
			Detail: fmt.Sprintf("%s comes from outside this path, so %s", t, why)}
	default:
		var at []string
		for _, d := range docs {
			at = append(at, d.String())
		}
		return document{}, &Error{Kind: ErrAmbiguous, Path: tr.path,
			Detail: fmt.Sprintf("%s may come from %s", t, strings.Join(at, ", "))}
	}
}

// Render returns the image and failed images the CanaryApp at path names
// once rendered: by kustomize when the folder has a kustomization,
// otherwise as written.
//
// Render reads no more than 16 MiB, no file over 1 MiB and no YAML that
// stands for over 100000 nodes (ErrTooLarge), and refuses kustomizations
// that name anything outside the FileSystem (ErrRemoteReference).
// Rendered.Image is empty or an image reference; Rendered.FailedImages are
// the records as written, for comparison only.
func Render(fsys filesys.FileSystem, path string, t Target) (Rendered, error) {
	bfs := newBudgetFS(fsys, path)
	tr, err := load(bfs, path)
	if err != nil {
		return Rendered{}, err
	}
	r, _, err := tr.render(bfs, t)
	return r, err
}

// Apply edits the manifest at path (a folder of YAML files, or one file) so
// that the CanaryApp t names c.Image and records c.FailedImage, renders the
// result to check it, and only then writes the changed files to fsys. On
// error nothing is written. When the manifest already says all of it,
// Result.Files is empty. It reads and refuses as Render does.
func Apply(fsys filesys.FileSystem, path string, t Target, c Change) (Result, error) {
	if err := c.validate(); err != nil {
		return Result{}, err
	}
	bfs := newBudgetFS(fsys, path)
	tr, err := load(bfs, path)
	if err != nil {
		return Result{}, err
	}
	before, docs, err := tr.render(bfs, t)
	if err != nil {
		return Result{}, err
	}
	e := &editPlan{tr: tr, docs: docs, t: t, before: before, want: before, edits: map[*sourceFile][]op{}}
	e.res.PreviousImage = before.Image
	for _, step := range []func(Change) error{e.image, e.record, e.allow, e.approve} {
		if err := step(c); err != nil {
			return Result{}, err
		}
	}
	if len(e.edits) == 0 {
		return e.res, nil
	}
	return e.write(fsys, path)
}

// editPlan collects the edits of one Apply and what the manifest must
// render to afterwards.
type editPlan struct {
	tr           *tree
	docs         []document
	t            Target
	before, want Rendered
	edits        map[*sourceFile][]op
	res          Result
}

// onSource adds an edit of spec in the document that defines the target.
func (e *editPlan) onSource(why string, o op) error {
	doc, err := e.tr.source(e.docs, e.t, why)
	if err != nil {
		return err
	}
	o.doc, o.path = doc.index, []any{"spec"}
	e.edits[doc.file] = append(e.edits[doc.file], o)
	return nil
}

func (e *editPlan) image(c Change) error {
	switch {
	case c.Image == "" || e.before.Image == c.Image:
	case len(c.ExpectImages) > 0 && !slices.Contains(c.ExpectImages, e.before.Image):
		e.res.ImageSkipped = true
	default:
		f, ops, err := e.tr.imageOps(e.docs, e.t, e.before.Image, c.Image)
		if err != nil {
			return err
		}
		e.edits[f] = append(e.edits[f], ops...)
		e.res.ImageChanged, e.want.Image = true, c.Image
	}
	return nil
}

func (e *editPlan) record(c Change) error {
	if c.FailedImage == nil || slices.Contains(e.before.FailedImages, c.FailedImage.Image) {
		return nil
	}
	if len(e.before.FailedImages) >= maxFailed {
		doc, err := e.tr.source(e.docs, e.t, "the failed image cannot be recorded here")
		if err != nil {
			return err
		}
		return &Error{Kind: ErrNotEditable, Path: doc.String(),
			Detail: fmt.Sprintf("spec.failedImages already holds %d records, the API's limit; remove old ones", maxFailed)}
	}
	if err := e.onSource("the failed image cannot be recorded here", op{kind: opAppend, key: "failedImages", item: failedItem(*c.FailedImage)}); err != nil {
		return err
	}
	e.res.RecordAdded = true
	e.want.FailedImages = append(slices.Clone(e.before.FailedImages), c.FailedImage.Image)
	return nil
}

func (e *editPlan) allow(c Change) error {
	if c.AllowImage == "" || !slices.Contains(e.before.FailedImages, c.AllowImage) {
		return nil
	}
	if err := e.onSource("the failed image's record cannot be removed here", op{kind: opRemoveItem, key: "failedImages", value: c.AllowImage}); err != nil {
		return err
	}
	e.res.RecordRemoved = true
	e.want.FailedImages = slices.DeleteFunc(slices.Clone(e.want.FailedImages), func(s string) bool { return s == c.AllowImage })
	return nil
}

func (e *editPlan) approve(c Change) error {
	if c.ApprovedImage == "" || e.before.ApprovedImage == c.ApprovedImage {
		return nil
	}
	if err := e.onSource("spec.approvedImage cannot be set here", op{kind: opSet, key: "approvedImage", value: c.ApprovedImage}); err != nil {
		return err
	}
	e.res.ApprovalSet, e.want.ApprovedImage = true, c.ApprovedImage
	return nil
}

// write applies the edits, checks the rendered result against the intent,
// and only then writes the files.
func (e *editPlan) write(fsys filesys.FileSystem, path string) (Result, error) {
	out := map[string][]byte{}
	for f, ops := range e.edits {
		data, err := editFile(f, ops)
		if err != nil {
			return Result{}, &Error{Kind: ErrNotEditable, Path: f.path, Err: err}
		}
		out[f.path] = data
	}
	if err := check(newOverlay(fsys, out), path, e.t, e.want); err != nil {
		return Result{}, err
	}
	res := e.res
	for p, data := range out {
		if err := fsys.WriteFile(p, data); err != nil {
			return Result{}, fmt.Errorf("manifest: write %s: %w", p, err)
		}
		res.Files = append(res.Files, p)
	}
	slices.Sort(res.Files)
	return res, nil
}

// imageOps plans the image change: in the kustomization's images: entry
// for the repository when there is one, else in the CanaryApp document.
func (tr *tree) imageOps(docs []document, t Target, current, want string) (*sourceFile, []op, error) {
	if tr.kust != nil {
		source := ""
		if len(docs) == 1 {
			source = stateOf(docs[0].root).Image
		}
		e, ok, err := matchImageEntry(imageEntries(tr.kust), source, current)
		if err != nil {
			return nil, nil, &Error{Kind: ErrAmbiguous, Path: tr.kust.path, Detail: err.Error()}
		}
		if ok {
			return tr.kust, imageEntryOps(e, want), nil
		}
	}
	doc, err := tr.source(docs, t, fmt.Sprintf("its image can only be changed by an images: entry for %q in the kustomization", current))
	if err != nil {
		return nil, nil, err
	}
	return doc.file, []op{{kind: opSet, doc: doc.index, path: []any{"spec"}, key: "image", value: want}}, nil
}

func failedItem(f v1.FailedImage) [][2]string {
	item := [][2]string{{"image", f.Image}}
	if f.Reason != "" {
		item = append(item, [2]string{"reason", safetext.Truncate(f.Reason, maxReasonChars)})
	}
	if f.Time != nil && !f.Time.IsZero() {
		item = append(item, [2]string{"time", f.Time.UTC().Format(time.RFC3339)})
	}
	return item
}

// check renders the edited tree and compares it with the intent.
func check(fsys filesys.FileSystem, path string, t Target, want Rendered) error {
	image, failed := want.Image, want.FailedImages
	got, err := Render(fsys, path, t)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && !errors.Is(err, ErrRender) {
			// The edit broke the YAML or the match: that is a mismatch too.
			return &Error{Kind: ErrRenderMismatch, Path: path, Detail: "the edited manifest does not render", Err: err}
		}
		return err
	}
	if got.Image != image {
		hint := ""
		if fsys.IsDir(path) && kustomizationIn(fsys, path) != "" {
			hint = " (does the kustomization declare spec/image of CanaryApp as an image field in configurations:?)"
		}
		return &Error{Kind: ErrRenderMismatch, Path: path,
			Detail: fmt.Sprintf("the rendered %s names image %q, want %q%s", t, got.Image, image, hint)}
	}
	if !slices.Equal(got.FailedImages, failed) {
		// The records may hold anything a person wrote: say how they
		// differ without quoting them.
		detail := fmt.Sprintf("the rendered %s records %d failed images, want %d", t, len(got.FailedImages), len(failed))
		if n := len(failed); n > 0 && isImage(failed[n-1]) && !slices.Contains(got.FailedImages, failed[n-1]) {
			detail = fmt.Sprintf("the rendered %s does not record the failed image %q", t, failed[n-1])
		}
		return &Error{Kind: ErrRenderMismatch, Path: path, Detail: detail}
	}
	if got.ApprovedImage != want.ApprovedImage {
		return &Error{Kind: ErrRenderMismatch, Path: path,
			Detail: fmt.Sprintf("the rendered %s approves %q, want %q", t, safetext.Truncate(got.ApprovedImage, 100), want.ApprovedImage)}
	}
	return nil
}
