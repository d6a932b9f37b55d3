// Package providers lists the notification provider types canaryop knows,
// each a Format of a package of its own.
package providers

import (
	"maps"
	"slices"

	"github.com/atzedevries/canaryop/internal/notify"
	"github.com/atzedevries/canaryop/internal/notify/slack"
	"github.com/atzedevries/canaryop/internal/notify/teams"
	"github.com/atzedevries/canaryop/internal/notify/webhook"
)

// Formats are the known provider types by the value of a provider Secret's
// type key. A Secret of another type is refused, never sent in a default
// format.
func Formats() map[string]notify.Format {
	return map[string]notify.Format{
		slack.Type:   slack.Format{},
		teams.Type:   teams.Format{},
		webhook.Type: webhook.Format{},
	}
}

// Types are the keys of Formats, sorted.
func Types() []string { return slices.Sorted(maps.Keys(Formats())) }
