package main

import (
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/types"
)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseImage(t *testing.T) {
	for ref, want := range map[string]types.Image{
		"canaryop:dev":                        {Name: imageName, NewName: "canaryop", NewTag: "dev"},
		"ghcr.io/atzedevries/canaryop:v0.1.0": {Name: imageName, NewName: "ghcr.io/atzedevries/canaryop", NewTag: "v0.1.0"},
		"localhost:5000/canaryop:v1":          {Name: imageName, NewName: "localhost:5000/canaryop", NewTag: "v1"},
		"localhost:5000/canaryop@" + digest:   {Name: imageName, NewName: "localhost:5000/canaryop", Digest: digest},
		"ghcr.io/a/canaryop:v0.1.0@" + digest: {Name: imageName, NewName: "ghcr.io/a/canaryop", NewTag: "v0.1.0", Digest: digest},
	} {
		got, err := parseImage(ref)
		if err != nil || got.NewName != want.NewName || got.NewTag != want.NewTag || got.Digest != want.Digest || got.Name != want.Name {
			t.Errorf("parseImage(%q) = %+v, %v; want %+v", ref, got, err, want)
		}
	}
	for _, ref := range []string{"localhost:5000/canaryop", "canaryop@sha256:abc", ":v1", "canaryop:v1@latest"} {
		if got, err := parseImage(ref); err == nil {
			t.Errorf("parseImage(%q) = %+v, want an error", ref, got)
		}
	}
}

func TestRenderSetsTheManagerImage(t *testing.T) {
	out, err := render("../../config/default", "ghcr.io/atzedevries/canaryop:v0.1.0@"+digest)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), "image: ghcr.io/atzedevries/canaryop:v0.1.0@"+digest); n != 1 {
		t.Errorf("the pinned image appears %d times, want once (the manager):\n%s", n, out)
	}
	if strings.Contains(string(out), "canaryop:dev") {
		t.Error("the base's canaryop:dev is left")
	}
}
