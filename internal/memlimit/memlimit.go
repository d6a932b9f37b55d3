// Package memlimit sets the Go runtime's soft memory limit from the
// container's memory limit, so that the garbage collector works harder as
// the heap nears the limit instead of the kernel killing the operator: with
// the default GOGC a heap may grow to twice what is live before a
// collection, which at 10,000 apps is the difference between fitting a
// limit and being OOM-killed. GOMEMLIMIT, when set, wins.
package memlimit

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// Files are where cgroup v2 and v1 keep the memory limit.
var Files = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// unlimited is what cgroup v1 reports without a limit (about 2^63, rounded
// to pages); anything above it means none.
const unlimited = 1 << 62

// Set sets the soft limit to ratio times the container's memory limit,
// read from the first of files that exists. It returns the limit set, or 0
// with nil when there is nothing to do: GOMEMLIMIT is set, ratio is 0, or
// the container has no limit.
func Set(ratio float64, files ...string) (int64, error) {
	if os.Getenv("GOMEMLIMIT") != "" || ratio == 0 {
		return 0, nil
	}
	if ratio < 0 || ratio > 1 {
		return 0, fmt.Errorf("memory limit ratio %v is not in (0, 1]", ratio)
	}
	limit, err := read(files)
	if err != nil || limit == 0 {
		return 0, err
	}
	soft := int64(float64(limit) * ratio)
	debug.SetMemoryLimit(soft)
	return soft, nil
}

// read returns the limit in bytes of the first file that exists, 0 for
// none.
func read(files []string) (int64, error) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q is not a memory limit", f, s)
		}
		if n <= 0 || n >= unlimited {
			return 0, nil
		}
		return n, nil
	}
	return 0, nil
}
