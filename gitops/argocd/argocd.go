// Package argocd proves where in Git a CanaryApp's manifest lives: it reads
// the Argo CD Application that manages the CanaryApp, as an unstructured
// object, so the operator needs neither Argo CD's Go module nor its CRDs to
// build.
//
// Which Application to read is only hinted at by metadata the CanaryApp's
// author writes:
//
//  1. the annotation argocd.argoproj.io/tracking-id, which Argo CD sets in
//     "annotation" tracking mode: "<app>:<group>/<kind>:<namespace>/<name>",
//     where <app> is "<app namespace>_<app name>" for Applications outside
//     the Argo CD namespace. It is used only when it names this very object;
//  2. the label app.kubernetes.io/instance, Argo CD's "label" tracking mode,
//     whose value is the Application's name (or "<namespace>_<name>").
//
// Because the author can write both, the hint proves nothing. The
// Application counts as managing the CanaryApp only when data the author
// cannot write says so: it lives in the Argo CD namespace or in one the
// admin allows (apps in any namespace), its status.resources lists exactly
// this object (group, kind, namespace, name) without requiresPruning (how a
// copied label or annotation shows up), and its spec.destination.namespace
// is the CanaryApp's namespace.
//
// From the proven Application, spec.source (or the first entry of
// spec.sources with a path) gives repoURL, path and targetRevision. A
// targetRevision of "", "HEAD" or "refs/heads/HEAD" means the repository's
// default branch, which cannot be told without asking the server, so
// DefaultBranch ("main") is used. A commit SHA as targetRevision cannot be
// written to and is an error.
package argocd

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

const (
	// TrackingAnnotation is Argo CD's annotation-based tracking id.
	TrackingAnnotation = "argocd.argoproj.io/tracking-id"
	// InstanceLabel is Argo CD's default label-based tracking.
	InstanceLabel = "app.kubernetes.io/instance"
	// DefaultNamespace is where Argo CD keeps Applications by default.
	DefaultNamespace = "argocd"
	// DefaultBranch is used when the Application tracks HEAD.
	DefaultBranch = "main"
)

// ApplicationGVK is the Argo CD Application kind.
var ApplicationGVK = schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "Application"}

var (
	// ErrNotManaged: the CanaryApp carries no Argo CD tracking annotation or
	// label, so the location must be given in spec.gitops.
	ErrNotManaged = errors.New("not managed by an Argo CD Application")
	// ErrUnresolvable: the Application exists (or should) but does not yield
	// a Git repository, branch and path that can be written to.
	ErrUnresolvable = errors.New("cannot determine the Git location from the Argo CD Application")
	// ErrNotProven: the Application the CanaryApp's metadata names does not
	// provably manage it (not found, in a namespace the admin does not
	// allow, status.resources does not list the object, or its destination
	// is another namespace). The message never says which, so a hint that
	// names another team's Application learns nothing about it.
	ErrNotProven = errors.New("the Argo CD Application named by this object's tracking metadata does not manage it")
	// ErrNotYetProven (an ErrNotProven): the Application deploys into the
	// object's namespace but its status does not list the object as synced,
	// which Argo CD changes on its own (a first sync, a refresh, a Git
	// server that was down), so asking again later may prove it.
	ErrNotYetProven = fmt.Errorf("%w yet", ErrNotProven)
)

// Source is where the manifest lives in Git.
type Source struct {
	// Application is "<namespace>/<name>" of the Application it came from.
	Application string
	RepoURL     string
	// Branch is the branch to write to.
	Branch string
	// Path is the repository-relative folder Argo CD syncs ("" is the root).
	Path string
	// DestinationNamespace is the Application's spec.destination.namespace,
	// proven equal to the CanaryApp's namespace: namespace-less documents
	// in Path belong to it.
	DestinationNamespace string
	// Revision is the commit the Application last compared or synced
	// (status.sync.revision), "" when Argo CD reports no commit SHA.
	Revision string
	// SyncedRevisions are the commits Argo CD reports for this
	// Application (status.sync.revision, status.operationState's revision
	// and status.history), newest first: only Argo CD writes them.
	SyncedRevisions []string
}

// Discoverer reads Applications.
type Discoverer struct {
	reader     client.Reader
	namespace  string
	namespaces map[string]bool
}

// New returns a Discoverer that reads Applications through reader in
// namespace (DefaultNamespace when empty) and, for Argo CD's apps in any
// namespace, in the admin's allowed extra namespaces.
func New(reader client.Reader, namespace string, allowed ...string) *Discoverer {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	d := &Discoverer{reader: reader, namespace: namespace, namespaces: map[string]bool{namespace: true}}
	for _, ns := range allowed {
		if ns = strings.TrimSpace(ns); ns != "" {
			d.namespaces[ns] = true
		}
	}
	return d
}

// Discover returns the Git location of app's manifest from the Application
// that provably manages it: ErrNotManaged when app names none, ErrNotProven
// when the one it names does not manage it, ErrUnresolvable when the
// Application's source cannot be written to.
func (d *Discoverer) Discover(ctx context.Context, app *v1.CanaryApp) (Source, error) {
	ns, name, err := d.application(app)
	if err != nil {
		return Source{}, err
	}
	notProven := fmt.Errorf("%w (Application %s/%s)", ErrNotProven, ns, name)
	if !d.namespaces[ns] {
		return Source{}, notProven
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(ApplicationGVK)
	if err := d.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) || apierrors.IsForbidden(err) {
			return Source{}, notProven
		}
		return Source{}, fmt.Errorf("read Argo CD Application %s/%s: %w", ns, name, err)
	}
	if dest, _, _ := unstructured.NestedString(u.Object, "spec", "destination", "namespace"); dest != app.Namespace {
		return Source{}, notProven
	}
	if !lists(u, app) {
		return Source{}, fmt.Errorf("%w (Application %s/%s)", ErrNotYetProven, ns, name)
	}
	src, err := sourceOf(u)
	if err != nil {
		return Source{}, err
	}
	src.DestinationNamespace = app.Namespace
	src.SyncedRevisions = revisionsOf(u)
	if rev, _, _ := unstructured.NestedString(u.Object, "status", "sync", "revision"); commitSHA.MatchString(rev) {
		src.Revision = rev
	}
	return src, nil
}

// maxRevisions bounds SyncedRevisions (Argo CD keeps 10 history entries
// by default).
const maxRevisions = 32

// revisionsOf lists the commit SHAs in the Application's status.
func revisionsOf(u *unstructured.Unstructured) []string {
	var out []string
	add := func(rev string) {
		if commitSHA.MatchString(rev) && len(out) < maxRevisions && !slices.Contains(out, rev) {
			out = append(out, rev)
		}
	}
	rev, _, _ := unstructured.NestedString(u.Object, "status", "sync", "revision")
	add(rev)
	rev, _, _ = unstructured.NestedString(u.Object, "status", "operationState", "syncResult", "revision")
	add(rev)
	history, _, _ := unstructured.NestedSlice(u.Object, "status", "history")
	for i := len(history) - 1; i >= 0; i-- {
		if m, ok := history[i].(map[string]any); ok {
			add(str(m, "revision"))
		}
	}
	return out
}

// lists reports whether the Application u reports app among the resources
// it syncs (status is written by Argo CD only), not as one to prune.
func lists(u *unstructured.Unstructured, app *v1.CanaryApp) bool {
	resources, _, _ := unstructured.NestedSlice(u.Object, "status", "resources")
	for _, r := range resources {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		if str(m, "group") == v1.GroupVersion.Group && str(m, "kind") == "CanaryApp" &&
			str(m, "namespace") == app.Namespace && str(m, "name") == app.Name {
			pruning, _ := m["requiresPruning"].(bool)
			return !pruning
		}
	}
	return false
}

// application names the managing Application.
func (d *Discoverer) application(app *v1.CanaryApp) (namespace, name string, err error) {
	if id := app.GetAnnotations()[TrackingAnnotation]; id != "" {
		if ns, n, ok := parseTrackingID(id, app); ok {
			if ns == "" {
				ns = d.namespace
			}
			return ns, n, nil
		}
	}
	if n := app.GetLabels()[InstanceLabel]; n != "" {
		if ns, name, found := strings.Cut(n, "_"); found {
			return ns, name, nil
		}
		return d.namespace, n, nil
	}
	return "", "", fmt.Errorf("%w: no %s annotation naming this object and no %s label; set spec.gitops.repoURL and spec.gitops.path",
		ErrNotManaged, TrackingAnnotation, InstanceLabel)
}

// parseTrackingID reads "<app>:<group>/<kind>:<namespace>/<name>" and
// reports whether it names app. <app> may be "<namespace>_<name>".
func parseTrackingID(id string, app *v1.CanaryApp) (appNamespace, appName string, ok bool) {
	appPart, rest, found := strings.Cut(id, ":")
	if !found || appPart == "" {
		return "", "", false
	}
	gk, obj, found := strings.Cut(rest, ":")
	if !found {
		return "", "", false
	}
	group, kind, found := strings.Cut(gk, "/")
	if !found || group != v1.GroupVersion.Group || kind != "CanaryApp" {
		return "", "", false
	}
	objNS, objName, found := strings.Cut(obj, "/")
	if !found || objName != app.GetName() || (objNS != "" && objNS != app.GetNamespace()) {
		return "", "", false
	}
	if ns, n, found := strings.Cut(appPart, "_"); found {
		return ns, n, true
	}
	return "", appPart, true
}

var commitSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// sourceOf reads the Git source of an Application.
func sourceOf(u *unstructured.Unstructured) (Source, error) {
	ref := u.GetNamespace() + "/" + u.GetName()
	src, found, err := unstructured.NestedMap(u.Object, "spec", "source")
	if err != nil {
		return Source{}, fmt.Errorf("%w: Application %s: spec.source: %v", ErrUnresolvable, ref, err)
	}
	if !found {
		sources, _, err := unstructured.NestedSlice(u.Object, "spec", "sources")
		if err != nil {
			return Source{}, fmt.Errorf("%w: Application %s: spec.sources: %v", ErrUnresolvable, ref, err)
		}
		for _, s := range sources {
			if m, ok := s.(map[string]any); ok && str(m, "path") != "" {
				src, found = m, true
				break
			}
		}
	}
	if !found {
		return Source{}, fmt.Errorf("%w: Application %s has no Git source with a path", ErrUnresolvable, ref)
	}
	if str(src, "chart") != "" {
		return Source{}, fmt.Errorf("%w: Application %s deploys a Helm chart from a chart repository, not a Git path", ErrUnresolvable, ref)
	}
	repoURL := str(src, "repoURL")
	if repoURL == "" {
		return Source{}, fmt.Errorf("%w: Application %s has no spec.source.repoURL", ErrUnresolvable, ref)
	}
	branch, err := branchOf(str(src, "targetRevision"))
	if err != nil {
		return Source{}, fmt.Errorf("%w: Application %s: %v", ErrUnresolvable, ref, err)
	}
	path := strings.Trim(str(src, "path"), "/")
	if path == "." {
		path = ""
	}
	return Source{Application: ref, RepoURL: repoURL, Branch: branch, Path: path}, nil
}

// branchOf turns a targetRevision into a branch name.
func branchOf(rev string) (string, error) {
	rev = strings.TrimSpace(rev)
	switch {
	case rev == "" || rev == "HEAD" || rev == "refs/heads/HEAD":
		return DefaultBranch, nil
	case commitSHA.MatchString(rev):
		return "", fmt.Errorf("targetRevision %s is a commit, which cannot be written to; set spec.gitops.branch", rev)
	case strings.HasPrefix(rev, "refs/tags/"):
		return "", fmt.Errorf("targetRevision %s is a tag, which cannot be written to; set spec.gitops.branch", rev)
	case strings.ContainsAny(rev, "*^~ ") || strings.HasPrefix(rev, ">") || strings.HasPrefix(rev, "<"):
		return "", fmt.Errorf("targetRevision %q is a version range, not a branch; set spec.gitops.branch", rev)
	}
	return strings.TrimPrefix(rev, "refs/heads/"), nil
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}
