// Package teams formats notifications for Microsoft Teams: a message with
// one Adaptive Card, which both a Teams Workflows webhook ("Post to a
// channel when a webhook request is received") and a classic incoming
// webhook accept.
package teams

import (
	"encoding/json"

	"github.com/atzedevries/canaryop/internal/notify"
)

// Type is the provider type of the admin's Secret.
const Type = "teams"

// Format builds Teams messages.
type Format struct{}

var _ notify.Format = Format{}

type fact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

type element struct {
	Type   string `json:"type"`
	Text   string `json:"text,omitempty"`
	Weight string `json:"weight,omitempty"`
	Size   string `json:"size,omitempty"`
	Color  string `json:"color,omitempty"`
	Wrap   bool   `json:"wrap,omitempty"`
	Facts  []fact `json:"facts,omitempty"`
}

type card struct {
	Schema  string    `json:"$schema"`
	Type    string    `json:"type"`
	Version string    `json:"version"`
	Body    []element `json:"body"`
}

type attachment struct {
	ContentType string `json:"contentType"`
	Content     card   `json:"content"`
}

type message struct {
	Type        string       `json:"type"`
	Attachments []attachment `json:"attachments"`
}

// Body implements notify.Format.
func (Format) Body(e notify.Event) ([]byte, error) {
	color := "Good"
	if e.Warning {
		color = "Attention"
	}
	var facts []fact
	for _, f := range e.Facts() {
		facts = append(facts, fact{Title: f.Title, Value: f.Value})
	}
	c := card{
		Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard", Version: "1.4",
		Body: []element{
			{Type: "TextBlock", Text: e.Title(), Weight: "Bolder", Size: "Medium", Color: color, Wrap: true},
			{Type: "TextBlock", Text: e.Message, Wrap: true},
			{Type: "FactSet", Facts: facts},
		},
	}
	return json.Marshal(message{Type: "message", Attachments: []attachment{{ContentType: "application/vnd.microsoft.card.adaptive", Content: c}}})
}
