// Command benchscale measures canaryop at scale on the local stack; it is
// run by hack/bench-scale.sh, which starts the stack and the operator and
// stops them again. It creates N CanaryApps, waits until all are Ready,
// reads the operator's own metrics (client requests by verb, resident
// memory, CPU), sits idle for a while, then runs a round in which a share
// of the apps run canaries at once while one of them meets errors that
// Prometheus scrapes from this program: the time from the errors being
// visible in Prometheus to all traffic on that app's primary. It prints a
// Markdown report.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
)

type config struct {
	n, canaries, perNS, workers int
	metricsURL, promURL         string
	targetsDir                  string
	idle                        time.Duration
	memoryOnly                  bool
}

func main() {
	var c config
	flag.IntVar(&c.n, "n", 100, "CanaryApps to create")
	flag.IntVar(&c.canaries, "canaries", 100, "apps that run a canary at once in the round (at most n)")
	flag.IntVar(&c.perNS, "per-namespace", 100, "apps per namespace")
	flag.IntVar(&c.workers, "workers", 16, "parallel creates and updates of this program")
	flag.StringVar(&c.metricsURL, "metrics", "", "the operator's metrics URL")
	flag.StringVar(&c.promURL, "prom", os.Getenv("PROM_URL"), "Prometheus base URL")
	flag.StringVar(&c.targetsDir, "targets", os.Getenv("PROM_TARGETS_DIR"), "Prometheus file_sd folder")
	flag.DurationVar(&c.idle, "idle", 30*time.Second, "idle period measured for CPU")
	flag.BoolVar(&c.memoryOnly, "memory-only", false, "stop once every app is reconciled (its memory noted), without waiting for Ready")
	flag.Parse()
	// The CanaryApp cache logs through controller-runtime; nothing of it is
	// part of the report.
	ctrl.SetLogger(logr.Discard())
	c.canaries = min(c.canaries, c.n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "benchscale:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	b, err := newBench(ctx, c)
	if err != nil {
		return err
	}
	defer b.close()
	if err := b.initialise(ctx); errors.Is(err, errMemoryOnly) {
		b.report()
		return nil
	} else if err != nil {
		return err
	}
	if err := b.idleCPU(ctx); err != nil {
		return err
	}
	if err := b.round(ctx); err != nil {
		return err
	}
	b.report()
	return nil
}
