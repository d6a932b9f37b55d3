package manifest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// A render must never leave the FileSystem. kustomize would: its loader
// fetches any http(s) URL given where it expects a file (no timeout, no size
// limit, redirects followed) and clones any Git URL given where it expects a
// folder. krusty (sigs.k8s.io/kustomize/api v0.21.2) has no option to replace
// or switch off either: the loader's HTTP client and Git cloner are internal
// and set by krusty.Kustomizer.Run. So before krusty runs, every kustomization
// the render reaches is read here, and any reference that kustomize would
// load from the network (or clone with git) is refused. This walk is the
// only control; it errs towards refusing.

var (
	// gitRef is what kustomize's Git URL parser accepts
	// (api/internal/git/repospec.go): a forced git:: prefix, the ssh, http(s)
	// and file schemes, scp-style "user@host:path", and github.com without a
	// scheme; gitlab.com and bitbucket.org for good measure. And any http(s)
	// URL, whatever follows the scheme. Matched on lower-cased text, as
	// kustomize ignores case.
	gitRef = regexp.MustCompile(`^(?:git::|https?:|(?:ssh|file)://|[a-z][a-z0-9-]*@|(?:github\.com|gitlab\.com|bitbucket\.org)[/:])`)
	// schemeRef is any URL scheme (RFC 3986): kustomize fetches a file
	// whose reference parses as an http(s) URL, and whether an unknown
	// scheme would be fetched by a later version is not worth guessing.
	schemeRef = regexp.MustCompile(`^[a-z][a-z0-9+.-]*:`)
)

// isRemote says whether kustomize may load s, given as a file or folder
// reference, from outside the FileSystem.
func isRemote(s string) bool {
	v := strings.ToLower(strings.TrimSpace(s))
	if gitRef.MatchString(v) {
		return true
	}
	if strings.ContainsFunc(v, isASCIIControl) {
		// A URL with an ASCII control character does not parse
		// (net/url), so kustomize never fetches it over HTTP. Inline
		// patches and plugin configurations are multi-line text, often
		// with URLs in them, and are checked value by value instead.
		return false
	}
	return schemeRef.MatchString(v) || strings.Contains(v, "://") || strings.HasPrefix(v, "//")
}

// isASCIIControl is what net/url refuses in a URL: not the C1 controls,
// which it lets through.
func isASCIIControl(r rune) bool {
	return r < ' ' || r == 0x7f
}

// remote is isRemote for a value that may also be "key=file", the form of
// configMapGenerator and secretGenerator files.
func remote(s string) bool {
	if isRemote(s) {
		return true
	}
	_, file, ok := strings.Cut(s, "=")
	return ok && isRemote(file)
}

// kustWalk visits every kustomization a render reaches: the path's own,
// and those of the folders its resources, bases and components name,
// inside the path or not.
type kustWalk struct {
	fsys *budgetFS
	seen map[string]bool
	// visited counts the kustomizations read, which the byte budget alone
	// bounds only loosely: a tiny kustomization per folder, nested deep.
	visited int
	// docs are the YAML resource files under the path the kustomizations
	// pull in: the files an edit may change.
	docs []*sourceFile
}

// walkKustomizations checks the kustomization kf of folder dir and every
// one it reaches, and returns the YAML resource files under the render's
// path they pull in.
func walkKustomizations(fsys *budgetFS, dir string, kf *sourceFile) ([]*sourceFile, error) {
	w := &kustWalk{fsys: fsys, seen: map[string]bool{filepath.Clean(dir): true}}
	if err := w.kustomization(dir, kf); err != nil {
		return nil, err
	}
	return w.docs, nil
}

// maxKustomizations is the most kustomizations one render may reach. An
// app's overlay with its bases and components is a handful.
const maxKustomizations = 200

func (w *kustWalk) kustomization(dir string, kf *sourceFile) error {
	if w.visited++; w.visited > maxKustomizations {
		return w.fail(ErrTooLarge, kf.path, fmt.Sprintf("the render reaches more than %d kustomizations", maxKustomizations))
	}
	// The exact parse kustomize does (YAML to JSON, then case-insensitive
	// JSON field names, duplicate keys and merge keys resolved), so that
	// the fields checked are the fields kustomize acts on.
	var k types.Kustomization
	if err := k.Unmarshal(kf.data); err != nil {
		return w.fail(ErrRender, kf.path, "the kustomization is not a valid Kustomization")
	}
	if err := w.refuseRemote(kf.path, &k); err != nil {
		return err
	}
	for _, list := range [][]string{k.Resources, k.Bases, k.Components} {
		for _, res := range list {
			if err := w.resource(dir, res); err != nil {
				return err
			}
		}
	}
	for _, pl := range []struct {
		field   string
		entries []string
	}{{"generators", k.Generators}, {"transformers", k.Transformers}, {"validators", k.Validators}} {
		for i, entry := range pl.entries {
			if err := w.plugin(dir, kf.path, fmt.Sprintf("%s[%d]", pl.field, i), entry); err != nil {
				return err
			}
		}
	}
	return nil
}

// refuseRemote checks every field of k that names a file or folder.
func (w *kustWalk) refuseRemote(file string, k *types.Kustomization) error {
	type ref struct{ field, value string }
	var refs []ref
	list := func(field string, values []string) {
		for i, v := range values {
			refs = append(refs, ref{fmt.Sprintf("%s[%d]", field, i), v})
		}
	}
	list("resources", k.Resources)
	list("bases", k.Bases)
	list("components", k.Components)
	list("crds", k.Crds)
	list("configurations", k.Configurations)
	list("generators", k.Generators)
	list("transformers", k.Transformers)
	list("validators", k.Validators)
	for i, p := range k.Patches {
		refs = append(refs, ref{fmt.Sprintf("patches[%d].path", i), p.Path})
	}
	for i, p := range k.PatchesStrategicMerge {
		refs = append(refs, ref{fmt.Sprintf("patchesStrategicMerge[%d]", i), string(p)})
	}
	for i, p := range k.PatchesJson6902 {
		refs = append(refs, ref{fmt.Sprintf("patchesJson6902[%d].path", i), p.Path})
	}
	for i, r := range k.Replacements {
		refs = append(refs, ref{fmt.Sprintf("replacements[%d].path", i), r.Path})
	}
	kv := func(field string, i int, s types.KvPairSources) {
		list(fmt.Sprintf("%s[%d].files", field, i), s.FileSources)
		list(fmt.Sprintf("%s[%d].envs", field, i), s.EnvSources)
		refs = append(refs, ref{fmt.Sprintf("%s[%d].env", field, i), s.EnvSource})
	}
	for i, g := range k.ConfigMapGenerator {
		kv("configMapGenerator", i, g.KvPairSources)
	}
	for i, g := range k.SecretGenerator {
		kv("secretGenerator", i, g.KvPairSources)
	}
	for _, key := range slices.Sorted(maps.Keys(k.OpenAPI)) {
		refs = append(refs, ref{"openapi." + key, k.OpenAPI[key]})
	}
	for _, r := range refs {
		if remote(r.value) {
			return w.fail(ErrRemoteReference, file, r.field+": remote resources and files are never fetched; vendor them into the repository")
		}
	}
	// A chart is fetched from its repository and rendered by running helm.
	// kustomize runs helm only when its options enable it, and they do not;
	// refusing the fields says so plainly instead of failing inside helm.
	for _, h := range []struct {
		field string
		set   bool
	}{{"helmCharts", len(k.HelmCharts) > 0}, {"helmGlobals", k.HelmGlobals != nil}, {"helmChartInflationGenerator", len(k.HelmChartInflationGenerator) > 0}} {
		if h.set {
			return w.fail(ErrRemoteReference, file, h.field+": Helm charts are never rendered here; commit the rendered chart instead")
		}
	}
	return nil
}

// resource follows a resource, base or component: a folder's kustomization
// is walked, a YAML file under the path is kept as a possible source of the
// CanaryApp. Remote references were refused before.
func (w *kustWalk) resource(dir, res string) error {
	if filepath.IsAbs(res) {
		return nil // kustomize loads no folder by an absolute path
	}
	p := filepath.Join(dir, res)
	if w.seen[p] {
		return nil
	}
	w.seen[p] = true
	switch {
	case w.fsys.IsDir(p):
		kps := kustomizationFiles(w.fsys, p)
		switch len(kps) {
		case 0:
			return nil // kustomize fails on it, having loaded nothing
		case 1:
		default:
			return w.fail(ErrRender, p, "the folder holds more than one kustomization file")
		}
		sub, err := readSource(w.fsys, kps[0])
		if err != nil {
			return err
		}
		return w.kustomization(p, sub)
	case isYAMLFile(p) && w.fsys.Exists(p):
		if _, outside := w.fsys.locate(p); outside {
			return nil // a base outside the path: rendered, never edited
		}
		f, err := readSource(w.fsys, p)
		if err != nil {
			return err
		}
		w.docs = append(w.docs, f)
	}
	return nil
}

// plugin checks a generators, transformers or validators entry: an inline
// plugin configuration, or a file that holds some. kustomize loads the files
// a builtin plugin's configuration names (a PatchTransformer's path, a
// ConfigMapGenerator's files, ...), in fields of many kinds, so every value
// in a configuration is checked, not only the fields known today.
func (w *kustWalk) plugin(dir, file, field, entry string) error {
	if configIsRemote([]byte(entry)) {
		return w.fail(ErrRemoteReference, file, field+": a plugin configuration that loads remote files is never run; vendor them into the repository")
	}
	if strings.Contains(entry, "\n") {
		return nil // inline, checked above
	}
	p := entry
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	switch {
	case w.fsys.IsDir(p):
		// The configurations would be a kustomization's output, which its
		// own patches and replacements can assemble from pieces that are
		// not URLs each; only configurations written out are checked.
		return w.fail(ErrRender, file, field+": plugin configurations must be files or inline, not a folder")
	case w.fsys.Exists(p):
		data, err := w.fsys.ReadFile(p)
		if err != nil {
			return err
		}
		if configIsRemote(data) {
			return w.fail(ErrRemoteReference, file, field+": the plugin configuration it names loads remote files; vendor them into the repository")
		}
	}
	return nil
}

// configIsRemote says whether any value in the plugin configurations of
// data is a remote reference, or a configuration is a Helm chart.
func configIsRemote(data []byte) bool {
	for _, doc := range yamlViews(data) {
		if len(doc.Content) > 0 {
			if kind := mapValue(doc.Content[0], "kind"); kind != nil && strings.EqualFold(kind.Value, "HelmChartInflationGenerator") {
				return true
			}
		}
		if scalars(doc, remote) {
			return true
		}
	}
	return false
}

// fail is an error about the kustomization file (or folder) at p, which is
// named only when it lies under the render's path.
func (w *kustWalk) fail(kind error, p, detail string) error {
	where, outside := w.fsys.locate(p)
	if outside {
		detail = "a kustomization outside this path: " + detail
	}
	return &Error{Kind: kind, Path: where, Detail: detail}
}

// yamlViews parses data both ways expandedNodes counts it, for checks that
// must see every value any reader may see. Documents that do not parse are
// left out: no reader gets values from them.
func yamlViews(data []byte) []*yaml.Node {
	var out []*yaml.Node
	read := func(b []byte) {
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc yaml.Node
			if err := dec.Decode(&doc); err != nil {
				return
			}
			out = append(out, &doc)
		}
	}
	read(data)
	if docs := kyamlDocuments(data); !sameAsWhole(data, docs) {
		for _, doc := range docs {
			read([]byte(doc))
		}
	}
	return out
}

// scalars calls fn with every scalar value under n, as text and, for a
// !!binary scalar, decoded too: YAML-to-JSON conversion decodes it, so a
// base64 value reaches kustomize as the text it encodes. Aliases are not
// followed; their anchors are visited where they are defined.
func scalars(n *yaml.Node, fn func(string) bool) bool {
	if n == nil {
		return false
	}
	if n.Kind == yaml.ScalarNode {
		if fn(n.Value) {
			return true
		}
		if n.ShortTag() == "!!binary" {
			if b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(n.Value), "")); err == nil && fn(string(b)) {
				return true
			}
		}
		return false
	}
	for _, c := range n.Content {
		if scalars(c, fn) {
			return true
		}
	}
	return false
}
