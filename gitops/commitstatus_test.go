package gitops

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/gitops/argocd"
	"github.com/atzedevries/canaryop/gitops/credentials"
	"github.com/atzedevries/canaryop/gitops/github"
	"github.com/atzedevries/canaryop/gitops/gitrepo"
)

type stubDiscoverer struct {
	src argocd.Source
	err error
}

func (d stubDiscoverer) Discover(context.Context, *v1.CanaryApp) (argocd.Source, error) {
	return d.src, d.err
}

type recordedStatuses struct{ calls []string }

func (r *recordedStatuses) SetStatus(_ context.Context, repo github.Repo, sha string, s github.Status) error {
	r.calls = append(r.calls, repo.String()+"@"+sha+" "+s.State)
	return nil
}

const (
	synced = "1111111111111111111111111111111111111111"
	older  = "0000000000000000000000000000000000000000"
)

func statusWriter(t *testing.T, d Discoverer, secretData map[string]string) (*GitWriter, *recordedStatuses) {
	t.Helper()
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	data := map[string][]byte{"url": []byte("https://github.com/acme/"), "password": []byte("ghp_token")}
	for k, v := range secretData {
		if v == "" {
			delete(data, k)
			continue
		}
		data[k] = []byte(v)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "canaryop-system", Name: "acme", Labels: map[string]string{credentials.LabelKey: "true"}}, Data: data}
	cache, err := gitrepo.New(gitrepo.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordedStatuses{}
	w, err := New(Options{
		Cache: cache, Discoverer: d,
		Credentials:    credentials.New(fake.NewClientBuilder().WithScheme(scheme).WithObjects(secret).Build(), "canaryop-system"),
		CommitStatuses: func(credentials.Creds) (github.CommitStatuses, error) { return rec, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return w, rec
}

func provenSource() argocd.Source {
	return argocd.Source{Application: "argocd/shop", RepoURL: "https://github.com/acme/apps.git", Branch: "main", Path: "apps/shop",
		DestinationNamespace: "shop", Revision: synced, SyncedRevisions: []string{synced, older}}
}

func TestCommitStatusOnTheProvenRepository(t *testing.T) {
	w, rec := statusWriter(t, stubDiscoverer{src: provenSource()}, nil)
	app := &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
	ch, err := w.Report(context.Background(), app, "", github.Status{State: "pending", Context: "c"})
	if err != nil || ch != (Change{Revision: synced, Repository: "acme/apps"}) {
		t.Fatalf("Report on the synced commit = %+v, %v", ch, err)
	}
	if _, err := w.Report(context.Background(), app, older, github.Status{State: "pending", Context: "c"}); err != nil {
		t.Fatalf("Report(%s): %v", older, err)
	}
	_, err = w.Report(context.Background(), app, strings.Repeat("e", 40), github.Status{State: "success", Context: "c"})
	if !errors.Is(err, ErrNotPermitted) || !IsStalled(err) {
		t.Errorf("a commit the Application never synced: err = %v, want a stalled ErrNotPermitted", err)
	}
	if want := []string{"acme/apps@" + synced + " pending", "acme/apps@" + older + " pending"}; strings.Join(rec.calls, ",") != strings.Join(want, ",") {
		t.Errorf("posted %v, want %v", rec.calls, want)
	}
}

func TestCommitStatusRefusals(t *testing.T) {
	app := &v1.CanaryApp{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
	other := provenSource()
	other.RepoURL = "https://gitlab.example.com/acme/apps.git"
	noRev := provenSource()
	noRev.Revision = ""
	cases := []struct {
		name    string
		d       Discoverer
		secret  map[string]string
		none    bool // ErrNoCommitStatus
		stalled bool // ErrNotPermitted
	}{
		{"not managed by Argo CD", stubDiscoverer{err: argocd.ErrNotManaged}, nil, true, false},
		{"Application does not prove the app", stubDiscoverer{err: argocd.ErrNotProven}, nil, false, true},
		{"no synced commit", stubDiscoverer{src: noRev}, nil, true, false},
		{"no credential for the repository", stubDiscoverer{src: other}, nil, true, false},
		{"credential without a GitHub token", stubDiscoverer{src: provenSource()}, map[string]string{"password": "", "sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----", "knownHosts": "github.com ssh-ed25519 AAAA"}, true, false},
		{"write modes without CommitStatus", stubDiscoverer{src: provenSource()}, map[string]string{"writeModes": "Commit,PullRequest"}, false, true},
		{"credential scoped to other namespaces", stubDiscoverer{src: provenSource()}, map[string]string{"namespaces": "team-*"}, false, true},
	}
	for _, c := range cases {
		w, rec := statusWriter(t, c.d, c.secret)
		_, err := w.Report(context.Background(), app, "", github.Status{State: "pending", Context: "c"})
		if errors.Is(err, ErrNoCommitStatus) != c.none || (errors.Is(err, ErrNotPermitted) && IsStalled(err)) != c.stalled {
			t.Errorf("%s: err = %v", c.name, err)
		}
		if err == nil {
			t.Errorf("%s: no error", c.name)
		}
		if len(rec.calls) != 0 {
			t.Errorf("%s: posted %v", c.name, rec.calls)
		}
	}
}
