package shard

import (
	"fmt"
	"testing"
)

func TestOfIsStableAndSpread(t *testing.T) {
	if Of("team-a", "web", 32) != Of("team-a", "web", 32) {
		t.Fatal("not stable")
	}
	if Of("team-a", "bweb", 32) == Of("team-ab", "web", 32) && Of("a", "b/c", 1000) == Of("a/b", "c", 1000) {
		t.Fatal("namespace and name are not kept apart")
	}
	counts := make([]int, 16)
	for i := range 16000 {
		counts[Of(fmt.Sprintf("ns-%d", i%37), fmt.Sprintf("app-%d", i), 16)]++
	}
	for s, c := range counts {
		if c < 800 || c > 1200 {
			t.Fatalf("shard %d has %d of 16000 apps: %v", s, c, counts)
		}
	}
	if Of("x", "y", 0) != 0 || Of("x", "y", 1) != 0 {
		t.Fatal("one shard")
	}
}

func TestOwnerEveryShardOnce(t *testing.T) {
	members := []string{"a", "b", "c"}
	seen := map[int]string{}
	for _, m := range members {
		for _, s := range Assigned(m, members, 64) {
			if o, ok := seen[s]; ok {
				t.Fatalf("shard %d assigned to %s and %s", s, o, m)
			}
			seen[s] = m
		}
	}
	if len(seen) != 64 {
		t.Fatalf("%d of 64 shards assigned", len(seen))
	}
	for _, m := range members {
		if n := len(Assigned(m, members, 64)); n < 12 || n > 32 {
			t.Fatalf("%s owns %d of 64", m, n)
		}
	}
	if Owner(3, nil) != "" {
		t.Fatal("owner without members")
	}
	// The order members are seen in does not matter.
	for s := range 64 {
		if Owner(s, members) != Owner(s, []string{"c", "a", "b"}) {
			t.Fatalf("shard %d depends on the order", s)
		}
	}
}

// TestMembershipChangesMoveOnlyTheirShare: a member that dies hands only
// its own shards to the others; one that joins takes shards only from
// others, about its share, and every other shard stays where it was.
func TestMembershipChangesMoveOnlyTheirShare(t *testing.T) {
	const n = 256
	three := []string{"op-0", "op-1", "op-2"}
	two := []string{"op-0", "op-2"}
	four := append([]string{"op-3"}, three...)
	moved := 0
	for s := range n {
		before, after := Owner(s, three), Owner(s, two)
		if before != "op-1" && before != after {
			t.Fatalf("shard %d moved from %s to %s when op-1 died", s, before, after)
		}
		if before == "op-1" && after == "op-1" {
			t.Fatalf("shard %d stayed with the dead member", s)
		}
		joined := Owner(s, four)
		if joined != before {
			if joined != "op-3" {
				t.Fatalf("shard %d moved from %s to %s when op-3 joined", s, before, joined)
			}
			moved++
		}
	}
	if moved < n/4-n/10 || moved > n/4+n/10 {
		t.Fatalf("joining member took %d of %d shards", moved, n)
	}
}
