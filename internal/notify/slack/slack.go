// Package slack formats notifications for a Slack incoming webhook
// (https://api.slack.com/messaging/webhooks): a text fallback and Block Kit
// sections with the event's facts.
package slack

import (
	"encoding/json"
	"strings"

	"github.com/atzedevries/canaryop/internal/notify"
)

// Type is the provider type of the admin's Secret.
const Type = "slack"

// Format builds Slack messages.
type Format struct{}

var _ notify.Format = Format{}

type text struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type block struct {
	Type   string `json:"type"`
	Text   *text  `json:"text,omitempty"`
	Fields []text `json:"fields,omitempty"`
}

type message struct {
	Text   string  `json:"text"`
	Blocks []block `json:"blocks"`
}

// Body implements notify.Format.
func (Format) Body(e notify.Event) ([]byte, error) {
	icon := ":large_green_circle:"
	if e.Warning {
		icon = ":red_circle:"
	}
	head := block{Type: "section", Text: &text{Type: "mrkdwn", Text: icon + " *" + escape(e.Title()) + "*\n" + escape(e.Message)}}
	var fields []text
	for _, f := range e.Facts() {
		fields = append(fields, text{Type: "mrkdwn", Text: "*" + escape(f.Title) + "*\n" + escape(f.Value)})
	}
	blocks := []block{head}
	// A section holds at most 10 fields.
	for len(fields) > 0 {
		n := min(len(fields), 10)
		blocks = append(blocks, block{Type: "section", Fields: fields[:n]})
		fields = fields[n:]
	}
	return json.Marshal(message{Text: e.Title() + ": " + e.Message, Blocks: blocks})
}

// escape keeps text literal in mrkdwn: '<', '>' and '&' would otherwise
// open links and mentions such as <!channel>.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
