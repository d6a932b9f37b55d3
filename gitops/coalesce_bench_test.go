package gitops

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkSimultaneousOutcomes: 100 apps of one repository roll back at
// the same moment (a bad base image) and 32 write-back workers (the
// default --write-back-concurrency) write them, coalesced into shared
// commits or one commit per outcome. Reports the pushes (commits) and the
// seconds until the last outcome is in Git; every record is checked.
//
//	go test ./gitops -run '^$' -bench SimultaneousOutcomes -benchtime 3x
func BenchmarkSimultaneousOutcomes(b *testing.B) {
	for _, c := range []struct {
		name string
		max  int
	}{{"coalesced", DefaultMaxOutcomesPerCommit}, {"per-outcome", 1}} {
		b.Run(c.name, func(b *testing.B) {
			const apps, workers = 100, 32
			var pushes int
			for range b.N {
				b.StopTimer()
				e := newEnv(b, appFiles(apps))
				o := e.writer.opts
				o.MaxOutcomesPerCommit = c.max
				w, err := New(o)
				if err != nil {
					b.Fatal(err)
				}
				now := time.Now()
				queue := make(chan int, apps)
				for i := range apps {
					queue <- i
				}
				close(queue)
				errs := make(chan error, apps)
				var wg sync.WaitGroup
				b.StartTimer()
				for range workers {
					wg.Go(func() {
						for i := range queue {
							_, err := w.Write(context.Background(), rolledBackApp(e, i, now))
							errs <- err
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				close(errs)
				for err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				pushes += checkAllRecorded(b, e, apps)
			}
			b.ReportMetric(float64(pushes)/float64(b.N), "pushes/op")
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/op")
		})
	}
}

// checkAllRecorded fails unless every app's outcome is in Git exactly once,
// and returns the commits the write-backs made.
func checkAllRecorded(b *testing.B, e *env, apps int) int {
	e.show("origin/main") // fetches
	bodies := e.git("log", "--format=%B", "origin/main")
	for i := range apps {
		if n := strings.Count(bodies, fmt.Sprintf("Canaryop-App: shop/app%d\n", i)); n != 1 {
			b.Fatalf("app%d recorded %d times", i, n)
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(e.git("rev-list", "--count", "origin/main")))
	if err != nil {
		b.Fatal(err)
	}
	return n - 1 // the seed
}
