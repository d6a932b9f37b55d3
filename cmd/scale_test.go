package main

import (
	"flag"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
)

func TestShardingExcludesLeaderElection(t *testing.T) {
	var o scaleOptions
	fs := flag.NewFlagSet("canaryop", flag.ContinueOnError)
	o.bind(fs)
	if err := fs.Parse([]string{"--sharding", "--shards=8", "--max-progressing-canaries-per-namespace=2"}); err != nil {
		t.Fatal(err)
	}
	if o.shards != 8 || o.progressing.PerNamespace != 2 || o.progressing.Total != 0 {
		t.Fatalf("parsed %+v", o)
	}
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	if _, err := o.shardManager(cfg, runtime.NewScheme(), "canaryop-system", true); err == nil || !strings.Contains(err.Error(), "--leader-elect") {
		t.Fatalf("sharding with leader election: %v", err)
	}
	m, err := o.shardManager(cfg, runtime.NewScheme(), "canaryop-system", false)
	if err != nil || m == nil || m.Shards() != 8 {
		t.Fatalf("%v %v", m, err)
	}
	o.sharding = false
	if m, err := o.shardManager(cfg, runtime.NewScheme(), "canaryop-system", true); m != nil || err != nil {
		t.Fatalf("without --sharding: %v %v", m, err)
	}
}
