package controllers_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/testenv"
)

// TestValidationAcceptsDocumentedSpecs applies, on the API server, every
// value the README's API reference documents as valid: a validation rule
// that rejects good input (as the stepWeights rule did for every list) is as
// much a bug as one that lets bad input through.
func TestValidationAcceptsDocumentedSpecs(t *testing.T) {
	ns := env.NewNamespace(t)
	cases := []struct {
		name   string
		mutate func(*v1.CanaryApp)
	}{
		{"no analysis", func(a *v1.CanaryApp) { a.Spec.Analysis = nil }},
		{"step weights 10 20 50", func(a *v1.CanaryApp) {
			a.Spec.Analysis.StepWeight = nil
			a.Spec.Analysis.StepWeights = []int32{10, 20, 50}
		}},
		{"step weights 50", func(a *v1.CanaryApp) { a.Spec.Analysis.StepWeight = nil; a.Spec.Analysis.StepWeights = []int32{50} }},
		{"step weights 1 to 100", func(a *v1.CanaryApp) {
			a.Spec.Analysis.StepWeight = nil
			a.Spec.Analysis.StepWeights = nil
			for w := int32(1); w <= 100; w++ {
				a.Spec.Analysis.StepWeights = append(a.Spec.Analysis.StepWeights, w)
			}
		}},
		{"step weights reaching promotion", func(a *v1.CanaryApp) {
			a.Spec.Analysis.StepWeight = nil
			a.Spec.Analysis.StepWeights = []int32{5, 30, 80}
			a.Spec.Analysis.PromotionWeight = ptr(int32(80))
		}},
		{"bounds", func(a *v1.CanaryApp) {
			a.Spec.ImageListenPort, a.Spec.Replicas, a.Spec.TestReplicas = 65535, 1000, 1000
			a.Spec.Analysis = &v1.AnalysisSpec{
				Interval: &metav1.Duration{Duration: 24 * time.Hour}, CheckInterval: &metav1.Duration{Duration: time.Hour},
				StepWeight: ptr(int32(100)), PromotionWeight: ptr(int32(100)), FailureThreshold: ptr(int32(100)),
				CanaryReadyTimeout: &metav1.Duration{Duration: 24 * time.Hour}, OnQueryError: v1.QueryErrorFail,
			}
		}},
		{"gateways and hosts", func(a *v1.CanaryApp) {
			a.Spec.Gateways = []string{"istio-system/ingressgateway", "shop-gateway"}
			a.Spec.Hosts = []string{"*", "shop.example.com", "*.example.com"}
		}},
		{"gitops", func(a *v1.CanaryApp) {
			a.Spec.GitOps = &v1.GitOpsSpec{RepoURL: "https://github.com/acme/deploy.git", Branch: "main", Path: "apps/shop",
				Promotion: v1.WritePullRequest, Rollback: v1.WriteCommit}
		}},
		{"gitops scp-like", func(a *v1.CanaryApp) {
			a.Spec.GitOps = &v1.GitOpsSpec{RepoURL: "git@github.com:acme/deploy.git", Rollback: v1.WriteNone}
		}},
		{"failed images", func(a *v1.CanaryApp) {
			a.Spec.FailedImages = []v1.FailedImage{{Image: image("v3"), Reason: "AnalysisFailed", Time: &metav1.Time{Time: time.Now().Truncate(time.Second)}}}
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			app := sample(ns, "http://prometheus.istio-system.svc:9090")
			app.Name = fmt.Sprintf("valid-%d", i)
			tc.mutate(app)
			g.Expect(env.Client.Create(context.Background(), app, client.FieldValidation("Strict"))).To(Succeed())
		})
	}
}

// TestReadmeExamplesApply applies every CanaryApp in a yaml block of the
// README, unchanged but for its namespace, with strict field validation: an
// example that a new user copies must be accepted as written.
func TestReadmeExamplesApply(t *testing.T) {
	g := NewWithT(t)
	root, err := testenv.RepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	g.Expect(err).NotTo(HaveOccurred())
	docs := readmeCanaryApps(readme)
	g.Expect(len(docs)).To(BeNumerically(">=", 2), "the README's API reference has examples")
	// The original sample too, as the repository ships it.
	sampleFile, err := os.ReadFile(filepath.Join(root, "config", "samples", "canary_v1_canaryapp.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	docs = append(docs, readmeCanaryApps([]byte("```yaml\n"+string(sampleFile)+"```"))...)
	for i, doc := range docs {
		u := &unstructured.Unstructured{}
		g.Expect(yaml.Unmarshal(doc, &u.Object)).To(Succeed(), "example %d", i)
		u.SetNamespace(env.NewNamespace(t))
		g.Expect(env.Client.Create(context.Background(), u, client.FieldValidation("Strict"))).To(Succeed(), "example %d (%s):\n%s", i, u.GetName(), doc)
	}
}

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// readmeCanaryApps returns the documents of the README's yaml blocks that
// are CanaryApps.
func readmeCanaryApps(readme []byte) [][]byte {
	var out [][]byte
	for _, m := range yamlBlock.FindAllSubmatch(readme, -1) {
		for doc := range bytes.SplitSeq(m[1], []byte("\n---\n")) {
			if strings.Contains(string(doc), "kind: CanaryApp\n") {
				out = append(out, doc)
			}
		}
	}
	return out
}
