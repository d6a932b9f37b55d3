package manifest

import (
	"bytes"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// FuzzApply feeds arbitrary manifests and image strings to Apply. It must
// never panic, only return the package's errors, and when it succeeds the
// manifest must render with the change, and a second Apply must be a no-op.
func FuzzApply(f *testing.F) {
	seeds := []string{
		sampleHead + service,
		kustApp,
		"apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata: {name: canaryapp-sample}\nspec: {image: a}\n",
		"apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: canaryapp-sample\nspec:\n  image: &x a:1\n  failedImages: *x\n",
		"apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: canaryapp-sample\nspec:\n  failedImages:\n  -\n    image: a\n  image: !!str a:1\n",
		"apiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: canaryapp-sample\nspec:\n  image: |\n    a:1\n",
		"---\n---\napiVersion: canary.atze.io/v1\nkind: CanaryApp\nmetadata:\n  name: canaryapp-sample\nspec:\n- 1\n",
		"apiVersion: canary.atze.io/v1\r\nkind: CanaryApp\r\nmetadata:\r\n  name: canaryapp-sample\r\nspec:\r\n  image: \"a:\\u0031\"",
	}
	for _, s := range seeds {
		f.Add(s, "ghcr.io/atze/app:v2", "ghcr.io/atze/app:v3", "reason: with \"quotes\"\n")
		f.Add(s, "localhost:5000/app", "app@sha256:"+strings.Repeat("0", 64), "")
	}
	f.Fuzz(func(t *testing.T, manifest, image, failed, reason string) {
		fsys := filesys.MakeFsInMemory()
		if err := fsys.WriteFile("r/app.yaml", []byte(manifest)); err != nil {
			t.Fatal(err)
		}
		c := Change{Image: image, FailedImage: &v1.FailedImage{Image: failed, Reason: reason, Time: &failedT}}
		res, err := Apply(fsys, "r/app.yaml", app, c)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			if data, _ := fsys.ReadFile("r/app.yaml"); string(data) != manifest {
				t.Fatalf("Apply failed (%v) but changed the file", err)
			}
			return
		}
		r, err := Render(fsys, "r/app.yaml", app)
		if err != nil {
			t.Fatalf("Apply succeeded (%+v) but Render fails: %v", res, err)
		}
		if r.Image != image || !slices.Contains(r.FailedImages, failed) {
			t.Fatalf("rendered %+v, want image %q and record %q", r, image, failed)
		}
		again, err := Apply(fsys, "r/app.yaml", app, c)
		if err != nil || len(again.Files) != 0 {
			t.Fatalf("second Apply = %+v, %v; want a no-op", again, err)
		}
	})
}

// kustomizeLoadsRemotely is when kustomize v0.21.2 may load s from outside
// the FileSystem: as a file, when s parses as an http(s) URL
// (api/internal/loader.IsRemoteFile); as a folder, when its Git URL parser
// sees a scheme, a user or github.com (api/internal/git/repospec.go,
// extractHost, which accepts fewer strings than this, never more).
func kustomizeLoadsRemotely(s string) bool {
	if u, err := url.Parse(s); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return true
	}
	hasPrefix := func(s, p string) bool { return len(s) >= len(p) && strings.ToLower(s[:len(p)]) == p }
	n := s
	if hasPrefix(n, "git::") {
		n = n[len("git::"):]
	}
	for _, p := range []string{"ssh://", "https://", "http://", "file://", "github.com/", "github.com:"} {
		if hasPrefix(n, p) {
			return true
		}
	}
	return scpUser.MatchString(n)
}

var scpUser = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]*@`)

// FuzzIsRemote checks the remote-reference detector against kustomize's own
// rules: whatever kustomize would fetch or clone, alone or as the file of a
// "key=file" source, is refused.
func FuzzIsRemote(f *testing.F) {
	for _, s := range []string{
		"https://example.com/x.yaml", "HTTP://127.0.0.1:1/x", "git::https://h/r.git", "GIT::ssh://h/r",
		"git@github.com:o/r.git", "bob@h/o/r", "github.com/o/r//b?ref=v1", "GitHub.com:o/r", "file:///etc/r.git",
		"gh:o/r", "//h/x", "../base", "base", "a=b.txt", "k=https://h/x", " https://h/x", "https://h/x\n",
		"apiVersion: builtin\nkind: PatchTransformer\npath: p.yaml\n", "a\u212aa@h/x", "https:x", "c:\\x", "http://h/\u0085",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if kustomizeLoadsRemotely(s) && !isRemote(s) {
			t.Fatalf("kustomize loads %q remotely, isRemote says no", s)
		}
		if !strings.Contains(s, "=") && kustomizeLoadsRemotely(s) && !remote("key="+s) {
			t.Fatalf("kustomize loads the file of %q remotely, remote says no", "key="+s)
		}
	})
}

// FuzzExpandedNodes checks the alias budget against what kustomize builds:
// whenever expandedNodes lets YAML through, kyaml's ByteReader with
// AnchorsAweigh (the reader kustomize uses) builds at most that many nodes,
// and a self-referencing alias (which would never finish) is always caught.
func FuzzExpandedNodes(f *testing.F) {
	for _, s := range []string{
		laughs,
		"a: &a [1, *a]\n",
		"a: &a {x: 1}\nb:\n  <<: *a\n  y: 2\n",
		"a: &a {x: 1}\nb:\n  <<: [*a, {z: 3}]\n",
		"k: |\n  x\n---\nb: &b [1,2]\nc: [*b, *b]\n",
		"- &x [*x]\n",
		sampleHead + service,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		n, cyclic := expandedNodes(data)
		if cyclic || n > maxNodes {
			return
		}
		nodes, err := (&kio.ByteReader{Reader: bytes.NewReader(data), OmitReaderAnnotations: true, AnchorsAweigh: true}).Read()
		if err != nil {
			return
		}
		built := 0
		for _, rn := range nodes {
			built += treeSize(rn.YNode())
		}
		if built > n {
			t.Fatalf("kyaml built %d nodes, the budget counted %d:\n%s", built, n, data)
		}
	})
}

// treeSize counts the nodes under n, a node reached twice twice.
func treeSize(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	s := 1
	for _, c := range n.Content {
		s += treeSize(c)
	}
	return s
}
