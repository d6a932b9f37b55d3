package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/atzedevries/canaryop/controllers"
	"github.com/atzedevries/canaryop/gitops"
	"github.com/atzedevries/canaryop/gitops/argocd"
	"github.com/atzedevries/canaryop/gitops/credentials"
	"github.com/atzedevries/canaryop/gitops/gitrepo"
)

// gitOptions are the platform admin's settings for Git write-back. Where an
// app may write is never the author's word alone: the managing Argo CD
// Application proves it, or the admin's credential Secret scopes it to the
// app's namespace (package gitops/credentials).
type gitOptions struct {
	enabled         bool
	commitStatuses  bool
	cacheDir        string
	authorName      string
	authorEmail     string
	credentialsNS   string
	argocdNamespace string
	argocdAppNS     string
	signingKeyFile  string
	passphraseFile  string
	concurrency     int
	perCommit       int
	timeout         time.Duration
	pullRequestPoll time.Duration
	maxRepoSize     resource.Quantity
	maxCacheSize    resource.Quantity
}

func (o *gitOptions) bind(fs *flag.FlagSet) {
	fs.BoolVar(&o.enabled, "git-writeback", true, "Write canary outcomes back to Git for CanaryApps with spec.gitops.")
	fs.BoolVar(&o.commitStatuses, "commit-statuses", true, "Report each canary's verdict as a GitHub commit status (canaryop/canary/<namespace>/<name>) on the commit of its change, for apps an Argo CD Application manages whose credential Secret has a GitHub token and allows the CommitStatus write mode.")
	fs.StringVar(&o.cacheDir, "git-cache-dir", filepath.Join(os.TempDir(), "canaryop-git"), "Directory of the cached bare clones, one per repository.")
	fs.StringVar(&o.authorName, "git-author-name", gitops.DefaultAuthor.Name, "Author name of write-back commits.")
	fs.StringVar(&o.authorEmail, "git-author-email", gitops.DefaultAuthor.Email, "Author email of write-back commits.")
	fs.StringVar(&o.credentialsNS, "git-credentials-namespace", "", "Namespace of the admin's Secrets: credentials (labels canary.atze.io/git-credentials=true and canary.atze.io/prometheus-credentials=true), notification providers (canary.atze.io/notification-provider=true) and webhook targets (canary.atze.io/webhook=true). Default: $POD_NAMESPACE, else canaryop-system.")
	fs.StringVar(&o.argocdNamespace, "argocd-namespace", argocd.DefaultNamespace, "Namespace of the Argo CD Applications that prove where a CanaryApp's manifest lives.")
	fs.StringVar(&o.argocdAppNS, "argocd-application-namespaces", "", "Comma-separated further namespaces whose Argo CD Applications (apps in any namespace) may prove a CanaryApp's location.")
	o.maxRepoSize, o.maxCacheSize = resource.MustParse("512Mi"), resource.MustParse("2Gi")
	fs.Var(quantityFlag{&o.maxRepoSize}, "git-max-repo-size", "Largest clone of one repository (e.g. 512Mi); a fetch beyond it is refused and the clone removed.")
	fs.Var(quantityFlag{&o.maxCacheSize}, "git-max-cache-size", "Bound on all cached clones together (e.g. 2Gi); least recently used clones are evicted. Keep the cache volume at least this plus --git-max-repo-size.")
	fs.IntVar(&o.concurrency, "write-back-concurrency", controllers.DefaultWriteBackConcurrency, "Git write-backs run at once, in a worker pool apart from the canary analysis; write-backs to one branch wait for each other and share commits.")
	fs.IntVar(&o.perCommit, "git-max-outcomes-per-commit", gitops.DefaultMaxOutcomesPerCommit, "Most outcomes (commit mode) of one repository branch that share one commit when they wait at the same time; 1: one commit per outcome.")
	fs.DurationVar(&o.timeout, "write-back-timeout", 3*time.Minute, "Deadline of one write-back attempt (fetch, edit, push, pull request).")
	fs.DurationVar(&o.pullRequestPoll, "pull-request-poll-interval", time.Minute, "How often an open write-back or approval pull request is asked for its state (one GitHub token serves every app: about 60 requests an hour per open pull request at 1m).")
	fs.StringVar(&o.signingKeyFile, "git-signing-key-file", "", "ASCII-armored OpenPGP private key (e.g. a mounted Secret) to sign write-back commits with; empty: unsigned.")
	fs.StringVar(&o.passphraseFile, "git-signing-passphrase-file", "", "File holding the passphrase of --git-signing-key-file, if it is encrypted.")
}

// writer builds the Git writer, which also reports commit statuses; nil
// when write-back is disabled. Secrets are
// read from the manager's cache, which holds the operator's namespace only;
// Applications through the API reader (no cluster-wide watch), only when an
// outcome is written.
func (o *gitOptions) writer(mgr ctrl.Manager) (*gitops.GitWriter, error) {
	if !o.enabled {
		return nil, nil
	}
	ns := o.namespace()
	cache, err := gitrepo.New(gitrepo.Options{Dir: o.cacheDir, MaxRepoSize: o.maxRepoSize.Value(), MaxCacheSize: o.maxCacheSize.Value()})
	if err != nil {
		return nil, fmt.Errorf("git cache in %s: %w", o.cacheDir, err)
	}
	signer, err := o.signer()
	if err != nil {
		return nil, err
	}
	w, err := gitops.New(gitops.Options{
		Cache:       cache,
		Credentials: credentials.New(mgr.GetClient(), ns),
		Discoverer:  argocd.New(mgr.GetAPIReader(), o.argocdNamespace, strings.Split(o.argocdAppNS, ",")...),
		Author:      gitrepo.Author{Name: o.authorName, Email: o.authorEmail},
		Signer:      signer,
		// Coalesced commits: BenchmarkSimultaneousOutcomes, BENCHMARKS.md.
		MaxOutcomesPerCommit: o.perCommit,
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// quantityFlag reads a size such as 512Mi.
type quantityFlag struct{ q *resource.Quantity }

func (f quantityFlag) String() string {
	if f.q == nil {
		return ""
	}
	return f.q.String()
}

func (f quantityFlag) Set(s string) error {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return err
	}
	if q.Sign() <= 0 {
		return fmt.Errorf("%s: a size must be positive", s)
	}
	*f.q = q
	return nil
}

// namespace is where the admin's credential Secrets (Git and Prometheus)
// live: the operator's own namespace unless a flag says otherwise.
func (o *gitOptions) namespace() string {
	if o.credentialsNS != "" {
		return o.credentialsNS
	}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "canaryop-system"
}

// signer reads the commit signing key. Errors name the file, never its
// content.
func (o *gitOptions) signer() (gitrepo.Signer, error) {
	if o.signingKeyFile == "" {
		return nil, nil
	}
	key, err := os.ReadFile(o.signingKeyFile)
	if err != nil {
		return nil, fmt.Errorf("reading the signing key: %w", err)
	}
	var passphrase []byte
	if o.passphraseFile != "" {
		if passphrase, err = os.ReadFile(o.passphraseFile); err != nil {
			return nil, fmt.Errorf("reading the signing key passphrase: %w", err)
		}
		passphrase = bytes.TrimRight(passphrase, "\r\n")
	}
	s, err := gitrepo.OpenPGPSigner(key, passphrase)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", o.signingKeyFile, err)
	}
	return s, nil
}
