package manifest

import (
	"regexp"
	"strings"

	"github.com/atzedevries/canaryop/internal/safetext"
)

// The messages of the YAML parser and of kustomize quote what they read:
// values, keys, whole objects, and paths anywhere in the repository. They
// never reach an Error; these functions say what went wrong in words of
// this package.

// quoted is a quoted part of a YAML parser message longer than the one
// character of the punctuation the parser quotes ("expected ',' or ']'"):
// an anchor's name.
var quoted = regexp.MustCompile("'[^']{2,}'|\"[^\"]{2,}\"|`[^`]{2,}`")

// yamlProblem is a YAML parser error without the text it quotes. The
// parser's own messages are fixed phrases with a line number.
func yamlProblem(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return safetext.Truncate(quoted.ReplaceAllString(msg, "…"), 200)
}

// kustomizeProblems map a phrase of kustomize's error to what it means, the
// most specific first. kustomize wraps errors in errors, so one message may
// hold several of these.
var kustomizeProblems = []struct{ match, say string }{
	{"already registered id", "two resources have the same kind, name and namespace (may not add resource with an already registered id)"},
	{"Found multiple kustomization files", "a folder holds more than one kustomization file"},
	{"cycle detected", "the kustomizations include each other in a cycle"},
	{"is not in or below", "a file outside the kustomization's folder is named; kustomize loads files only from a kustomization's folder and below"},
	{"must resolve to a file", "a folder is named where a file is expected"},
	{"unable to find one of", "a folder named as a resource has no kustomization file"},
	{"MalformedYAMLError", "a file it reads is not valid YAML"},
	{"invalid Kustomization", "a kustomization is not a valid Kustomization"},
	{"kustomization.yaml is empty", "a kustomization is empty"},
	{"missing metadata.name", "a resource has no metadata.name"},
	{"missing Resource metadata", "a resource has no apiVersion, kind or metadata"},
	{"failed to find unique target for patch", "a patch matches no resource, or more than one"},
	{"no matches for", "a patch, replacement or reference matches no resource"},
	{"nothing selected by", "a replacement selects no resource"},
	{"is missing for replacement source", "a replacement's source has no such field"},
	{"unable to find field", "a replacement names a field that a resource does not have"},
	{"does not exist", "a file or folder it names does not exist"},
	{"no such file or directory", "a file or folder it names does not exist"},
	{"must specify --enable-helm", "Helm charts are not rendered"},
	{"plugin", "a plugin that is not a builtin is named; plugins are not run"},
}

// kustomizeProblem says in fixed words why a kustomize build failed.
func kustomizeProblem(err error) string {
	msg := err.Error()
	for _, p := range kustomizeProblems {
		if strings.Contains(msg, p.match) {
			return p.say
		}
	}
	return "run kustomize build on the path to see why"
}
