// Package examples holds no code. Its folders are manifests a person applies
// (see each file's header); its tests apply them to a real API server with
// kubectl, the way the README tells a person to.
package examples
