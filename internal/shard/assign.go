// Package shard lets several operator replicas share the CanaryApps, on
// Kubernetes Leases: each app belongs to one of a fixed number of shards
// (a stable hash of namespace/name), each live replica announces itself
// with a member Lease, the shards are spread over the live members by
// rendezvous hashing (a joining or dying replica moves only its own share),
// and a replica works on an app only while it holds the Lease of the app's
// shard. Assignment is pure (this file); Manager (manager.go) keeps the
// Leases and answers Enter for the reconcilers.
package shard

import (
	"hash/fnv"
	"slices"
	"strconv"
)

// Of is the shard of the app namespace/name among n shards.
func Of(namespace, name string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(namespace))
	_, _ = h.Write([]byte{'/'})
	_, _ = h.Write([]byte(name))
	return int(h.Sum32() % uint32(n))
}

// Owner is the member a shard belongs to: the one with the highest
// rendezvous score, so every replica that sees the same members agrees,
// and a member that joins or leaves moves only the shards it wins or held.
// Empty when there are no members.
func Owner(shard int, members []string) string {
	best, bestScore := "", uint64(0)
	for _, m := range members {
		s := score(shard, m)
		if best == "" || s > bestScore || (s == bestScore && m < best) {
			best, bestScore = m, s
		}
	}
	return best
}

// Assigned lists the shards (of n) that member owns among members.
func Assigned(member string, members []string, n int) []int {
	var out []int
	for s := range n {
		if Owner(s, members) == member {
			out = append(out, s)
		}
	}
	return out
}

func score(shard int, member string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(strconv.Itoa(shard)))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(member))
	// fnv's low bits mix poorly for short inputs: finish like splitmix64.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// sorted returns members sorted and without duplicates.
func sorted(members []string) []string {
	out := slices.Clone(members)
	slices.Sort(out)
	return slices.Compact(out)
}
