package main

import (
	"flag"

	"github.com/atzedevries/canaryop/internal/admission"
)

// scaleOptions are the admin's settings for many apps: the cap on canaries
// progressing at once.
type scaleOptions struct {
	progressing admission.Limits
}

func (o *scaleOptions) bind(fs *flag.FlagSet) {
	fs.IntVar(&o.progressing.Total, "max-progressing-canaries", 0, "Most canaries progressing at once in the cluster; further new images wait (phase Queued) in the order they came. Rollbacks never wait. 0: no cap.")
	fs.IntVar(&o.progressing.PerNamespace, "max-progressing-canaries-per-namespace", 0, "Most canaries progressing at once in one namespace; 0: no cap.")
}
