package main

import (
	"net/http"
	"strings"
)

// The two paths of the original go-status-code-server.
const (
	PathHello    = "/hello"
	PathNotHello = "/nothello"
)

// ImageVersion is the tag of an image reference, which the demo uses as the
// version of the app (Istio's destination_version): "v3" for
// "atzedevries/go-status-code-server:v3". A digest is ignored, and an image
// without a tag is "latest", as a container runtime would pull it.
func ImageVersion(image string) string {
	ref, _, _ := strings.Cut(image, "@")
	// A ':' before the last '/' belongs to a registry host with a port.
	lastSlash := strings.LastIndex(ref, "/")
	if i := strings.LastIndex(ref, ":"); i > lastSlash && i < len(ref)-1 {
		return ref[i+1:]
	}
	return "latest"
}

// Responder decides the status code an image version answers to a path.
type Responder struct {
	failing map[string]bool
}

// NewResponder returns a Responder for which the given versions answer 500
// to /nothello.
func NewResponder(failingVersions []string) Responder {
	r := Responder{failing: make(map[string]bool, len(failingVersions))}
	for _, v := range failingVersions {
		r.failing[v] = true
	}
	return r
}

// Respond is the status code version answers to a GET of path: /hello is
// 200 everywhere, /nothello is 500 in a failing version and 200 in any
// other, and an unknown path is 404 as Go's ServeMux answers it.
func (r Responder) Respond(version, path string) int {
	switch path {
	case PathHello:
		return http.StatusOK
	case PathNotHello:
		if r.failing[version] {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	default:
		return http.StatusNotFound
	}
}
