package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/atzedevries/canaryop/internal/admission"
	"github.com/atzedevries/canaryop/internal/memlimit"
	"github.com/atzedevries/canaryop/internal/shard"
)

// scaleOptions are the admin's settings for many apps: the cap on canaries
// progressing at once, and sharding the apps across replicas.
type scaleOptions struct {
	progressing admission.Limits
	sharding    bool
	shards      int
	lease       shard.Options
	memoryRatio float64
}

func (o *scaleOptions) bind(fs *flag.FlagSet) {
	fs.IntVar(&o.progressing.Total, "max-progressing-canaries", 0, "Most canaries progressing at once in the cluster; further new images wait (phase Queued) in the order they came. Rollbacks never wait. 0: no cap.")
	fs.IntVar(&o.progressing.PerNamespace, "max-progressing-canaries-per-namespace", 0, "Most canaries progressing at once in one namespace; 0: no cap.")
	fs.BoolVar(&o.sharding, "sharding", false, "Share the CanaryApps among all replicas on Leases (each reconciles the apps of the shards it holds) instead of electing one leader; excludes --leader-elect.")
	fs.IntVar(&o.shards, "shards", shard.DefaultShards, "Shards the apps are split into with --sharding (a stable hash of namespace/name); the same on every replica, at least the number of replicas.")
	fs.DurationVar(&o.lease.LeaseDuration, "shard-lease-duration", shard.DefaultLeaseDuration, "How long a shard of a replica that stopped renewing stays away from the others (--sharding): a dead replica's apps move after it.")
	fs.DurationVar(&o.lease.RenewDeadline, "shard-renew-deadline", shard.DefaultRenewDeadline, "How long a replica goes on with a shard it cannot renew; below --shard-lease-duration.")
	fs.DurationVar(&o.lease.RetryPeriod, "shard-retry-period", shard.DefaultRetryPeriod, "How often shard and member Leases are renewed and looked at.")
	fs.Float64Var(&o.memoryRatio, "memory-limit-ratio", 0.9, "Go's soft memory limit as this share of the container's memory limit (cgroup), so the garbage collector works harder before the kernel kills the operator; GOMEMLIMIT wins; 0: off.")
}

// setMemoryLimit applies --memory-limit-ratio and says what it set.
func (o *scaleOptions) setMemoryLimit(log logr.Logger) error {
	limit, err := memlimit.Set(o.memoryRatio, memlimit.Files...)
	if limit > 0 {
		log.Info("Go memory limit set from the container's", "bytes", limit, "ratio", o.memoryRatio)
	}
	return err
}

// addShards builds the shard Manager for --sharding, with its Leases in
// namespace, and runs it with mgr; nil without --sharding.
func (o *scaleOptions) addShards(mgr ctrl.Manager, cfg *rest.Config, scheme *runtime.Scheme, namespace string, leaderElect bool) (*shard.Manager, error) {
	m, err := o.shardManager(cfg, scheme, namespace, leaderElect)
	if err != nil || m == nil {
		return nil, err
	}
	return m, mgr.Add(m)
}

// shardManager builds the shard Manager on an uncached client (a Lease
// informer would cache every Lease of the cluster); nil without --sharding.
func (o *scaleOptions) shardManager(cfg *rest.Config, scheme *runtime.Scheme, namespace string, leaderElect bool) (*shard.Manager, error) {
	if !o.sharding {
		return nil, nil
	}
	if leaderElect {
		return nil, errors.New("--sharding and --leader-elect exclude each other: with sharding every replica works")
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	opts := o.lease
	opts.Client, opts.Namespace, opts.Shards, opts.Identity = c, namespace, o.shards, identity()
	return shard.New(opts)
}

// identity is the Pod's name (POD_NAME, from the downward API), else the
// host name with a random suffix, so that a restarted process is a new
// member.
func identity() string {
	if n := os.Getenv("POD_NAME"); n != "" {
		return n
	}
	h, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return h + "-" + hex.EncodeToString(b) + "-" + time.Now().UTC().Format("150405")
}
