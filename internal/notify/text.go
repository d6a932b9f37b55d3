package notify

import (
	"fmt"
	"time"
)

// Fact is one labelled value of an event, for the formats that show a
// table.
type Fact struct{ Title, Value string }

// Title is a one-line summary: "RolledBack: shop/web".
func (e Event) Title() string {
	return fmt.Sprintf("%s: %s/%s", e.Kind, e.Namespace, e.Name)
}

// Facts are the event's values that are known, in a fixed order.
func (e Event) Facts() []Fact {
	var out []Fact
	add := func(title, value string) {
		if value != "" {
			out = append(out, Fact{title, value})
		}
	}
	add("Reason", e.Reason)
	add("Image", e.Image)
	add("Stable", e.StableImage)
	if e.CanaryImage != "" {
		add("Canary weight", fmt.Sprintf("%d%%", e.Weight))
	}
	if c := e.Check; c != nil {
		add("Last check", fmt.Sprintf("%s (%s) at weight %d", valueOrEmpty(c.Value), c.Verdict, c.Weight))
	}
	add("Commit", e.Commit)
	add("Pull request", e.PullRequestURL)
	add("Time", e.Time.UTC().Format(time.RFC3339))
	return out
}

func valueOrEmpty(v string) string {
	if v == "" {
		return "no value"
	}
	return v
}
