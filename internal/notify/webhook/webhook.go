// Package webhook formats notifications as a generic JSON document, for
// receivers of the admin's own (chat bridges, incident tools, scripts).
// The field names are this package's contract; a field is added, never
// renamed.
package webhook

import (
	"encoding/json"
	"time"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/notify"
)

// Type is the provider type of the admin's Secret.
const Type = "webhook"

// Format builds JSON documents.
type Format struct{}

var _ notify.Format = Format{}

// Payload is the document sent.
type Payload struct {
	Event          v1.NotificationEvent `json:"event"`
	Severity       string               `json:"severity"` // info or warning
	Reason         string               `json:"reason"`
	Message        string               `json:"message"`
	Time           time.Time            `json:"time"`
	Namespace      string               `json:"namespace"`
	Name           string               `json:"name"`
	Image          string               `json:"image,omitempty"`
	StableImage    string               `json:"stableImage,omitempty"`
	CanaryImage    string               `json:"canaryImage,omitempty"`
	CanaryWeight   int32                `json:"canaryWeight"`
	LastCheck      *Check               `json:"lastCheck,omitempty"`
	Commit         string               `json:"commit,omitempty"`
	PullRequestURL string               `json:"pullRequestURL,omitempty"`
}

// Check is the last analysis check.
type Check struct {
	Weight  int32           `json:"weight"`
	Value   string          `json:"value"`
	Verdict v1.CheckVerdict `json:"verdict"`
}

// Body implements notify.Format.
func (Format) Body(e notify.Event) ([]byte, error) {
	p := Payload{
		Event: e.Kind, Severity: "info", Reason: e.Reason, Message: e.Message, Time: e.Time.UTC(),
		Namespace: e.Namespace, Name: e.Name, Image: e.Image, StableImage: e.StableImage, CanaryImage: e.CanaryImage,
		CanaryWeight: e.Weight, Commit: e.Commit, PullRequestURL: e.PullRequestURL,
	}
	if e.Warning {
		p.Severity = "warning"
	}
	if c := e.Check; c != nil {
		p.LastCheck = &Check{Weight: c.Weight, Value: c.Value, Verdict: c.Verdict}
	}
	return json.Marshal(p)
}
