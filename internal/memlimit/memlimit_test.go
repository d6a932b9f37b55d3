package memlimit

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func file(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "memory.max")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSet(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetMemoryLimit(math.MaxInt64)
	missing := filepath.Join(t.TempDir(), "none")
	cases := []struct {
		name    string
		ratio   float64
		files   []string
		want    int64
		wantErr bool
	}{
		{"cgroup v2 limit", 0.9, []string{file(t, "536870912\n")}, 483183820, false},
		{"the first file that exists", 0.5, []string{missing, file(t, "1000")}, 500, false},
		{"no limit (v2)", 0.9, []string{file(t, "max\n")}, 0, false},
		{"no limit (v1)", 0.9, []string{file(t, "9223372036854771712")}, 0, false},
		{"not in a cgroup", 0.9, []string{missing}, 0, false},
		{"off", 0, []string{file(t, "1000")}, 0, false},
		{"ratio out of range", 1.5, []string{file(t, "1000")}, 0, true},
		{"garbage", 0.9, []string{file(t, "lots")}, 0, true},
	}
	for _, c := range cases {
		debug.SetMemoryLimit(math.MaxInt64)
		got, err := Set(c.ratio, c.files...)
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("%s: Set = %d, %v; want %d, error %v", c.name, got, err, c.want, c.wantErr)
		}
		if now := debug.SetMemoryLimit(-1); c.want != 0 && now != c.want {
			t.Errorf("%s: runtime limit %d, want %d", c.name, now, c.want)
		}
	}
}

func TestGOMEMLIMITWins(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "300MiB")
	if got, err := Set(0.9, file(t, "1000")); got != 0 || err != nil {
		t.Errorf("Set = %d, %v; want nothing done", got, err)
	}
}
