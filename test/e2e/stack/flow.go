package stack

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// App is one CanaryApp released through Git: its folder in the repository,
// the Argo CD Application that syncs the folder, and the object.
type App struct {
	Name      string
	Namespace string
	// Dir is the repository-relative folder with canaryapp.yaml.
	Dir string
	// Application is the Argo CD Application's name.
	Application string
	// Project is the Application's Argo CD project; empty: canaryapps
	// (argocd/appproject.yaml).
	Project string
}

// Manifest is the repository-relative path of the app's CanaryApp manifest.
func (a App) Manifest() string { return path.Join(a.Dir, "canaryapp.yaml") }

// Flow is the release flow of the demo and the end-to-end suite: a person
// commits, Argo CD syncs, canaryop decides and writes back.
type Flow struct {
	Env      Env
	Cluster  *Cluster
	Repo     *Repo
	Timeline *Timeline
	// Short are the analysis settings of seeded apps.
	Short Short
}

// NewFlow connects to the stack and clones its repository into
// $E2E_DIR/work/<clone>.
func NewFlow(ctx context.Context, env Env, clone string, tl *Timeline) (*Flow, error) {
	c, err := NewCluster(env)
	if err != nil {
		return nil, err
	}
	repo, err := cloneInto(ctx, env, env.Get("GIT_URL"), clone)
	if err != nil {
		return nil, err
	}
	return &Flow{Env: env, Cluster: c, Repo: repo, Timeline: tl, Short: Short{Interval: "5s", CheckInterval: "1s"}}, nil
}

// ForRepo returns a copy of f (same cluster connection and settings) that
// releases through another repository of the stack's Git server
// (Env.RepoURL), another team's, cloned into $E2E_DIR/work/<clone>, and
// prints on tl.
func (f *Flow) ForRepo(ctx context.Context, repoURL, clone string, tl *Timeline) (*Flow, error) {
	repo, err := cloneInto(ctx, f.Env, repoURL, clone)
	if err != nil {
		return nil, err
	}
	g := *f
	g.Repo, g.Timeline = repo, tl
	return &g, nil
}

func cloneInto(ctx context.Context, env Env, url, clone string) (*Repo, error) {
	dir := filepath.Join(env.Dir(), "work", clone)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	return NewRepoAt(ctx, env, url, dir)
}

// Prepare installs what the operator and Argo CD need before any app: the
// CanaryApp CRD, the operator's Git credentials and the AppProject.
func (f *Flow) Prepare(ctx context.Context) error {
	if err := f.Cluster.InstallCRD(ctx); err != nil {
		return err
	}
	if err := f.Cluster.GiveOperatorGitCredentials(ctx); err != nil {
		return err
	}
	return f.Cluster.ApplyProject(ctx)
}

// commit makes a commit as the demo user, prints it and refreshes the app's
// Application as a Git webhook would.
func (f *Flow) commit(ctx context.Context, app App, message string, edit func(root string) error) (Commit, error) {
	c, err := f.Repo.Change(ctx, message, edit)
	if err != nil {
		return Commit{}, err
	}
	f.Timeline.Note("git", "%s %s: %s", c.Short(), c.Author, c.Subject)
	if err := f.Cluster.RefreshApplication(ctx, app.Application); err != nil && !apierrors.IsNotFound(err) {
		return Commit{}, err
	}
	return c, nil
}

// Seed commits the app's folder (the original demo manifest with image, the
// stack's Prometheus, short analysis settings and write-back) and applies
// its Application.
func (f *Flow) Seed(ctx context.Context, app App, image string) (Commit, error) {
	m, err := DemoManifest(f.Env.Root, app.Name, app.Namespace, f.Env.Get("PROM_URL"), f.Short)
	if err != nil {
		return Commit{}, err
	}
	return f.SeedManifest(ctx, app, m, image)
}

// SeedManifest is Seed with the manifest m (made from DemoManifest).
func (f *Flow) SeedManifest(ctx context.Context, app App, m []byte, image string) (Commit, error) {
	m, err := SetImage(m, image)
	if err != nil {
		return Commit{}, err
	}
	msg := fmt.Sprintf("%s: add the app at %s (analysis every %s, a step every %s, outcomes written back)",
		app.Name, Tag(image), f.Short.CheckInterval, f.Short.Interval)
	c, err := f.commit(ctx, app, msg, func(root string) error {
		dir := filepath.Join(root, app.Dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "canaryapp.yaml"), m, 0o644); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(Kustomization), 0o644)
	})
	if err != nil {
		return Commit{}, err
	}
	if err := f.Cluster.ApplyApplication(ctx, app, f.Repo.URL); err != nil {
		return Commit{}, err
	}
	return c, nil
}

// editManifest commits an edit of the app's manifest.
func (f *Flow) editManifest(ctx context.Context, app App, message string, edit func([]byte) ([]byte, error)) (Commit, error) {
	return f.commit(ctx, app, message, func(root string) error {
		p := filepath.Join(root, app.Manifest())
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if b, err = edit(b); err != nil {
			return err
		}
		return os.WriteFile(p, b, 0o644)
	})
}

// Release commits image as the app's spec.image, as a person releases.
func (f *Flow) Release(ctx context.Context, app App, image string) (Commit, error) {
	return f.editManifest(ctx, app, fmt.Sprintf("%s: release %s", app.Name, Tag(image)),
		func(b []byte) ([]byte, error) { return SetImage(b, image) })
}

// MoveNamespace commits a change of the app's metadata.namespace.
func (f *Flow) MoveNamespace(ctx context.Context, app App, ns string) (Commit, error) {
	return f.editManifest(ctx, app, fmt.Sprintf("%s: move to namespace %s", app.Name, ns),
		func(b []byte) ([]byte, error) { return SetNamespace(b, ns) })
}

// GitApp reads the app's manifest from the newest commit of the branch.
func (f *Flow) GitApp(ctx context.Context, app App) (*v1.CanaryApp, error) {
	b, err := f.Repo.ReadFile(ctx, app.Manifest())
	if err != nil {
		return nil, err
	}
	return ParseCanaryApp(b)
}

// WaitSynced waits until Argo CD has synced the branch's newest commit and
// reports the app Healthy.
func (f *Flow) WaitSynced(ctx context.Context, app App, timeout time.Duration) (AppState, error) {
	var st AppState
	err := Eventually(ctx, timeout, 250*time.Millisecond, fmt.Sprintf("Argo CD to sync %s at the newest commit and report it Healthy", app.Application),
		func(ctx context.Context) (bool, string, error) {
			head, err := f.Repo.Head(ctx)
			if err != nil {
				return false, "", err
			}
			st, err = f.Cluster.Application(ctx, app.Application)
			if err != nil {
				return false, "", err
			}
			detail := fmt.Sprintf("%s at %s, %s %s (head %s) %v", st.Sync, st.ShortRevision(), st.Health, st.HealthMessage, head.Short(), st.Conditions)
			if st.Revision != head.SHA {
				// A webhook refresh may have raced the push: ask again.
				_ = f.Cluster.RefreshApplication(ctx, app.Application)
			}
			return st.Sync == "Synced" && st.Revision == head.SHA && st.Health == "Healthy", detail, nil
		})
	return st, err
}

// WaitCanaryApp polls the CanaryApp until cond holds.
func (f *Flow) WaitCanaryApp(ctx context.Context, app App, timeout time.Duration, what string, cond func(*v1.CanaryApp, Weights) bool) (*v1.CanaryApp, error) {
	var got *v1.CanaryApp
	err := Eventually(ctx, timeout, 200*time.Millisecond, fmt.Sprintf("%s/%s: %s", app.Namespace, app.Name, what),
		func(ctx context.Context) (bool, string, error) {
			a, err := f.Cluster.CanaryApp(ctx, app.Namespace, app.Name)
			if err != nil {
				return false, "", err
			}
			w, err := f.Cluster.RouteWeights(ctx, app.Namespace, app.Name)
			if err != nil {
				return false, "", err
			}
			got = a
			return cond(a, w), appLine(a, w), nil
		})
	return got, err
}

// IsStable: the app runs image with all traffic, no canary, Ready.
func IsStable(image string) func(*v1.CanaryApp, Weights) bool {
	return func(a *v1.CanaryApp, w Weights) bool {
		return a.Status.ObservedGeneration == a.Generation && a.Status.StableImage == image &&
			a.Status.CanaryImage == "" && a.Status.Phase == v1.PhaseStable &&
			meta.IsStatusConditionTrue(a.Status.Conditions, v1.ConditionReady) &&
			w.Found && w.Primary == 100 && w.Canary == 0
	}
}

// IsCanary: a canary of image takes at least minWeight percent.
func IsCanary(image string, minWeight int32) func(*v1.CanaryApp, Weights) bool {
	return func(a *v1.CanaryApp, w Weights) bool {
		return a.Status.CanaryImage == image && a.Status.CanaryWeight >= minWeight && w.Canary >= minWeight
	}
}

// HasWrittenBack: the operator decided outcome for image (the stable image
// after it) and its write-back is done with a commit.
func HasWrittenBack(outcome v1.Outcome, image string) func(*v1.CanaryApp, Weights) bool {
	return func(a *v1.CanaryApp, _ Weights) bool {
		wb := a.Status.WriteBack
		return wb != nil && wb.Outcome == outcome && wb.Image == image && !wb.Pending && wb.Commit != ""
	}
}

// RefreshAfterWriteBack refreshes the app's Application once the operator
// has pushed, as the Git server's webhook would, and again every second
// until Argo CD has compared the app with the branch's newest commit: a
// refresh was seen to go unnoticed once, leaving Argo CD at the old commit
// until its next resync half a minute later.
func (f *Flow) RefreshAfterWriteBack(ctx context.Context, app App) error {
	head, err := f.Repo.Head(ctx)
	if err != nil {
		return err
	}
	return Eventually(ctx, 90*time.Second, time.Second, fmt.Sprintf("Argo CD to compare %s with %s", app.Application, head.Short()),
		func(ctx context.Context) (bool, string, error) {
			st, err := f.Cluster.Application(ctx, app.Application)
			if err != nil {
				return false, "", err
			}
			if st.Revision == head.SHA {
				return true, "", nil
			}
			return false, "at " + st.ShortRevision(), f.Cluster.RefreshApplication(ctx, app.Application)
		})
}

// ConditionReason returns the reason of condition typ, "" when absent.
func ConditionReason(a *v1.CanaryApp, typ string) string {
	if c := meta.FindStatusCondition(a.Status.Conditions, typ); c != nil {
		return c.Reason
	}
	return ""
}

// ConditionStatus returns the status of condition typ.
func ConditionStatus(a *v1.CanaryApp, typ string) metav1.ConditionStatus {
	if c := meta.FindStatusCondition(a.Status.Conditions, typ); c != nil {
		return c.Status
	}
	return metav1.ConditionUnknown
}
